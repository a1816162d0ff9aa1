"""PgKeyStore refuses a revoked key within seconds everywhere: also when its LISTEN session dies
without a FIN (a proxy that stops forwarding it). Real PostgreSQL, started by the fixtures."""

from __future__ import annotations

import time
import urllib.parse

import pytest
from fix_proxy import FreezingProxy

from blocktrust_native.apikeys import ApiKeyCodec
from blocktrust_native.apikeys.store import PgKeyStore
from blocktrust_native.pool import Pool

pytestmark = pytest.mark.pg

SECRET = b"s" * 32


def _wait_for(pred, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


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
        assert _wait_for(store._listening.is_set, 10)
        key = store.issue("client", "alice")
        assert store.authenticate(key.token) is not None  # now cached
        assert proxy.freeze(b"LISTEN") == 1  # the LISTEN session goes mute, no FIN
        # Revoked behind the store's back: the NOTIFY is sent into the frozen session.
        admin.execute(
            f"UPDATE {store.table} SET revoked_at = now() WHERE key_id = $1", (key.key_id,)
        )
        assert _wait_for(lambda: store.authenticate(key.token) is None, 10)
