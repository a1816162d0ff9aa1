"""A small native Redis / Valkey client: a pool of connections per node, reconnects, AUTH, TLS.

    client = RedisClient("rediss://app:secret@cache.internal:6380/0?timeout=1&pool_size=32")
    client.execute("PING")                               # 'PONG'
    client.execute("GET", "k")                           # bytes or None
    RedisClient("redis+sentinel://:secret@sentinel-a:26379,sentinel-b:26379/mymaster/0")

URLs: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` for TLS (the server's
certificate and host name are verified against the system's CAs, or ``ssl_ca_certs=<file>``;
``ssl_cert_reqs=none`` turns verification off), ``redis+cluster://`` (or ``rediss+cluster://``)
for Redis Cluster: commands go to the first node and follow its MOVED / ASK redirects, and the slot
of each key is remembered. Options: ``timeout`` (seconds, for connecting and for each read or
write; default 2), ``pool_size`` (connections per node; default 4). A userinfo without ``:`` is
taken as the password (Redis before ACLs had only passwords).

Sentinel: ``redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/<master name>[/db]``
(Sentinels on 26379 by default; ``sentinel_password=...`` if they have one: the userinfo is the
master's; ``rediss+sentinel://`` for TLS to both). The Sentinels are asked
(``SENTINEL get-master-addr-by-name``) at the first command, and again after a connection failure
on the master or a ``READONLY`` reply (a demoted master: the command, which did not run, is sent
once more to the new master); while the master is unreachable and the Sentinels still name it,
calls fail (a rate limiter applies its failure policy) and they are asked at most every 200 ms.

Every call releases the GIL. Threads share the connections, each one a pipeline: a command goes
out at once if its connection has no write awaiting replies, else with every command queued
meanwhile in one write as soon as the last reply of the previous one is read (callers gather on
the first connection and spread to the next only past 16 queued), so the server and the client
make one read and one write per batch. Do not send blocking commands (BLPOP, SUBSCRIBE) through
it. Commands a restarted server closed a connection from before on, without answering anything
after them, are sent once more on a fresh one; any other failure raises
:class:`RedisConnectionError`. ``stats()`` counts connects, broken connections, redirects,
requests and the writes that carried them. Passwords never appear in reprs or messages.
"""

from __future__ import annotations

from typing import Any

from blocktrust_native._native import redis as _native
from blocktrust_native.errors import ConfigError, RedisConnectionError, RedisError

__all__ = ["RedisClient", "RedisConnectionError", "RedisError", "key_slot", "redact_url"]

redact_url = _native.redact_url
key_slot = _native.key_slot


class RedisClient(_native.Client):
    """A thread-safe Redis client for ``url`` (see the module doc); ``pool_size`` and ``timeout``
    override the URL's options."""

    def __init__(
        self, url: str, *, pool_size: int | None = None, timeout: float | None = None
    ) -> None:
        if not isinstance(url, str):
            raise ConfigError(f"a Redis URL must be a string, not {type(url).__name__}")
        if pool_size is not None and (not isinstance(pool_size, int) or pool_size < 1):
            raise ConfigError(f"pool_size must be a positive integer, got {pool_size!r}")
        super().__init__(url, pool_size=pool_size, timeout=timeout)
        self._redacted = redact_url(url)

    def execute(self, *args: Any) -> Any:
        """Sends one command (arguments as str, bytes or int); returns None, int, bytes, str
        (status replies) or a list; an error reply raises :class:`RedisError`."""
        if not args:
            raise ConfigError("execute needs a command")
        return super().execute([a if isinstance(a, (str, bytes)) else str(a) for a in args])

    def ping(self) -> bool:
        """True when the server answers PING."""
        return bool(self.execute("PING") == "PONG")

    def close(self) -> None:
        """Closes the idle connections (the client stays usable and reconnects on demand)."""
        self.close_idle()

    def __enter__(self) -> RedisClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RedisClient {self._redacted} pool_size={self.pool_size}>"
