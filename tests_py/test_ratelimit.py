"""The in-process rate limiter: rules, decisions, headers, a reference model, threads."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_ratelimit_model import NS, Model

from blocktrust_native.errors import ConfigError, Error, RateLimitExceeded
from blocktrust_native.ratelimit import (
    Decision,
    ManualClock,
    RateLimiter,
    parse_rules,
    rate_limit_headers,
)


def test_rules_parse_the_limits_notation() -> None:
    (r,) = parse_rules("5/15minutes")
    assert (r.limit, r.period, r.text) == (5, 900.0, "5/15minutes")
    assert [(r.limit, r.period) for r in parse_rules("100/second;1000/hour")] == [
        (100, 1.0),
        (1000, 3600.0),
    ]
    assert parse_rules("10 per hour")[0].period_ns == 3600 * NS
    limiter = RateLimiter(["3 per day", "1/second"])
    assert [r.text for r in limiter.rules] == ["3 per day", "1/second"]


@pytest.mark.parametrize(
    ("rules", "named"),
    [
        ("5/fortnight", "5/fortnight"),
        ("1/second;ten/hour", "ten/hour"),
        ("", "''"),
        ("0/minute", "0/minute"),
        ("5 minutes", "5 minutes"),
    ],
)
def test_bad_rules_raise_config_error_naming_them(rules: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named) as info:
        RateLimiter(rules)
    assert isinstance(info.value, (Error, ValueError))


def test_bad_settings_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="leaky"):
        RateLimiter("1/second", "leaky")
    with pytest.raises(ConfigError, match="max_keys"):
        RateLimiter("1/second", max_keys=0)
    limiter = RateLimiter("5/second")
    with pytest.raises(ConfigError, match="cost 6"):
        limiter.hit("k", 6)
    with pytest.raises(ConfigError, match="cost"):
        limiter.test("k", 0)
    with pytest.raises(ConfigError, match="sliding_window"):
        RateLimiter("2000000/hour", "sliding_window")


def test_login_limit_with_exact_retry_after_and_headers() -> None:
    clock = ManualClock(1000.0)
    limiter = RateLimiter("5/15minutes", clock=clock)
    decisions = [limiter.hit("login:ann") for _ in range(5)]
    assert all(decisions)
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0]
    denied = limiter.hit("login:ann")
    assert not denied.allowed
    assert denied.retry_after == 180.0
    assert limiter.headers(denied) == {
        "RateLimit-Limit": "5",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "900",
        "RateLimit-Policy": "5;w=900",
        "Retry-After": "180",
    }
    clock.advance(179.5)
    d = limiter.hit("login:ann")
    assert not d
    assert d.retry_after_ns == NS // 2
    assert rate_limit_headers(d)["Retry-After"] == "1"  # rounded up, never early
    clock.advance(0.5)
    assert limiter.hit("login:ann").allowed
    assert "Retry-After" not in limiter.headers(limiter.test("login:bob"))


def test_check_raises_with_the_decision_and_reset_forgets() -> None:
    limiter = RateLimiter("1/hour", clock=ManualClock())
    limiter.check("k")
    with pytest.raises(RateLimitExceeded) as info:
        limiter.check("k")
    assert info.value.decision.retry_after == 3600.0
    assert limiter.reset("k") is True
    assert limiter.check("k").remaining == 0


def test_decision_is_constructible_and_rejects_negative_durations() -> None:
    d = Decision(allowed=False, limit=3, remaining=0, retry_after=1.5, degraded=True)
    assert (d.retry_after_ns, d.degraded, bool(d)) == (1_500_000_000, True, False)
    assert "degraded=True" in repr(d)
    with pytest.raises(ConfigError):
        Decision(allowed=True, limit=1, remaining=1, retry_after=-1.0)


def test_max_keys_bounds_memory() -> None:
    clock = ManualClock()
    limiter = RateLimiter("1/minute", max_keys=100, clock=clock)
    for i in range(1000):
        limiter.hit(f"ip:{i}")
    stats = limiter.stats()
    assert stats["keys"] <= 100
    assert stats["evicted"] >= 900
    clock.advance(60)
    assert limiter.purge_expired() == stats["keys"]
    assert limiter.stats()["keys"] == 0


# --- against the reference model

RULESETS = ["3/second", "5/15minutes", "7/minute", "2/second;5/10seconds", "10/second;3/second"]
OPS = st.tuples(
    st.sampled_from(["hit", "hit", "hit", "test", "reset"]),
    st.sampled_from(["a", "b"]),
    st.integers(1, 3),
    st.one_of(
        st.just(0), st.integers(0, 3 * NS), st.sampled_from([1, NS // 7, NS, 60 * NS, 900 * NS])
    ),
)


@pytest.mark.parametrize("algorithm", ["gcra", "sliding_window", "fixed_window"])
@settings(max_examples=150, deadline=None)
@given(
    rules=st.sampled_from(RULESETS),
    start=st.integers(0, 10**12),
    ops=st.lists(OPS, min_size=1, max_size=60),
)
def test_decisions_match_the_reference_model(
    algorithm: str, rules: str, start: int, ops: list[tuple[str, str, int, int]]
) -> None:
    clock = ManualClock()
    clock.set_ns(start)
    limiter = RateLimiter(rules, algorithm, clock=clock)
    model = Model(algorithm, [(r.limit, r.period_ns) for r in limiter.rules])
    cost_cap = min(r.limit for r in limiter.rules)
    now = start
    for op, key, cost, advance in ops:
        clock.advance_ns(advance)
        now += advance
        cost = min(cost, cost_cap)
        if op == "reset":
            limiter.reset(key)
            model.reset(key)
            continue
        got = limiter.hit(key, cost) if op == "hit" else limiter.test(key, cost)
        want, index = model.decide(key, cost, now, consume=op == "hit")
        assert (got.allowed, got.limit, got.remaining, got.reset_after_ns, got.retry_after_ns) == (
            want.allowed,
            want.limit,
            want.remaining,
            want.reset_after,
            want.retry_after,
        ), (op, key, cost, now)
        assert got.rule_index == index
        assert got.retry_after_ns >= 0
        assert got.reset_after_ns >= 0


# --- contention


@pytest.mark.parametrize("algorithm", ["gcra", "sliding_window", "fixed_window"])
def test_sixteen_threads_never_admit_more_than_the_limit_per_window(algorithm: str) -> None:
    clock = ManualClock(10_000.0)
    limiter = RateLimiter("100/minute", algorithm, clock=clock)
    lock = threading.Lock()
    for window in range(3):
        counts: list[int] = []
        barrier = threading.Barrier(16)

        def hammer(barrier: threading.Barrier = barrier, counts: list[int] = counts) -> None:
            barrier.wait()
            mine = sum(1 for _ in range(50) if limiter.hit("hot"))
            with lock:
                counts.append(mine)

        threads = [threading.Thread(target=hammer) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        admitted = sum(counts)
        # Frozen clock: exactly the quota; after two whole periods, exactly the quota again.
        assert admitted == 100, (algorithm, window)
        clock.advance(120)


def test_the_lazily_loaded_names_are_the_submodules_public_names() -> None:
    # The package names its stores and middleware three times (the TYPE_CHECKING imports for type
    # checkers, `_LAZY` for first use, `__all__`): each list must name what the submodules export.
    import ast
    import importlib
    from pathlib import Path

    import blocktrust_native.ratelimit as rl

    lazy: dict[str, str] = rl._LAZY  # type: ignore[attr-defined]
    for module in set(lazy.values()):
        sub = importlib.import_module(f"blocktrust_native.ratelimit.{module}")
        assert {n for n, m in lazy.items() if m == module} == set(sub.__all__), module
        for name in sub.__all__:
            assert getattr(rl, name) is getattr(sub, name)
    assert set(lazy) <= set(rl.__all__)
    typed: dict[str, str] = {}
    for node in ast.walk(ast.parse(Path(rl.__file__).read_text(encoding="utf-8"))):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom)
                assert imp.module
                typed |= {a.name: imp.module.rsplit(".", 1)[1] for a in imp.names}
    assert typed == lazy
