"""Small reference models of the rate-limit algorithms, written independently of the C++ core.

GCRA is modelled as the token bucket it is equivalent to (exact fractions of tokens), and the
sliding-window counter finds Retry-After by searching time, not by the closed form the core uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

NS = 1_000_000_000


@dataclass
class Verdict:
    allowed: bool
    remaining: int
    reset_after: int
    retry_after: int
    limit: int


@dataclass
class TokenBucket:
    """One GCRA rule: capacity ``limit`` tokens, one back every ceil(period / limit) ns."""

    limit: int
    period: int
    tokens: dict[str, tuple[Fraction, int]] = field(default_factory=dict)

    @property
    def interval(self) -> int:
        return -(-self.period // self.limit)

    def level(self, key: str, now: int) -> Fraction:
        tokens, at = self.tokens.get(key, (Fraction(self.limit), now))
        return min(Fraction(self.limit), tokens + Fraction(max(0, now - at), self.interval))

    def decide(self, key: str, cost: int, now: int, consume: bool) -> Verdict:
        t = self.level(key, now)
        if t < cost:
            wait = (cost - t) * self.interval
            assert wait.denominator == 1
            return Verdict(
                False, int(t), int((self.limit - t) * self.interval), int(wait), self.limit
            )
        after = t - cost if consume else t
        return Verdict(True, int(after), int((self.limit - after) * self.interval), 0, self.limit)

    def consume(self, key: str, cost: int, now: int) -> None:
        self.tokens[key] = (self.level(key, now) - cost, now)


@dataclass
class SlidingCounter:
    """One sliding-window-counter rule: counts per aligned window, the previous one weighted."""

    limit: int
    period: int
    counts: dict[tuple[str, int], int] = field(default_factory=dict)

    def used(self, key: str, now: int) -> Fraction:
        w, e = divmod(now, self.period)
        prev = self.counts.get((key, w - 1), 0)
        return Fraction(prev * (self.period - e), self.period) + self.counts.get((key, w), 0)

    def decide(self, key: str, cost: int, now: int, consume: bool) -> Verdict:
        w = now // self.period
        curr = self.counts.get((key, w), 0)
        prev = self.counts.get((key, w - 1), 0)

        def reset_after(c: int) -> int:
            # Full quota once nothing counts: curr lasts into the next window, prev to this end.
            if c:
                return (w + 2) * self.period - now
            return (w + 1) * self.period - now if prev else 0

        used = self.used(key, now)
        if used + cost > self.limit:
            lo, hi = now, now + 2 * self.period  # earliest time at which it fits: binary search
            while lo < hi:
                mid = (lo + hi) // 2
                if self.used(key, mid) + cost <= self.limit:
                    hi = mid
                else:
                    lo = mid + 1
            return Verdict(False, int(self.limit - used), reset_after(curr), lo - now, self.limit)
        if consume:
            return Verdict(
                True, int(self.limit - used - cost), reset_after(curr + cost), 0, self.limit
            )
        return Verdict(True, int(self.limit - used), reset_after(curr), 0, self.limit)

    def consume(self, key: str, cost: int, now: int) -> None:
        w = now // self.period
        self.counts[(key, w)] = self.counts.get((key, w), 0) + cost


@dataclass
class FixedCounter:
    """One fixed-window rule."""

    limit: int
    period: int
    counts: dict[tuple[str, int], int] = field(default_factory=dict)

    def decide(self, key: str, cost: int, now: int, consume: bool) -> Verdict:
        w = now // self.period
        c = self.counts.get((key, w), 0)
        to_end = (w + 1) * self.period - now
        if c + cost > self.limit:
            return Verdict(False, self.limit - c, to_end if c else 0, to_end, self.limit)
        after = c + cost if consume else c
        return Verdict(True, self.limit - after, to_end if after else 0, 0, self.limit)

    def consume(self, key: str, cost: int, now: int) -> None:
        w = now // self.period
        self.counts[(key, w)] = self.counts.get((key, w), 0) + cost


MODELS = {"gcra": TokenBucket, "sliding_window": SlidingCounter, "fixed_window": FixedCounter}


class Model:
    """Several rules of one algorithm; a hit passes only when every rule admits it."""

    def __init__(self, algorithm: str, rules: list[tuple[int, int]]) -> None:
        self.rules = [MODELS[algorithm](limit, period) for limit, period in rules]

    def decide(self, key: str, cost: int, now: int, consume: bool) -> tuple[Verdict, int]:
        verdicts = [r.decide(key, cost, now, consume) for r in self.rules]
        if all(v.allowed for v in verdicts):
            if consume:
                for r in self.rules:
                    r.consume(key, cost, now)
            best = min(
                range(len(verdicts)),
                key=lambda i: (verdicts[i].remaining, -verdicts[i].reset_after, i),
            )
        else:
            denied = [i for i, v in enumerate(verdicts) if not v.allowed]
            best = min(denied, key=lambda i: (-verdicts[i].retry_after, i))
        return verdicts[best], best

    def reset(self, key: str) -> None:
        for r in self.rules:
            store = r.tokens if isinstance(r, TokenBucket) else r.counts
            for k in [k for k in store if k == key or (isinstance(k, tuple) and k[0] == key)]:
                del store[k]


# The model's own known answers, so a wrong model cannot agree with a wrong core.


def test_model_token_bucket_known_answers() -> None:
    m = Model("gcra", [(5, 900 * NS)])
    assert [m.decide("k", 1, 0, True)[0].remaining for _ in range(5)] == [4, 3, 2, 1, 0]
    v, _ = m.decide("k", 1, 0, True)
    assert (v.allowed, v.retry_after, v.reset_after) == (False, 180 * NS, 900 * NS)


def test_model_sliding_counter_known_answers() -> None:
    m = Model("sliding_window", [(10, 60 * NS)])
    for _ in range(10):
        assert m.decide("k", 1, 0, True)[0].allowed
    v, _ = m.decide("k", 1, 0, True)
    assert (v.allowed, v.retry_after) == (False, 66 * NS)  # weight of 10 must fall to 0.9
    assert m.decide("k", 1, 66 * NS, True)[0].allowed
