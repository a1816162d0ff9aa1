"""The in-process rate limiter, its rules and decisions, and the HTTP header fields they give."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from blocktrust_native._native import ratelimit as _native
from blocktrust_native.errors import ConfigError, RateLimitExceeded

__all__ = [
    "ALGORITHMS",
    "ConfigError",
    "Decision",
    "Limiter",
    "ManualClock",
    "RateLimitExceeded",
    "RateLimiter",
    "Rule",
    "SteadyClock",
    "parse_rules",
    "rate_limit_headers",
]

Decision = _native.Decision
Rule = _native.Rule
ManualClock = _native.ManualClock
SteadyClock = _native.SteadyClock
parse_rules = _native.parse_rules

#: The algorithm names RateLimiter accepts.
ALGORITHMS = ("gcra", "sliding_window", "fixed_window")

_NS = 1_000_000_000


def _ceil_seconds(ns: int) -> int:
    return -(-ns // _NS)


def as_rules(rules: str | Rule | Iterable[str | Rule]) -> list[Rule]:
    """Turns a rule string, a Rule, or a list of either into a list of Rules."""
    if isinstance(rules, str):
        return parse_rules(rules)
    if isinstance(rules, Rule):
        return [rules]
    out: list[Rule] = []
    for item in rules:
        if isinstance(item, Rule):
            out.append(item)
        elif isinstance(item, str):
            out.extend(parse_rules(item))
        else:
            raise ConfigError(
                f"a rate limit rule must be a string or Rule, not {type(item).__name__}"
            )
    if not out:
        raise ConfigError("a rate limiter needs at least one rule")
    return out


def rate_limit_headers(decision: Decision, rule: Rule | None = None) -> dict[str, str]:
    """HTTP fields for a decision: RateLimit-Limit/-Remaining/-Reset (+ -Policy given the rule),
    and Retry-After when denied; durations are whole seconds rounded up."""
    headers = {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(max(0, decision.remaining)),
        "RateLimit-Reset": str(_ceil_seconds(decision.reset_after_ns)),
    }
    if rule is not None:
        headers["RateLimit-Policy"] = f"{rule.limit};w={_ceil_seconds(rule.period_ns)}"
    if not decision.allowed:
        headers["Retry-After"] = str(max(1, _ceil_seconds(decision.retry_after_ns)))
    return headers


@runtime_checkable
class Limiter(Protocol):
    """What the middleware needs: RateLimiter and PgRateLimiter both fit."""

    @property
    def rules(self) -> list[Rule]:
        """The rules, in order."""
        ...

    def hit(self, key: str, cost: int = 1) -> Decision:
        """Consumes ``cost`` units of ``key`` if every rule admits it."""
        ...

    def test(self, key: str, cost: int = 1) -> Decision:
        """What ``hit`` would decide, without consuming."""
        ...

    def reset(self, key: str) -> bool:
        """Forgets ``key``."""
        ...


class RateLimiter(_native.RateLimiter):
    """An in-process, thread-safe rate limiter over many keys.

    ``rules``: "5/15minutes", "100/second;1000/hour" or a list of such strings (all must pass).
    ``algorithm``: "gcra" (default; token bucket with burst = limit), "sliding_window" (the
    counter approximation ``limits`` calls sliding window) or "fixed_window".
    ``max_keys``: keys held at most (default 100,000); when full, keys whose state is back to
    fresh go first, then the least recently used (whose usage is forgotten: size it above the
    number of keys active within one period). ``clock``: a ManualClock for deterministic tests.

    ``hit(key, cost=1)``, ``test(key, cost=1)`` and ``reset(key)`` come from the native core;
    a bad rule, algorithm or cost raises :class:`ConfigError`.
    """

    def __init__(
        self,
        rules: str | Rule | Iterable[str | Rule],
        algorithm: str = "gcra",
        *,
        max_keys: int = 100_000,
        clock: ManualClock | SteadyClock | None = None,
    ) -> None:
        if not isinstance(max_keys, int) or max_keys < 1:
            raise ConfigError(f"max_keys must be a positive integer, got {max_keys!r}")
        super().__init__(as_rules(rules), algorithm, max_keys, clock)
        self._rule_list = super().rules  # the native property copies; headers() wants it cheap

    def headers(self, decision: Decision) -> dict[str, str]:
        """The HTTP fields for ``decision`` (see :func:`rate_limit_headers`)."""
        return rate_limit_headers(decision, self._rule_list[decision.rule_index])

    def check(self, key: str, cost: int = 1) -> Decision:
        """Like ``hit``, but raises :class:`RateLimitExceeded` (with the decision) when denied."""
        decision = self.hit(key, cost)
        if not decision.allowed:
            raise RateLimitExceeded(decision)
        return decision

    def __repr__(self) -> str:
        rules = ";".join(r.text for r in self.rules)
        return f"<RateLimiter {rules!r} {self.algorithm} max_keys={self.max_keys}>"
