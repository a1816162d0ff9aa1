"""PgKeyStore: API keys kept in PostgreSQL through :mod:`blocktrust_native.pool`.

Only the HMAC digest of a key is stored; the token is shown once, by :meth:`PgKeyStore.issue`.
``authenticate`` checks the token's format and checksum first (typos never reach the database),
then does one indexed lookup by key id, a constant-time digest compare, and the expiry and
revocation checks. With the verification cache on, a key verified once costs no round trip until
it changes: every revocation, rotation or expiry change fires a PostgreSQL NOTIFY (from a trigger,
so changes made with plain SQL count too) that evicts it from the cache of every process at once.
If the LISTEN session is lost, the cache is emptied and bypassed until it is back; a session that
dies silently (no FIN: a dead NAT entry, a DROP rule) is caught by a liveness round trip every
``liveness_interval`` s: the cache is trusted only while the last one is recent, so a revocation is
seen within a few seconds whatever happened to the socket (the pool's TCP keepalives and user
timeout then close it). In a forked child (gunicorn's pre-fork workers) the copied cache is
dropped and the child starts its own LISTEN session (``os.register_at_fork``).
``last_used_at`` is written in batches by a background thread, never once per request.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import re
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

from blocktrust_native.errors import ConfigError, DatabaseError, InvalidApiKey
from blocktrust_native.pool import Pool

__all__ = ["IssuedKey", "KeyInfo", "PgKeyStore"]

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")


@dataclasses.dataclass(frozen=True)
class KeyInfo:
    """What the store knows about a key (never its secret or digest)."""

    key_id: str
    role: str
    owner: str
    scopes: tuple[str, ...]
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None

    def active(self, now: dt.datetime | None = None) -> bool:
        """Not revoked and not expired at ``now`` (default: the current time)."""
        now = now or dt.datetime.now(dt.timezone.utc)
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclasses.dataclass(frozen=True)
class IssuedKey:
    """A freshly issued key: ``token`` is shown this once and stored nowhere."""

    token: str = dataclasses.field(repr=False)
    info: KeyInfo

    @property
    def key_id(self) -> str:
        """The public key id (safe to log)."""
        return self.info.key_id


class _Codec:
    """What the store needs from an :class:`~blocktrust_native.apikeys.ApiKeyCodec` or a
    :class:`~blocktrust_native.apikeys.KeyRing` (both generate, parse and verify)."""

    def __init__(self, codec: Any) -> None:
        if not all(hasattr(codec, m) for m in ("generate", "parse", "verify")):
            raise ConfigError("PgKeyStore: codec must be an apikeys.ApiKeyCodec or KeyRing")
        self.codec = codec
        self.ring = codec if hasattr(codec, "match") else None

    def new(self, role: str, expires: dt.datetime | dt.timedelta | None) -> Any:
        """A new ApiKey (token, key_id, digest, role, expires_at); role and expiry checked."""
        return self.codec.generate(role, expires)

    def key_id(self, token: object) -> str | None:
        """The key id of a well-formed token (prefix, length, alphabet, checksum), else None."""
        if not isinstance(token, str):
            return None
        try:
            return str(self.codec.parse(token).key_id)
        except InvalidApiKey:
            return None

    def match(self, token: str, digest: bytes) -> int | None:
        """Index of the server secret the digest was made with (0: current), or None."""
        if self.ring is not None:
            return self.ring.match(token, digest)  # type: ignore[no-any-return]
        return 0 if self.codec.verify(token, digest) else None

    def digest(self, token: str) -> bytes:
        """The token's digest under the current secret."""
        return bytes(self.codec.digest(token))


class PgKeyStore:
    """API keys in a PostgreSQL table, with an optional cross-process verification cache.

    ``codec`` is an :class:`~blocktrust_native.apikeys.ApiKeyCodec` or a
    :class:`~blocktrust_native.apikeys.KeyRing` (keys made under a previous secret of the ring are
    accepted and their stored digest is upgraded). ``cache`` keeps verified keys in memory for up
    to ``cache_ttl`` s, evicted at once on any change through LISTEN/NOTIFY (it holds one pool
    connection for that), and used only while that session proved it is alive within the last
    three ``liveness_interval`` s (a round trip each interval). ``last_used_at`` is written
    every ``last_used_interval`` s.
    ``create`` creates the table and trigger when missing.
    """

    def __init__(
        self,
        pool: Pool,
        codec: Any,
        *,
        table: str = "blocktrust_api_keys",
        cache: bool = True,
        cache_ttl: float = 300.0,
        last_used_interval: float = 5.0,
        liveness_interval: float = 1.0,
        create: bool = True,
    ) -> None:
        if not _IDENT.match(table):
            raise ConfigError(f"PgKeyStore: table name {table!r} must match {_IDENT.pattern}")
        if cache_ttl <= 0 or last_used_interval <= 0 or liveness_interval <= 0:
            raise ConfigError(
                "PgKeyStore: cache_ttl, last_used_interval and liveness_interval must be positive"
            )
        self._pool = pool
        self._codec = _Codec(codec)
        self.table = table
        self.channel = f"{table}_changed"
        self._cache_on = cache
        self._ttl = cache_ttl
        self._flush_every = last_used_interval
        self._ping_every = liveness_interval
        # The cache is trusted only while the LISTEN session answered within this window.
        self._alive_window = 3 * liveness_interval
        self._alive_at = 0.0  # monotonic time of the LISTEN session's last proven round trip
        self._pid = os.getpid()
        self._lock = threading.Lock()
        # key_id -> (digest, info, cached_at monotonic)
        self._cache: dict[str, tuple[bytes, KeyInfo, float]] = {}
        self._epoch = 0  # bumped on every eviction: a lookup that raced one is not cached
        self._listening = threading.Event()
        self._used: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if create:
            self.create_schema()
        self._start_thread()
        _STORES.add(self)

    def _start_thread(self) -> None:
        # One background thread: LISTEN + batched last_used_at with the cache, else batches only.
        target = self._background if self._cache_on else self._flusher
        self._thread = threading.Thread(target=target, name="bt-keystore", daemon=True)
        self._thread.start()

    def _after_fork_in_child(self) -> None:
        """The child inherits no thread: forget the parent's cache and LISTEN state (it would
        never be evicted again); the child's own thread starts at its first use of the store."""
        self._lock = threading.Lock()
        self._cache.clear()
        self._used = set()  # the parent writes its own pending stamps
        self._epoch += 1
        self._listening = threading.Event()
        self._alive_at = 0.0
        self._thread = None

    def _ensure_thread(self) -> None:
        if self._pid != os.getpid():
            with _FORK_LOCK:
                if self._pid != os.getpid():
                    self._pid = os.getpid()
                    self._stop = threading.Event()
                    self._start_thread()

    def _trusted(self) -> bool:
        """True while cached entries may be used: LISTEN is on and proved alive recently."""
        return self._listening.is_set() and time.monotonic() - self._alive_at < self._alive_window

    # -- schema ---------------------------------------------------------------------------------

    def create_schema(self) -> None:
        """Creates the table, its index and the change trigger if missing (safe to repeat and to
        run from several processes at once)."""
        t = self.table
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", (t,))
            conn.execute(
                f"""CREATE TABLE IF NOT EXISTS {t} (
                    key_id text PRIMARY KEY,
                    digest bytea NOT NULL,
                    role text NOT NULL CHECK (role IN ('admin', 'auditor', 'client')),
                    owner text NOT NULL,
                    scopes jsonb NOT NULL DEFAULT '[]',
                    created_at timestamptz NOT NULL DEFAULT now(),
                    expires_at timestamptz,
                    revoked_at timestamptz,
                    last_used_at timestamptz,
                    replaced_by text)"""
            )
            conn.execute(f"CREATE INDEX IF NOT EXISTS {t}_owner_idx ON {t} (owner)")
            conn.execute(
                f"""CREATE OR REPLACE FUNCTION {t}_notify() RETURNS trigger
                    LANGUAGE plpgsql AS $$
                    BEGIN
                      PERFORM pg_notify('{self.channel}', OLD.key_id);
                      RETURN NULL;
                    END $$"""
            )
            conn.execute(f"DROP TRIGGER IF EXISTS {t}_changed ON {t}")
            conn.execute(
                f"""CREATE TRIGGER {t}_changed AFTER UPDATE OF digest, role, scopes, expires_at,
                    revoked_at OR DELETE ON {t} FOR EACH ROW EXECUTE FUNCTION {t}_notify()"""
            )

    # -- keys -----------------------------------------------------------------------------------

    def issue(
        self,
        role: str,
        owner: str,
        expires: dt.datetime | dt.timedelta | None = None,
        *,
        scopes: Sequence[str] = (),
    ) -> IssuedKey:
        """Creates a key (role admin, auditor or client; ``expires`` a timezone-aware datetime
        or a delta from now); the returned token is the only copy of the secret."""
        if not isinstance(owner, str) or not owner:
            raise ConfigError("PgKeyStore: owner must be a non-empty str")
        if isinstance(scopes, str):
            raise ConfigError("PgKeyStore: scopes must be a sequence of str, not one str")
        scope_list = [str(s) for s in scopes]
        key = self._codec.new(getattr(role, "value", role), expires)
        rows = self._pool.execute(
            f"INSERT INTO {self.table} (key_id, digest, role, owner, scopes, expires_at) "
            f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}",
            (key.key_id, bytes(key.digest), key.role.value, owner, scope_list, key.expires_at),
        )
        return IssuedKey(key.token, _info(rows[0]))

    def authenticate(self, token: str) -> KeyInfo | None:
        """The key's info if ``token`` is valid, active and not revoked; otherwise None."""
        key_id = self._codec.key_id(token)
        if key_id is None:
            return None  # malformed or bad checksum: no database lookup
        now = dt.datetime.now(dt.timezone.utc)
        self._ensure_thread()
        entry = self._cached(key_id) if self._trusted() else None
        if entry is None:
            epoch = self._epoch
            rows = self._pool.execute(
                f"SELECT digest, {_COLUMNS} FROM {self.table} WHERE key_id = $1", (key_id,)
            )
            if not rows:
                return None
            digest, info = bytes(rows[0][0]), _info(rows[0][1:])
            if self._cache_on and self._trusted():
                with self._lock:
                    if epoch == self._epoch:
                        self._cache[key_id] = (digest, info, time.monotonic())
        else:
            digest, info = entry
        which = self._codec.match(token, digest)
        if which is None or not info.active(now):
            return None
        if which > 0:
            # Made under a previous server secret of the KeyRing: store the current digest
            # (the trigger's NOTIFY then refreshes every cache).
            self._pool.execute(
                f"UPDATE {self.table} SET digest = $2 WHERE key_id = $1",
                (key_id, self._codec.digest(token)),
            )
            self._evict(key_id)
        with self._lock:
            self._used.add(key_id)
        return info

    def revoke(self, key_id: str) -> bool:
        """Revokes a key everywhere at once; False if it was unknown or already revoked."""
        rows = self._pool.execute(
            f"UPDATE {self.table} SET revoked_at = now() "
            "WHERE key_id = $1 AND revoked_at IS NULL RETURNING key_id",
            (key_id,),
        )
        self._evict(key_id)
        return bool(rows)

    def rotate(self, key_id: str, overlap: float | dt.timedelta = 3600.0) -> IssuedKey:
        """Issues a successor with the same role, owner and scopes; the old key keeps working
        for ``overlap`` (seconds or timedelta) and then expires."""
        if isinstance(overlap, (int, float)):
            overlap = dt.timedelta(seconds=overlap)
        if overlap < dt.timedelta(0):
            raise ConfigError("PgKeyStore: overlap must not be negative")
        with self._pool.connection() as conn, conn.transaction():
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM {self.table} WHERE key_id = $1 FOR UPDATE", (key_id,)
            )
            if not rows:
                raise ConfigError(f"PgKeyStore: no key with id {key_id!r}")
            old = _info(rows[0])
            if not old.active():
                raise ConfigError(f"PgKeyStore: key {key_id!r} is revoked or expired")
            key = self._codec.new(old.role, None)
            new_rows = conn.execute(
                f"INSERT INTO {self.table} (key_id, digest, role, owner, scopes, expires_at) "
                f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}",
                (
                    key.key_id,
                    bytes(key.digest),
                    old.role,
                    old.owner,
                    list(old.scopes),
                    old.expires_at,
                ),
            )
            conn.execute(
                f"UPDATE {self.table} SET replaced_by = $2, "
                "expires_at = LEAST(COALESCE(expires_at, 'infinity'), now() + $3) "
                "WHERE key_id = $1",
                (key_id, key.key_id, overlap),
            )
        self._evict(key_id)
        return IssuedKey(key.token, _info(new_rows[0]))

    def list(self, owner: str | None = None, *, include_revoked: bool = False) -> list[KeyInfo]:
        """Keys (newest first), optionally of one owner; never secrets or digests."""
        where, params = [], []
        if owner is not None:
            params.append(owner)
            where.append(f"owner = ${len(params)}")
        if not include_revoked:
            where.append("revoked_at IS NULL")
        sql = f"SELECT {_COLUMNS} FROM {self.table}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_info(r) for r in self._pool.execute(sql + " ORDER BY created_at DESC", params)]

    def flush_last_used(self) -> None:
        """Writes the pending last_used_at stamps now (one statement for all of them)."""
        with self._lock:
            used, self._used = self._used, set()
        if not used:
            return
        try:
            self._pool.execute(
                f"UPDATE {self.table} SET last_used_at = now() "
                "WHERE key_id IN (SELECT jsonb_array_elements_text($1::jsonb))",
                (sorted(used),),
            )
        except BaseException:
            with self._lock:
                self._used |= used  # try again at the next flush
            raise

    def close(self) -> None:
        """Stops the background thread and writes the pending last_used_at stamps."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.flush_last_used()

    def __enter__(self) -> PgKeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- cache ----------------------------------------------------------------------------------

    def _cached(self, key_id: str) -> tuple[bytes, KeyInfo] | None:
        with self._lock:
            entry = self._cache.get(key_id)
            if entry is None:
                return None
            if time.monotonic() - entry[2] > self._ttl:
                del self._cache[key_id]
                return None
            return entry[0], entry[1]

    def _evict(self, key_id: str | None) -> None:
        with self._lock:
            self._epoch += 1
            if key_id is None:
                self._cache.clear()
            else:
                self._cache.pop(key_id, None)

    def _background(self) -> None:
        """LISTENs for changes (evicting them from the cache) and flushes last_used_at."""
        next_flush = time.monotonic() + self._flush_every
        while not self._stop.is_set():
            conn = None
            try:
                conn = self._pool.acquire(timeout=5)
                conn.keep_out_of_pool()
                conn.execute(f'LISTEN "{self.channel}"')
                self._evict(None)  # anything cached before LISTEN may be stale
                self._alive_at = time.monotonic()
                self._listening.set()
                next_ping = time.monotonic() + self._ping_every
                while not self._stop.is_set():
                    wait = max(0.0, min(0.5, next_ping - time.monotonic()))
                    for _chan, key_id, _pid in conn.notifications(timeout=wait):
                        self._evict(key_id)
                    if time.monotonic() >= next_ping:
                        # Silence proves nothing: a session that died without a FIN looks like
                        # one with no news. A round trip does (it blocks on a dead socket, and
                        # _trusted() stops using the cache meanwhile).
                        conn.execute("SELECT 1")
                        self._alive_at = time.monotonic()
                        next_ping = self._alive_at + self._ping_every
                    if time.monotonic() >= next_flush:
                        self.flush_last_used()
                        next_flush = time.monotonic() + self._flush_every
            except DatabaseError:
                pass  # the server went away or the pool is busy: retry below
            except Exception:  # pragma: no cover - PoolClosed during shutdown
                if self._stop.is_set():
                    break
            finally:
                # Without LISTEN a revocation could go unseen: stop trusting the cache.
                self._listening.clear()
                self._evict(None)
                if conn is not None:
                    conn.release()
            self._stop.wait(0.5)

    def _flusher(self) -> None:
        while not self._stop.wait(self._flush_every):
            # Retried at the next interval: the stamps are best effort.
            with contextlib.suppress(DatabaseError):
                self.flush_last_used()


_COLUMNS = "key_id, role, owner, scopes, created_at, expires_at, revoked_at, last_used_at"

# Every live store, so a forked child can drop what it inherited (see _after_fork_in_child).
_STORES: weakref.WeakSet[PgKeyStore] = weakref.WeakSet()
_FORK_LOCK = threading.Lock()


def _reset_stores_in_child() -> None:
    global _FORK_LOCK
    _FORK_LOCK = threading.Lock()
    for store in list(_STORES):
        store._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_stores_in_child)


def _info(row: Sequence[Any]) -> KeyInfo:
    key_id, role, owner, scopes, created, expires, revoked, used = row
    return KeyInfo(key_id, role, owner, tuple(scopes), created, expires, revoked, used)
