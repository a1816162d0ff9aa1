"""A rate limiter shared by many server processes through Redis or Valkey (one round trip).

    limiter = RedisRateLimiter("redis://cache:6379/0", "5/15minutes")    # or a RedisClient
    decision = limiter.hit(f"login:{user}")             # or: await limiter.hit_async(...)

Same rules, algorithms (``gcra``, ``sliding_window``, ``fixed_window``), :class:`Decision`, headers
and middleware as :class:`~blocktrust_native.ratelimit.RateLimiter`. Each decision, whatever the
number of rules, is one ``EVALSHA`` of a Lua script that holds the arithmetic; the script is sent
once (``EVAL`` on ``NOSCRIPT``, e.g. after a restart) and runs atomically on the server's clock
(``TIME``), so replicas with skewed clocks agree and concurrent callers in any number of processes
never exceed a limit. A key's state is one string, ``<prefix><namespace>|{<key>}``, holding every
rule's state: the braces are a Redis Cluster hash tag, so whatever a decision touches lives in one
slot. It expires once its quota is fully back.

Failure policy, per rule (``fail_open=True``, or one bool per rule): when Redis cannot be reached
or answers with an error, a decision is admitted only if every rule fails open; otherwise it is
denied by the first fail-closed rule with ``Retry-After: retry_after_on_error``. Either way
``degraded=True`` and a warning is logged (at most every 10 seconds, no password).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

from blocktrust_native._native import redis as _native
from blocktrust_native.errors import ConfigError, RateLimitExceeded, RedisError
from blocktrust_native.ratelimit.limiter import (
    ALGORITHMS,
    Decision,
    ManualClock,
    Rule,
    as_rules,
    rate_limit_headers,
)
from blocktrust_native.ratelimit.policy import FailurePolicy
from blocktrust_native.redis import RedisClient

__all__ = ["RedisRateLimiter"]


class RedisRateLimiter:
    """GCRA / sliding / fixed window over Redis with the methods of :class:`RateLimiter`.

    ``redis``: a URL (see :mod:`blocktrust_native.redis`) or a :class:`RedisClient` to share.
    ``rules``, ``algorithm``: as for RateLimiter. ``prefix``: starts every Redis key (default
    ``rl:``). ``namespace``: separates limiters (default: the algorithm and the rules, so changing
    them starts afresh). ``fail_open``: the failure policy, one bool or one per rule.
    ``retry_after_on_error``: Retry-After (seconds) of a fail-closed denial. ``clock``: a
    :class:`ManualClock` to decide at its time instead of the server's (tests only).
    """

    def __init__(
        self,
        redis: str | RedisClient,
        rules: str | Rule | Iterable[str | Rule],
        algorithm: str = "gcra",
        *,
        prefix: str = "rl:",
        namespace: str | None = None,
        fail_open: bool | Sequence[bool] = True,
        retry_after_on_error: float = 1.0,
        clock: ManualClock | None = None,
    ) -> None:
        if isinstance(redis, str):
            redis = RedisClient(redis)
        elif not isinstance(redis, RedisClient):
            raise ConfigError(f"redis must be a URL or a RedisClient, not {type(redis).__name__}")
        if algorithm not in ALGORITHMS:
            raise ConfigError(f"unknown algorithm {algorithm!r}; use one of {ALGORITHMS}")
        rule_list = as_rules(rules)
        self._policy = FailurePolicy(fail_open, rule_list, retry_after_on_error)
        #: Per rule: admit (True) or deny (False) when the store cannot be reached.
        self.fail_open: list[bool] = self._policy.fail_open
        if clock is not None and not isinstance(clock, ManualClock):
            raise ConfigError("clock must be a ManualClock (the default is the server's TIME)")
        if namespace is None:
            namespace = algorithm + ":" + ";".join(r.text for r in rule_list)
        self.client = redis
        self.namespace = namespace
        self.retry_after_on_error = self._policy.retry_after_on_error
        self._core = _native.RedisRateLimiter(redis, rule_list, algorithm, f"{prefix}{namespace}|")
        self.rules: list[Rule] = list(self._core.rules)
        self.algorithm = algorithm
        self._clock = clock
        self._clock_lock = threading.Lock()

    # -- decisions ---------------------------------------------------------------------------

    def _run(self, op: str, key: str, cost: int) -> Decision:
        if not isinstance(cost, int) or isinstance(cost, bool):
            raise ConfigError(f"cost must be an integer, got {cost!r}")
        try:
            if self._clock is None:
                return getattr(self._core, op)(key, cost)  # type: ignore[no-any-return]
            with self._clock_lock:
                self._core.set_fixed_time_us(self._clock.now_ns() // 1000)
                return getattr(self._core, op)(key, cost)  # type: ignore[no-any-return]
        except RedisError as exc:
            return self._policy.degraded(exc)

    def hit(self, key: str, cost: int = 1) -> Decision:
        """Consumes ``cost`` from every rule of ``key`` if all admit it (one round trip)."""
        return self._run("hit", key, cost)

    async def hit_async(self, key: str, cost: int = 1) -> Decision:
        """``hit`` without blocking the event loop (runs on the loop's executor threads)."""
        import asyncio  # already loaded by the running loop; not at import time (~50 ms)

        return await asyncio.get_running_loop().run_in_executor(None, self.hit, key, cost)

    def test(self, key: str, cost: int = 1) -> Decision:
        """What ``hit`` would decide now, without consuming (remaining is before the hit)."""
        return self._run("test", key, cost)

    def reset(self, key: str) -> bool:
        """Forgets ``key``; returns whether it was held (raises if Redis is unreachable)."""
        return bool(self._core.reset(key))

    def check(self, key: str, cost: int = 1) -> Decision:
        """Like ``hit``, but raises :class:`RateLimitExceeded` when denied."""
        decision = self.hit(key, cost)
        if not decision.allowed:
            raise RateLimitExceeded(decision)
        return decision

    def headers(self, decision: Decision) -> dict[str, str]:
        """The HTTP fields for ``decision``."""
        return rate_limit_headers(decision, self.rules[decision.rule_index])

    def redis_key(self, key: str) -> str:
        """The Redis key that holds ``key``'s state."""
        return str(self._core.redis_key(key))

    def close(self) -> None:
        """Closes the client's idle connections."""
        self.client.close()

    def __enter__(self) -> RedisRateLimiter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        rules = ";".join(r.text for r in self.rules)
        policy = self._policy.describe()
        return f"<RedisRateLimiter {rules!r} {self.algorithm} {self.client!r} fail={policy}>"
