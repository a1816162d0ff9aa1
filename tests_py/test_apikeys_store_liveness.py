"""PgKeyStore refuses a revoked key within seconds everywhere: also when its LISTEN session dies
without a FIN (a proxy that stops forwarding it; a black hole in the kernel, which the TCP user
timeout ends), and in a worker forked after the store was made (gunicorn's pre-fork model). Real
PostgreSQL, started by the fixtures."""

from __future__ import annotations

import os
import urllib.parse

import pytest
from fix_blackhole import BlackHoleLink
from fix_fork import Channel, Forked
from fix_proxy import FreezingProxy
from fix_wait import wait_until

from blocktrust_native.apikeys import ApiKeyCodec
from blocktrust_native.apikeys.store import PgKeyStore
from blocktrust_native.pool import Pool

pytestmark = pytest.mark.pg

SECRET = b"s" * 32


def _via(dsn: str, port: int) -> str:
    u = urllib.parse.urlsplit(dsn)
    netloc = u.netloc.rsplit(":", 1)[0] + f":{port}"
    return urllib.parse.urlunsplit(u._replace(netloc=netloc))


def test_a_revocation_is_seen_when_the_listen_session_dies_without_a_fin(fresh_pg_dsn: str):
    port = urllib.parse.urlsplit(fresh_pg_dsn).port
    assert port
    codec = ApiKeyCodec("btk_test", SECRET)
    with (
        FreezingProxy(port) as proxy,
        Pool(_via(fresh_pg_dsn, proxy.port), min_size=1, max_size=4) as pool,
        Pool(fresh_pg_dsn, min_size=0, max_size=1) as admin,
        PgKeyStore(pool, codec) as store,  # liveness round trip every 1 s
    ):
        wait_until(store._listening.is_set, timeout=10, what="the store's LISTEN session")
        key = store.issue("client", "alice")
        assert store.authenticate(key.token) is not None  # now cached
        assert proxy.freeze(b"LISTEN") == 1  # the LISTEN session goes mute, no FIN
        # Revoked behind the store's back: the NOTIFY is sent into the frozen session.
        admin.execute(
            f"UPDATE {store.table} SET revoked_at = now() WHERE key_id = $1", (key.key_id,)
        )
        wait_until(
            lambda: store.authenticate(key.token) is None,
            timeout=10,
            what="the store to refuse the revoked key",
        )


def test_a_listen_session_in_a_black_hole_is_ended_by_the_user_timeout_and_replaced(
    blackhole_link: BlackHoleLink, fresh_pg_dsn: str
):
    link = blackhole_link
    codec = ApiKeyCodec("btk_test", SECRET)
    # The DSN's own (short) TCP settings, so the test takes seconds, not the pool's 30 s.
    dsn = link.dsn(link.dbname, keepalives_idle=1, keepalives_interval=1, tcp_user_timeout=2000)
    with (
        Pool(dsn, min_size=1, max_size=4) as pool,
        Pool(fresh_pg_dsn, min_size=0, max_size=1) as admin,
        PgKeyStore(pool, codec, liveness_interval=0.5) as store,
    ):
        wait_until(store._listening.is_set, timeout=10, what="the store's LISTEN session")
        key = store.issue("client", "alice")
        other = store.issue("client", "bob")
        assert store.authenticate(key.token) is not None
        assert link.hole(b"LISTEN") == 1  # the server vanishes for that session: no FIN, no RST
        # The liveness round trip goes unanswered; the user timeout ends the session, and the
        # store LISTENs again on a new one (without them it would wait some fifteen minutes).
        wait_until(
            lambda: link.count(b"LISTEN") == 2 and store._listening.is_set(),
            timeout=20,
            what="a new LISTEN session after the black hole",
        )
        assert store.authenticate(other.token) is not None
        admin.execute(
            f"UPDATE {store.table} SET revoked_at = now() WHERE key_id = $1", (key.key_id,)
        )
        wait_until(
            lambda: store.authenticate(key.token) is None,
            timeout=5,
            what="the store to refuse the revoked key",
        )


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_revocation_is_seen_in_a_forked_worker_within_seconds(fresh_pg_dsn: str):
    codec = ApiKeyCodec("btk_test", SECRET)
    # The master process makes the pool and the store (and uses them) before it forks.
    with (
        Pool(fresh_pg_dsn, min_size=1, max_size=4) as pool,
        Pool(fresh_pg_dsn, min_size=0, max_size=1) as admin,
        PgKeyStore(pool, codec) as store,
    ):
        wait_until(store._listening.is_set, timeout=10, what="the store's LISTEN session")
        key = store.issue("client", "alice")
        other = store.issue("client", "bob")
        assert store.authenticate(key.token) is not None  # cached in the master

        def worker(channel: Channel) -> bool:
            # The worker's first requests; its own LISTEN session comes up meanwhile.
            assert store.authenticate(key.token) is not None
            wait_until(store._listening.is_set, timeout=10, what="the worker's own LISTEN session")
            assert store.authenticate(key.token) is not None  # now in the worker's own cache
            assert store.authenticate(other.token) is not None
            channel.send("ready")
            assert channel.recv() == "revoked"
            # Revoked with plain SQL by someone else: only the NOTIFY tells this process.
            wait_until(
                lambda: store.authenticate(key.token) is None,
                timeout=5,
                what="the worker to refuse the revoked key",
            )
            return store.authenticate(other.token) is not None

        child = Forked(worker)
        assert child.recv() == "ready"
        admin.execute(
            f"UPDATE {store.table} SET revoked_at = now() WHERE key_id = $1", (key.key_id,)
        )
        child.send("revoked")
        assert child.result() is True
        # The master's store was not disturbed by the worker: it refuses too, and still works.
        wait_until(
            lambda: store.authenticate(key.token) is None,
            timeout=5,
            what="the master's store to refuse the revoked key",
        )
        assert store.authenticate(other.token) is not None
        assert store._listening.is_set()
