"""The shared rate limiter on a real PostgreSQL cluster: decisions on the database clock,
idempotent schema, SKIP LOCKED cleanup, fail open / closed, 4 processes on one key, and the ASGI
middleware awaiting it without blocking the event loop."""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
import uuid

import httpx
import pytest
from fastapi import FastAPI
from fix_wait import wait_until
from test_ratelimit_middleware import serve_asgi

from blocktrust_native.errors import ConfigError, RateLimitExceeded
from blocktrust_native.pool import Pool
from blocktrust_native.ratelimit.middleware import RateLimitMiddleware
from blocktrust_native.ratelimit.postgres import PgRateLimiter
from validate_all_flows.embedded.postgres import free_port

pytestmark = pytest.mark.pg


def table() -> str:
    return f"rl_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pool(pg_dsn: str):
    with Pool(pg_dsn, max_size=6) as p:
        yield p


def test_burst_then_exact_denial_on_the_database_clock(pool: Pool) -> None:
    limiter = PgRateLimiter(
        pool, "5/15minutes", table=table(), cleanup_interval=None, fail_open=True
    )
    got = [limiter.hit("login:ann") for _ in range(5)]
    assert [d.allowed for d in got] == [True] * 5
    assert [d.remaining for d in got] == [4, 3, 2, 1, 0]
    denied = limiter.hit("login:ann")
    assert not denied.allowed
    assert not denied.degraded
    # One unit comes back 180s after the first hit; a little of that has already passed.
    assert 170 < denied.retry_after <= 180
    assert 890 < denied.reset_after <= 900
    assert limiter.headers(denied)["Retry-After"] == str(int(-(-denied.retry_after_ns // 10**9)))
    with pytest.raises(RateLimitExceeded):
        limiter.check("login:ann")
    assert limiter.hit("login:bob").remaining == 4


def test_all_rules_must_pass_test_peeks_reset_forgets(pool: Pool) -> None:
    limiter = PgRateLimiter(
        pool, "2/second;3/hour", table=table(), cleanup_interval=None, fail_open=True
    )
    assert limiter.test("k").remaining == 2
    assert limiter.hit("k").allowed
    assert limiter.hit("k").allowed
    d = limiter.hit("k")
    assert not d.allowed
    assert d.rule_index == 0
    assert 0.4 < d.retry_after <= 0.5
    time.sleep(d.retry_after + 0.05)
    third = limiter.hit("k")
    assert third.allowed
    assert third.rule_index == 1
    assert third.remaining == 0
    time.sleep(0.5)
    d = limiter.hit("k")
    assert not d.allowed
    assert d.rule_index == 1  # the hour rule refuses; its retry is the longer one
    assert 1190 < d.retry_after <= 1200
    peek = limiter.test("k")
    assert not peek.allowed
    assert peek.retry_after <= d.retry_after  # testing consumed nothing
    assert limiter.reset("k") is True
    assert limiter.reset("k") is False
    assert limiter.hit("k").remaining == 1
    with pytest.raises(ConfigError, match="cost 3"):
        limiter.hit("k", 3)


def test_schema_is_idempotent_and_names_are_checked(pool: Pool) -> None:
    name = table()
    a = PgRateLimiter(pool, "1/minute", table=name, cleanup_interval=None, fail_open=True)
    b = PgRateLimiter(pool, "1/minute", table=name, cleanup_interval=None, fail_open=True)
    a.ensure_table()
    b.ensure_table()
    assert a.hit("x").allowed
    assert not b.hit("x").allowed  # same table, same rules: one shared limit
    other = PgRateLimiter(pool, "2/minute", table=name, cleanup_interval=None, fail_open=True)
    assert other.hit("x").allowed  # different rules live under their own namespace
    (persistence,) = pool.execute(
        "SELECT relpersistence::text FROM pg_class WHERE relname = $1", [name]
    )
    assert persistence == ("u",)  # unlogged by default
    with pytest.raises(ConfigError, match="table"):
        PgRateLimiter(pool, "1/minute", table="x; DROP TABLE users", fail_open=True)


def test_cleanup_deletes_expired_rows_in_batches_and_skips_locked_ones(pool: Pool) -> None:
    name = table()
    limiter = PgRateLimiter(
        pool, "1/second", table=name, cleanup_interval=None, cleanup_batch=10, fail_open=True
    )
    for i in range(25):
        limiter.hit(f"k{i}")
    limiter.hit("busy")
    assert limiter.cleanup() == 0  # nothing has recovered yet
    time.sleep(1.1)
    with pool.connection() as conn, conn.transaction():
        conn.execute(f"SELECT 1 FROM {name} WHERE key LIKE '%|busy' FOR UPDATE")
        started = time.monotonic()
        counts = [limiter.cleanup() for _ in range(4)]
        assert time.monotonic() - started < 5  # never waited on the locked row
    assert counts == [10, 10, 5, 0]
    (left,) = pool.execute(f"SELECT count(*) FROM {name}")
    assert left == (1,)
    assert limiter.cleanup() == 1


def test_background_cleanup_thread(pool: Pool) -> None:
    name = table()
    with PgRateLimiter(
        pool, "1/second", table=name, cleanup_interval=0.2, fail_open=True
    ) as limiter:
        for i in range(5):
            limiter.hit(f"k{i}")
        wait_until(
            lambda: pool.execute(f"SELECT count(*) FROM {name}") == [(0,)],
            timeout=10,
            what="the expired rows to be cleaned up",
        )


def test_the_failure_policy_has_no_default(pool: Pool) -> None:
    with pytest.raises(TypeError, match="fail_open"):
        PgRateLimiter(pool, "1/minute", cleanup_interval=None)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="fail_open"):
        PgRateLimiter(pool, "1/minute", cleanup_interval=None, fail_open=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="2 entries for 1 rules"):
        PgRateLimiter(pool, "1/minute", cleanup_interval=None, fail_open=[True, False])


def test_the_failure_policy_is_per_rule() -> None:
    dead = f"postgresql://app@127.0.0.1:{free_port()}/app"
    with Pool(dead, min_size=0, acquire_timeout=1.0, connect_timeout=2) as pool:
        both = "5/minute;100/day"
        d = PgRateLimiter(pool, both, cleanup_interval=None, fail_open=[True, False]).hit("k")
        assert (d.allowed, d.degraded, d.rule_index, d.limit) == (False, True, 1, 100)
        assert PgRateLimiter(pool, both, cleanup_interval=None, fail_open=[True, True]).hit("k")


def test_unreachable_database_fails_open_or_closed_as_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = f"postgresql://app:s3cr3t-pw@127.0.0.1:{free_port()}/app"
    with Pool(dead, min_size=0, acquire_timeout=1.0, connect_timeout=2) as pool:
        caplog.set_level(logging.WARNING, "blocktrust_native.ratelimit")
        open_ = PgRateLimiter(pool, "1/minute", cleanup_interval=None, fail_open=True)
        d = open_.hit("k")
        assert d.allowed
        assert d.degraded
        closed = PgRateLimiter(pool, "1/minute", cleanup_interval=None, fail_open=False)
        d = closed.hit("k")
        assert not d.allowed
        assert d.degraded
        assert d.retry_after == 1.0
        assert closed.headers(d)["Retry-After"] == "1"
        assert "fail open" in caplog.text
        assert "s3cr3t-pw" not in caplog.text
        assert "s3cr3t-pw" not in repr(closed)


def _hammer(
    dsn: str, name: str, rule: str, algorithm: str, hits: int, out: multiprocessing.Queue
) -> None:
    with Pool(dsn, max_size=2) as pool:
        limiter = PgRateLimiter(
            pool, rule, algorithm, table=name, cleanup_interval=None, fail_open=True
        )
        out.put(sum(1 for _ in range(hits) if limiter.hit("hot")))


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["gcra", "sliding_window", "fixed_window"])
def test_four_processes_on_one_key_never_exceed_the_limit(
    pg_dsn: str, pool: Pool, algorithm: str
) -> None:
    name = table()
    rule = "50/hour"
    if algorithm == "fixed_window":
        # Windows are aligned to the epoch: a period of (now - 60) s on the database's clock puts
        # the run inside a window that began a minute ago and lasts decades.
        ((now,),) = pool.execute("SELECT extract(epoch FROM statement_timestamp())::bigint")
        rule = f"50/{now - 60}seconds"
    PgRateLimiter(
        pool, rule, algorithm, table=name, cleanup_interval=None, fail_open=True
    ).ensure_table()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_hammer, args=(pg_dsn, name, rule, algorithm, 40, out)) for _ in range(4)
    ]
    for p in procs:
        p.start()
    admitted = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    # 160 attempts in well under the 72 s one unit takes to come back: exactly the burst.
    assert sum(admitted) == 50


def test_asgi_middleware_awaits_the_shared_store_off_the_event_loop(pool: Pool) -> None:
    name = table()
    limiter = PgRateLimiter(pool, "10/minute", table=name, cleanup_interval=None, fail_open=True)
    app = FastAPI()

    @app.get("/limited")
    async def limited() -> dict:
        return {"ok": True}

    @app.get("/health")
    async def health() -> dict:
        return {"ok": True}

    app.add_middleware(RateLimitMiddleware, routes={"/limited": limiter})
    with serve_asgi(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        assert client.get("/limited").headers["ratelimit-remaining"] == "9"
        # Hold the key's row lock: the next decision waits inside PostgreSQL.
        with pool.connection() as conn:
            conn.execute("BEGIN")
            conn.execute(f"SELECT 1 FROM {name} FOR UPDATE")
            result: dict[str, httpx.Response] = {}
            waiting = threading.Thread(
                target=lambda: result.setdefault("r", client.get("/limited"))
            )
            waiting.start()
            time.sleep(0.3)
            assert waiting.is_alive()  # stuck on the row lock...
            with httpx.Client(base_url=base, timeout=5) as other:
                started = time.monotonic()
                assert other.get("/health").status_code == 200  # ...yet the loop still serves
                assert time.monotonic() - started < 2
            conn.execute("COMMIT")
        waiting.join(10)
        assert result["r"].status_code == 200
        assert result["r"].headers["ratelimit-remaining"] == "8"
