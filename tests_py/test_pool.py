"""blocktrust_native.pool: configuration, statements, types both ways, errors, redaction."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from decimal import Decimal

import pytest

from blocktrust_native.errors import ConfigError, DatabaseError, Error, IntegrityError
from blocktrust_native.pool import OperationalError, Pool, PoolConfig, redact_dsn

pytestmark = pytest.mark.pg


@pytest.fixture
def pool(fresh_pg_dsn: str):
    with Pool(fresh_pg_dsn, min_size=1, max_size=4) as p:
        yield p


def test_redact_dsn_forms() -> None:
    assert redact_dsn("postgresql://u:s3cret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_dsn("postgresql+psycopg2://u:s3cret@h/db") == "postgresql+psycopg2://u:***@h/db"
    assert "s3cret" not in redact_dsn("postgresql://u@h/db?password=s3cret&sslmode=disable")
    assert "sslmode=disable" in redact_dsn("postgresql://u@h/db?password=s3cret&sslmode=disable")
    assert redact_dsn("host=h password=s3cret dbname=d") == "host=h password=*** dbname=d"
    assert "s3" not in redact_dsn("host=h password='s3 cret' dbname=d")
    assert redact_dsn("postgresql://u@h/db") == "postgresql://u@h/db"


def test_password_never_in_repr_or_errors(pg_cluster) -> None:
    if pg_cluster is None:
        pytest.skip("needs our own cluster")
    # Nothing listens on the port: the connect error must name the DSN without its password.
    from validate_all_flows.embedded.postgres import free_port

    dsn = f"postgresql://postgres:hunter2secret@127.0.0.1:{free_port()}/postgres"
    with Pool(dsn, min_size=0, max_size=1, connect_timeout=2) as p:
        assert "hunter2secret" not in repr(p)
        assert "***" in p.dsn
        with pytest.raises(OperationalError) as ei:
            p.execute("SELECT 1")
        assert "hunter2secret" not in str(ei.value)
        assert "***" in str(ei.value)
        assert "hunter2secret" not in repr(ei.value)
        check = p.check(timeout=2)
        assert check["ok"] is False
        assert "hunter2secret" not in str(check)
    with pytest.raises(ConfigError) as ci:
        Pool("postgresql://u:hunter2secret@h/db?nosuchoption=1", min_size=0)
    assert "hunter2secret" not in str(ci.value)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"max_size": 0}, "max_size"),
        ({"min_size": 5, "max_size": 2}, "min_size"),
        ({"acquire_timeout": -1}, "acquire_timeout"),
        ({"max_size": -1}, "max_size"),
        ({"max_lifetime": float("nan")}, "max_lifetime"),
    ],
)
def test_bad_config_is_config_error(pg_dsn: str, kwargs: dict, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        Pool(pg_dsn, **kwargs)


def test_pool_config_defaults_are_the_cores() -> None:
    c = PoolConfig()
    assert (c.min_size, c.max_size, c.max_waiting) == (1, 10, 0)
    assert (c.acquire_timeout, c.max_lifetime, c.idle_timeout) == (30.0, 1800.0, 600.0)
    assert (c.validation_threshold, c.maintenance_interval) == (1.0, 0.5)
    assert (c.leak_threshold, c.statement_timeout, c.application_name) == (None, None, None)
    assert (c.connect_timeout, c.pgbouncer, c.statement_cache_size) == (10, False, 128)
    assert PoolConfig(max_lifetime=0, leak_threshold=None).max_lifetime is None


def test_a_config_or_keywords_set_the_pool_up(pg_dsn: str) -> None:
    config = PoolConfig(min_size=0, max_size=2, application_name="bt_cfg_app")
    with Pool(pg_dsn, config=config) as p:
        assert p.config is config
        assert p.execute("SELECT current_setting('application_name')") == [("bt_cfg_app",)]
    # Keywords given with a config override those fields only.
    with Pool(pg_dsn, config=config, max_size=3) as p:
        assert (p.config.max_size, p.config.application_name, p.max_size) == (3, "bt_cfg_app", 3)
    with Pool(pg_dsn, min_size=0, max_size=1) as p:
        assert p.execute("SELECT current_setting('application_name')") == [("blocktrust_native",)]


def test_sqlalchemy_url_and_application_name(pg_dsn: str) -> None:
    url = pg_dsn.replace("postgresql://", "postgresql+psycopg2://")
    with Pool(url, min_size=0, max_size=1, application_name="bt_test_app") as p:
        assert p.execute("SELECT current_setting('application_name')") == [("bt_test_app",)]


def test_execute_rows_dicts_rowcount(pool: Pool) -> None:
    assert pool.execute("SELECT 1") == [(1,)]
    assert pool.execute("SELECT $1::int AS a, $2::text AS b", (7, "x"), as_dict=True) == [
        {"a": 7, "b": "x"}
    ]
    with pool.connection() as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
        assert conn.execute_many("INSERT INTO items VALUES ($1, $2)", [(1, "a"), (2, "b")]) == 2
        conn.execute("UPDATE items SET name = name || '!'")
        assert conn.rowcount == 2
        assert conn.execute("SELECT id, name FROM items ORDER BY id") == [(1, "a!"), (2, "b!")]
    assert pool.execute_many("INSERT INTO items VALUES ($1, $2)", [(3, "c")]) == 1


def test_transaction_commit_rollback_savepoint(pool: Pool) -> None:
    pool.execute("CREATE TABLE tx (v int)")
    with pool.connection() as conn:
        with conn.transaction():
            conn.execute("INSERT INTO tx VALUES (1)")
        with contextlib.suppress(RuntimeError), conn.transaction():
            conn.execute("INSERT INTO tx VALUES (2)")
            raise RuntimeError("boom")
        with conn.transaction():
            conn.execute("INSERT INTO tx VALUES (3)")
            with contextlib.suppress(IntegrityError), conn.transaction():
                conn.execute("INSERT INTO tx VALUES (4)")
                raise IntegrityError("simulated", "23505")
        assert conn.tx_status == "idle"
    assert pool.execute("SELECT v FROM tx ORDER BY v") == [(1,), (3,)]


ROUND_TRIPS = [
    (None, "int4", None),
    (True, "bool", True),
    (False, "bool", False),
    (12, "int2", 12),
    (2_000_000_000, "int4", 2_000_000_000),
    (9_000_000_000_000_000_000, "int8", 9_000_000_000_000_000_000),
    (-(2**63), "int8", -(2**63)),
    (1.5, "float8", 1.5),
    (float("inf"), "float8", float("inf")),
    (Decimal("12345678901234567890.0123456789"), "numeric", None),
    (10**30, "numeric", Decimal(10**30)),
    ("héllo ☃", "text", None),
    ("v", "varchar", None),
    (b"\x00\x01\xfe\xff", "bytea", None),
    (bytearray(b"ab"), "bytea", b"ab"),
    (dt.date(2024, 2, 29), "date", None),
    (dt.datetime(2024, 1, 2, 3, 4, 5, 123456), "timestamp", None),
    (
        dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
        "timestamptz",
        None,
    ),
    (dt.time(23, 59, 58, 999999), "time", None),
    (dt.time(1, 2, 3, tzinfo=dt.timezone(dt.timedelta(hours=-3))), "timetz", None),
    (uuid.UUID("12345678-1234-5678-1234-567812345678"), "uuid", None),
    ({"a": [1, 2, {"b": None}], "c": "ü"}, "jsonb", None),
    ([1, "two", 3.5], "json", None),
]


@pytest.mark.parametrize(("value", "pgtype", "expected"), ROUND_TRIPS)
def test_types_round_trip(pool: Pool, value, pgtype: str, expected) -> None:
    want = value if expected is None else expected
    [(got,)] = pool.execute(f"SELECT $1::{pgtype}", (value,))
    assert got == want
    assert type(got) is type(want)


def test_types_through_a_table(pool: Pool) -> None:
    pool.execute(
        "CREATE TABLE typed (i2 int2, i4 int4, i8 int8, n numeric, f float4, t text, b bytea, "
        "ts timestamptz, d date, u uuid, j jsonb, ok bool)"
    )
    row = (
        1,
        2,
        3,
        Decimal("4.5"),
        0.25,
        "t",
        b"\x00",
        dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc),
        dt.date(2020, 1, 1),
        uuid.uuid4(),
        {"k": 1},
        True,
    )
    pool.execute("INSERT INTO typed VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)", row)
    assert pool.execute("SELECT * FROM typed") == [row]
    # A str is sent untyped, so the server reads it as whatever the column needs.
    pool.execute(
        "INSERT INTO typed (ts, d, j) VALUES ($1, $2, $3)",
        ("2021-05-06T07:08:09Z", "2021-05-06", '{"x": 2}'),
    )
    assert pool.execute("SELECT d, j FROM typed WHERE j ? 'x'") == [(dt.date(2021, 5, 6), {"x": 2})]


def test_timestamptz_in_other_session_timezone(pool: Pool) -> None:
    with pool.connection() as conn:
        conn.execute("SET TIME ZONE 'Asia/Kolkata'")
        [(ts,)] = conn.execute("SELECT '2024-01-01 00:00:00+00'::timestamptz")
        conn.execute("RESET TIME ZONE")
    assert ts == dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    assert ts.utcoffset() == dt.timedelta(hours=5, minutes=30)


def test_interval_parameter(pool: Pool) -> None:
    assert pool.execute(
        "SELECT $1::interval = interval '1 day 2 hours'", (dt.timedelta(days=1, hours=2),)
    ) == [(True,)]


def test_unsupported_types_are_type_errors(pool: Pool) -> None:
    with pytest.raises(TypeError, match=r"\$2: cannot send builtins.complex"):
        pool.execute("SELECT $1, $2", (1, 1j))
    with pytest.raises(TypeError, match=r"builtins\.tuple"):
        pool.execute("SELECT $1", ((1, 2),))
    with pytest.raises(TypeError, match="sequence"):
        pool.execute("SELECT $1", "abc")
    with pytest.raises(TypeError, match=r"column 'a' has PostgreSQL type oid 1007"):
        pool.execute("SELECT ARRAY[1,2] AS a")
    assert pool.execute("SELECT ARRAY[1,2]::text AS a") == [("{1,2}",)]
    # The failed conversion did not poison the connection.
    assert pool.execute("SELECT 2") == [(2,)]


def test_database_errors_carry_sqlstate_and_detail(pool: Pool) -> None:
    pool.execute("CREATE TABLE u (id int PRIMARY KEY)")
    pool.execute("INSERT INTO u VALUES (1)")
    with pytest.raises(IntegrityError) as ei:
        pool.execute("INSERT INTO u VALUES ($1)", (1,))
    assert ei.value.sqlstate == "23505"
    assert "already exists" in ei.value.detail
    assert isinstance(ei.value, DatabaseError)
    assert isinstance(ei.value, Error)
    with pytest.raises(DatabaseError) as si:
        pool.execute("SELEC 1")
    assert si.value.sqlstate == "42601"
    assert not isinstance(si.value, (IntegrityError, OperationalError))
    with pytest.raises(DatabaseError, match="division by zero"):
        pool.execute("SELECT 1/$1", (0,))


def test_prepared_cache_survives_schema_change(pool: Pool) -> None:
    pool.execute("CREATE TABLE sc (a int)")
    pool.execute("INSERT INTO sc VALUES (1)")
    with pool.connection() as conn:
        for _ in range(3):
            assert conn.execute("SELECT * FROM sc WHERE a = $1", (1,)) == [(1,)]
        conn.execute("ALTER TABLE sc ADD COLUMN b text DEFAULT 'x'")
        assert conn.execute("SELECT * FROM sc WHERE a = $1", (1,)) == [(1, "x")]


def test_pgbouncer_mode_uses_no_named_prepared_statements(pg_dsn: str) -> None:
    with Pool(pg_dsn, min_size=0, max_size=1, pgbouncer=True) as p, p.connection() as conn:
        for i in range(5):
            assert conn.execute("SELECT $1::int + 1", (i,)) == [(i + 1,)]
        assert conn.execute("SELECT count(*) FROM pg_prepared_statements") == [(0,)]
    with Pool(pg_dsn, min_size=0, max_size=1) as p, p.connection() as conn:
        conn.execute("SELECT $1::int + 1", (1,))
        assert conn.execute("SELECT count(*) FROM pg_prepared_statements") == [(1,)]


def test_use_after_release_is_an_error(pool: Pool) -> None:
    conn = pool.acquire()
    conn.release()
    with pytest.raises(Error, match="already returned"):
        conn.execute("SELECT 1")


def test_stats_and_check(pool: Pool) -> None:
    for _ in range(5):
        pool.execute("SELECT 1")
    s = pool.stats()
    for key in (
        "size",
        "idle",
        "in_use",
        "waiting",
        "acquired",
        "timeouts",
        "errors",
        "wait_p50",
        "wait_p90",
        "wait_p99",
        "wait_max",
    ):
        assert key in s
    assert s["acquired"] >= 5
    assert s["in_use"] == 0
    assert 0 <= s["wait_p50"] <= s["wait_p99"] <= s["wait_max"]
    c = pool.check()
    assert c["ok"] is True
    assert c["error"] is None
    assert c["stats"]["size"] >= 1


def test_text_is_utf8_whatever_the_database_encoding(pg_cluster) -> None:
    if pg_cluster is None:
        pytest.skip("needs our own cluster")
    pg_cluster.psql(
        "CREATE DATABASE latin1db ENCODING 'LATIN1' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'"
    )
    with Pool(pg_cluster.dsn("latin1db"), min_size=0, max_size=1) as p:
        assert p.execute("SELECT $1::text, length($1::text)", ("café",)) == [("café", 4)]
