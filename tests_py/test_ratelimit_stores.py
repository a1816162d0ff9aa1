"""One rule, three stores: the in-process limiter, PostgreSQL and Redis make the same decisions
as the reference model on the same sequence of hits, for each algorithm (gcra, sliding_window,
fixed_window), each on a ManualClock so the sequence is exact."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_ratelimit_model import Model

from blocktrust_native.pool import Pool
from blocktrust_native.ratelimit import ManualClock, RateLimiter
from blocktrust_native.ratelimit.postgres import PgRateLimiter
from blocktrust_native.ratelimit.redis import RedisRateLimiter
from blocktrust_native.redis import RedisClient
from validate_all_flows.embedded.redis import TempRedis

pytestmark = pytest.mark.pg

US = 1000  # ns
RULESETS = ["3/second", "5/15minutes", "7/minute", "2/second;5/10seconds", "10/second;3/second"]
OPS = st.tuples(
    st.sampled_from(["hit", "hit", "hit", "test", "reset"]),
    st.sampled_from(["a", "b"]),
    st.integers(1, 3),
    st.one_of(st.just(0), st.integers(0, 3_000_000), st.sampled_from([1, 142_857, 10**6])),
)


@pytest.fixture(scope="module")
def pool(pg_dsn: str) -> Iterator[Pool]:
    with Pool(pg_dsn, max_size=2) as p:
        yield p


@pytest.fixture(scope="module")
def client(redis_server: TempRedis) -> RedisClient:
    return RedisClient(redis_server.url)


@pytest.mark.parametrize("algorithm", ["gcra", "sliding_window", "fixed_window"])
@settings(max_examples=40, deadline=None)
@given(
    rules=st.sampled_from(RULESETS),
    start=st.integers(10**9, 10**12),
    ops=st.lists(OPS, min_size=1, max_size=30),
)
def test_the_three_stores_decide_like_the_model(
    pool: Pool,
    client: RedisClient,
    algorithm: str,
    rules: str,
    start: int,
    ops: list[tuple[str, str, int, int]],
) -> None:
    clock = ManualClock()
    clock.set_ns(start * US)
    name = uuid.uuid4().hex[:10]
    stores = {
        "postgres": PgRateLimiter(
            pool,
            rules,
            algorithm,
            namespace=name,
            table="rl_model",
            cleanup_interval=None,
            clock=clock,
            fail_open=True,
        ),
        "redis": RedisRateLimiter(client, rules, algorithm, namespace=name, clock=clock),
    }
    local = RateLimiter(rules, algorithm, clock=clock)
    model = Model(algorithm, [(r.limit, r.period_ns // US) for r in local.rules])  # microseconds
    local_model = Model(algorithm, [(r.limit, r.period_ns) for r in local.rules])  # nanoseconds
    cost_cap = min(r.limit for r in local.rules)
    now = start
    for op, key, cost, advance in ops:
        clock.advance_ns(advance * US)
        now += advance
        cost = min(cost, cost_cap)
        if op == "reset":
            for s in stores.values():
                s.reset(key)
            local.reset(key)
            model.reset(key)
            local_model.reset(key)
            continue
        consume = op == "hit"
        want, index = model.decide(key, cost, now, consume)
        expected = (want.allowed, want.limit, want.remaining, want.reset_after, want.retry_after)
        for label, store in stores.items():
            d = getattr(store, op)(key, cost)
            got = (d.allowed, d.limit, d.remaining, d.reset_after_ns // US, d.retry_after_ns // US)
            assert got == expected, (label, op, key, cost, now)
            assert d.rule_index == index, label
            assert not d.degraded
        mine = getattr(local, op)(key, cost)
        local_want, local_index = local_model.decide(key, cost, now * US, consume)
        assert (mine.allowed, mine.remaining, mine.rule_index) == (
            local_want.allowed,
            local_want.remaining,
            local_index,
        )
