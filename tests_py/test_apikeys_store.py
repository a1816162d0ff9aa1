"""PgKeyStore: API keys in PostgreSQL through the pool, with a cross-process verification cache."""

from __future__ import annotations

import datetime as dt
import threading
import zlib

import pytest
from fix_wait import wait_until

from blocktrust_native.apikeys import ApiKeyCodec, KeyRing
from blocktrust_native.apikeys.store import PgKeyStore
from blocktrust_native.errors import ConfigError
from blocktrust_native.pool import Pool

pytestmark = pytest.mark.pg

SECRET = b"s" * 32


@pytest.fixture
def codec() -> ApiKeyCodec:
    return ApiKeyCodec("btk_test", SECRET)


@pytest.fixture
def pool(fresh_pg_dsn: str):
    with Pool(fresh_pg_dsn, min_size=1, max_size=6) as p:
        yield p


@pytest.fixture
def store(pool: Pool, codec):
    with PgKeyStore(pool, codec, last_used_interval=0.2) as s:
        wait_until(s._listening.is_set, timeout=5, what="the store's LISTEN session")
        yield s


def test_issue_shows_the_token_once_and_stores_only_a_digest(store: PgKeyStore, pool: Pool) -> None:
    k = store.issue("client", "alice", scopes=["read", "write"])
    assert k.token not in repr(k)
    assert k.info.role == "client"
    assert k.info.scopes == ("read", "write")
    [(row,)] = pool.execute(f"SELECT row_to_json(t)::text FROM {store.table} t")
    assert k.token not in row
    secret_part = k.token[-12:]
    assert secret_part not in row
    listed = store.list()
    assert [i.key_id for i in listed] == [k.key_id]
    assert "digest" not in repr(listed[0])


def test_authenticate_checks_format_before_any_lookup(store: PgKeyStore, pool: Pool) -> None:
    k = store.issue("admin", "ops")
    assert store.authenticate(k.token).key_id == k.key_id
    before = pool.stats()["acquired"]
    bad = k.token[:-1] + ("A" if k.token[-1] != "A" else "B")  # a typo breaks the checksum
    assert store.authenticate(bad) is None
    assert store.authenticate("not a key") is None
    assert store.authenticate("") is None
    assert pool.stats()["acquired"] == before  # no round trip for malformed tokens


_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _forge(prefix: str, key_id: str) -> str:
    """A well-formed token (valid checksum) for a stored key id, with a guessed secret."""
    body = key_id + "G" * 28
    crc = zlib.crc32(f"{prefix}_{body}".encode())
    check = ""
    for _ in range(6):
        crc, r = divmod(crc, 62)
        check = _BASE62[r] + check
    return f"{prefix}_{body}{check}"


def test_unknown_and_forged_keys_are_rejected(store: PgKeyStore, codec: ApiKeyCodec) -> None:
    assert store.authenticate(codec.generate("admin").token) is None  # well formed, not stored
    k = store.issue("admin", "mallory")
    forged = _forge("btk_test", k.key_id)
    assert codec.parse(forged).key_id == k.key_id  # passes the format check...
    assert store.authenticate(forged) is None  # ...but not the digest compare
    assert store.authenticate(k.token) is not None
    assert store.authenticate(forged) is None  # nor with the real key cached


def test_cached_verification_costs_no_round_trip(store: PgKeyStore, pool: Pool) -> None:
    k = store.issue("client", "bob")
    assert store.authenticate(k.token) is not None  # loads the cache
    before = pool.stats()["acquired"]
    for _ in range(200):
        assert store.authenticate(k.token) is not None
    assert pool.stats()["acquired"] - before <= 1  # at most the batched last_used_at flush


def test_revocation_reaches_every_cache_at_once(pool: Pool, fresh_pg_dsn: str, codec) -> None:
    # Two stores with their own pools stand for two processes, each with a warm cache.
    with (
        Pool(fresh_pg_dsn, min_size=1, max_size=3) as pool_b,
        PgKeyStore(pool, codec) as a,
        PgKeyStore(pool_b, codec) as b,
    ):
        wait_until(a._listening.is_set, timeout=5, what="store a's LISTEN session")
        wait_until(b._listening.is_set, timeout=5, what="store b's LISTEN session")
        k = a.issue("client", "carol")
        assert a.authenticate(k.token)
        assert b.authenticate(k.token)
        assert a.revoke(k.key_id) is True
        assert a.authenticate(k.token) is None  # this process: immediately
        # The other process: only the NOTIFY can evict its entry this soon (the cache holds one
        # for cache_ttl, 300 s, and the liveness ping evicts nothing while LISTEN is healthy).
        wait_until(
            lambda: b.authenticate(k.token) is None,
            timeout=10,
            what="the revocation to reach store b",
            interval=0.02,
        )
        assert a.revoke(k.key_id) is False
        # A change made with plain SQL is seen too (the trigger sends the NOTIFY).
        k2 = a.issue("client", "carol")
        assert b.authenticate(k2.token)
        pool.execute(f"UPDATE {a.table} SET revoked_at = now() WHERE key_id = $1", (k2.key_id,))
        wait_until(
            lambda: b.authenticate(k2.token) is None,
            timeout=2,
            what="the SQL revocation to reach store b",
        )


def test_lost_listen_session_empties_the_cache(store: PgKeyStore, pool: Pool) -> None:
    t = store.table
    k = store.issue("auditor", "dave")
    assert store.authenticate(k.token)  # now cached
    # Revoke without a NOTIFY (trigger off): the cache still accepts the key, which shows it is
    # in use. Then kill the LISTEN session: the store cannot know what it missed while it was
    # gone, so it must drop its cache and ask the database again.
    pool.execute(f"ALTER TABLE {t} DISABLE TRIGGER {t}_changed")
    pool.execute(f"UPDATE {t} SET revoked_at = now() WHERE key_id = $1", (k.key_id,))
    assert store.authenticate(k.token) is not None
    killed = pool.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
    )
    assert len(killed) == 1
    wait_until(
        lambda: store.authenticate(k.token) is None,
        timeout=3,
        what="the store to refuse the key after its LISTEN session was lost",
    )
    wait_until(store._listening.is_set, timeout=5, what="the LISTEN session to come back")
    assert store.authenticate(k.token) is None


def test_expiry_is_honoured_even_when_cached(store: PgKeyStore) -> None:
    k = store.issue("client", "erin", expires=dt.timedelta(seconds=0.4))
    assert store.authenticate(k.token)
    # The key stays cached (cache_ttl 300 s, no NOTIFY at expiry): only its expiry can refuse it.
    wait_until(
        lambda: store.authenticate(k.token) is None,
        timeout=10,
        what="the store to refuse the cached key once it expired",
    )
    with pytest.raises(ConfigError, match="timezone"):
        store.issue("client", "erin", expires=dt.datetime(2030, 1, 1))


def test_rotate_overlaps_then_expires_the_old_key(store: PgKeyStore) -> None:
    old = store.issue("admin", "frank", scopes=["all"])
    new = store.rotate(old.key_id, overlap=0.5)
    assert new.key_id != old.key_id
    assert (new.info.role, new.info.owner, new.info.scopes) == ("admin", "frank", ("all",))
    assert store.authenticate(old.token) is not None
    assert store.authenticate(new.token) is not None
    wait_until(
        lambda: store.authenticate(old.token) is None,
        timeout=10,
        what="the old key to be refused once the 0.5 s overlap is over",
    )
    assert store.authenticate(new.token) is not None
    with pytest.raises(ConfigError, match="no key"):
        store.rotate("missing")


def test_last_used_at_is_written_in_batches(pool: Pool, codec: ApiKeyCodec) -> None:
    with PgKeyStore(pool, codec, cache=False, last_used_interval=0.3) as store:
        t = store.table
        # Count UPDATE statements that touch last_used_at.
        pool.execute("CREATE TABLE stamp_writes (n int)")
        pool.execute("INSERT INTO stamp_writes VALUES (0)")
        pool.execute(
            "CREATE FUNCTION count_stamp() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN UPDATE stamp_writes SET n = n + 1; RETURN NULL; END $$"
        )
        pool.execute(
            f"CREATE TRIGGER count_stamp AFTER UPDATE OF last_used_at ON {t} "
            "FOR EACH STATEMENT EXECUTE FUNCTION count_stamp()"
        )
        keys = [store.issue("client", "gina") for _ in range(3)]
        for _ in range(20):
            for k in keys:
                assert store.authenticate(k.token)
        sql = f"SELECT count(*) FROM {t} WHERE last_used_at IS NOT NULL"
        wait_until(
            lambda: pool.execute(sql) == [(3,)],
            timeout=3,
            what="last_used_at written for the three keys",
        )
        [(writes,)] = pool.execute("SELECT n FROM stamp_writes")
        assert 1 <= writes <= 2  # 60 verifications, one or two batched statements


def test_roles_table_names_and_idempotent_schema(pool: Pool, codec) -> None:
    with PgKeyStore(pool, codec, cache=False) as s, pytest.raises(ConfigError, match="role"):
        s.issue("root", "x")
    with pytest.raises(ConfigError, match="table name"):
        PgKeyStore(pool, codec, table="keys; DROP TABLE x")
    errors: list[BaseException] = []

    def make() -> None:
        try:
            PgKeyStore(pool, codec, table="shared_keys", cache=False).close()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_key_ring_rotation_upgrades_stored_digests(pool: Pool) -> None:
    old_secret, new_secret = b"o" * 32, b"n" * 32
    with PgKeyStore(pool, ApiKeyCodec("btk_test", old_secret), cache=False) as before:
        k = before.issue("client", "henry")
        [(d_old,)] = pool.execute(f"SELECT digest FROM {before.table}")
    with PgKeyStore(pool, KeyRing("btk_test", new_secret, old_secret)) as after:
        assert after.authenticate(k.token) is not None  # accepted under the previous secret
        [(d_new,)] = pool.execute(f"SELECT digest FROM {after.table}")
        assert d_new != d_old
        assert d_new == ApiKeyCodec("btk_test", new_secret).digest(k.token)
        assert after.authenticate(k.token) is not None
    with PgKeyStore(pool, ApiKeyCodec("btk_test", new_secret), cache=False) as only_new:
        assert only_new.authenticate(k.token) is not None
