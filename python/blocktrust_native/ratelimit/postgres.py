"""A rate limiter shared by many server processes through PostgreSQL (one round trip).

    pool = Pool(dsn, max_size=8)                        # blocktrust_native.pool
    limiter = PgRateLimiter(pool, "5/15minutes", fail_open=False)        # gcra
    api = PgRateLimiter(pool, "100/second", "sliding_window", fail_open=True)
    decision = limiter.hit(f"login:{user}")             # or: await limiter.hit_async(...)

Same algorithms as the in-process limiter (``gcra``, ``sliding_window``, ``fixed_window``). Each
decision is one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` that holds the algorithm's
arithmetic (admit only if every rule admits; a refused hit changes nothing) on the database's clock
(``statement_timestamp()``), so servers with skewed clocks agree and concurrent callers in any
number of processes are serialized by the row lock: exact, never more than the limit. The statement
returns the key's state and the time it decided at; remaining / reset / retry are derived from them
exactly, in integers. It uses no server-side prepared statement and no session state, so it is safe
behind PgBouncer in transaction mode (create the pool with ``pgbouncer=True`` there).

A key's row holds one ``bigint[]`` (column ``tat``): the theoretical arrival times (gcra), the
window indices then the counts (fixed_window), or the window indices, the previous windows' counts
and the current ones (sliding_window), one of each per rule, in microseconds and windows aligned to
the epoch as in the in-process limiter.

The table (``UNLOGGED`` by default: limits are ephemeral, and a crash only forgets them) is
created idempotently on first use. Rows whose quota is fully back are deleted in small batches
with ``FOR UPDATE SKIP LOCKED`` by a background thread, so cleanup never blocks a caller.

Failure policy, per rule and required (``fail_open=False``, or one bool per rule): when the
database cannot be reached, a decision is admitted only if every rule fails open; otherwise it is
denied by the first fail-closed rule with ``Retry-After: retry_after_on_error`` (see
:mod:`.policy`). There is no default, because the right policy depends on the rule: a login limit
that fails open turns a database outage into unlimited password guessing; a limit on cheap reads
may rather stay out of the way.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from blocktrust_native import errors as _errors
from blocktrust_native.errors import ConfigError, RateLimitExceeded
from blocktrust_native.ratelimit.limiter import (
    ALGORITHMS,
    Decision,
    ManualClock,
    Rule,
    as_rules,
    rate_limit_headers,
)
from blocktrust_native.ratelimit.policy import FailurePolicy

__all__ = ["PgRateLimiter"]

log = logging.getLogger("blocktrust_native.ratelimit")

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,50}(\.[a-z_][a-z0-9_]{0,50})?$")

# Errors that mean "the store is unavailable" (the pool's families; Error as a fallback).
_STORE_ERRORS: tuple[type[BaseException], ...] = tuple(
    getattr(_errors, name) for name in ("DatabaseError", "PoolTimeout") if hasattr(_errors, name)
) or (_errors.Error,)

_US = 1_000_000


# The database's clock in microseconds, unless $n gives the time (a ManualClock, for tests).
def _now(n: int) -> str:
    return f"coalesce(${n}::bigint, (extract(epoch FROM statement_timestamp()) * 1000000)::bigint)"


def _gcra_sql(table: str, n: int) -> str:
    # $1 key, $2 emission intervals (us, one per rule), $3 capacities (us), $4 cost, $5 the time
    # in us or NULL for the database's.
    # A fresh key always passes (cost <= every limit). An existing one passes only if every rule
    # admits it; a refused hit leaves the TATs as they were. RETURNING gives the caller what it
    # needs to compute remaining / reset / retry exactly, on the database's clock.
    del n  # one TAT per rule: unnest pads nothing
    return f"""
WITH c AS (SELECT {_now(5)} AS now_us)
INSERT INTO {table} AS r (key, tat, at_us, allowed, expires_at)
SELECT $1::text,
       (SELECT array_agg(c.now_us + $4::bigint * e ORDER BY i)
          FROM unnest($2::bigint[]) WITH ORDINALITY AS u(e, i)),
       c.now_us, true,
       to_timestamp((c.now_us + $4::bigint * (SELECT max(e) FROM unnest($2::bigint[]) AS m(e)))
                    / 1000000.0)
FROM c
ON CONFLICT (key) DO UPDATE SET (tat, at_us, allowed, expires_at) = (
  SELECT CASE WHEN bool_and(ok) THEN array_agg(nt ORDER BY i) ELSE array_agg(old ORDER BY i) END,
         excluded.at_us,
         bool_and(ok),
         to_timestamp(CASE WHEN bool_and(ok) THEN max(nt) ELSE max(old) END / 1000000.0)
  FROM (SELECT i, old,
               greatest(old, excluded.at_us) + $4::bigint * e AS nt,
               greatest(old, excluded.at_us) + $4::bigint * e - excluded.at_us <= cap AS ok
          FROM unnest(r.tat, $2::bigint[], $3::bigint[]) WITH ORDINALITY AS u(old, e, cap, i)
         WHERE e IS NOT NULL) AS s)
RETURNING array_to_string(r.tat, ','), r.at_us, r.allowed"""


def _fixed_sql(table: str, n: int) -> str:
    # $1 key, $2 limits, $3 periods (us), $4 cost, $5 the time in us or NULL. State: the n window
    # indices (now / period: windows aligned to the epoch), then the n counts. A count from an
    # older window is 0 in this one.
    return f"""
WITH c AS (SELECT {_now(5)} AS now_us)
INSERT INTO {table} AS r (key, tat, at_us, allowed, expires_at)
SELECT $1::text,
       (SELECT array_agg(c.now_us / p ORDER BY i) || array_agg($4::bigint ORDER BY i)
          FROM unnest($3::bigint[]) WITH ORDINALITY AS u(p, i)),
       c.now_us, true,
       to_timestamp((SELECT max((c.now_us / p + 1) * p) FROM unnest($3::bigint[]) AS m(p))
                    / 1000000.0)
FROM c
ON CONFLICT (key) DO UPDATE SET (tat, at_us, allowed, expires_at) = (
  SELECT CASE WHEN bool_and(ok)
              THEN array_agg(w ORDER BY i) || array_agg(cnt + $4::bigint ORDER BY i)
              ELSE r.tat END,
         excluded.at_us,
         bool_and(ok),
         CASE WHEN bool_and(ok) THEN to_timestamp(max((w + 1) * p) / 1000000.0)
              ELSE r.expires_at END
  FROM (SELECT i, p, w, cnt, cnt + $4::bigint <= l AS ok
          FROM (SELECT i, l, p, excluded.at_us / p AS w,
                       CASE WHEN ow = excluded.at_us / p THEN oc ELSE 0 END AS cnt
                  FROM unnest(r.tat[1:{n}], r.tat[{n + 1}:{2 * n}], $2::bigint[], $3::bigint[])
                       WITH ORDINALITY AS u(ow, oc, l, p, i)
                 WHERE l IS NOT NULL) AS s0) AS s)
RETURNING array_to_string(r.tat, ','), r.at_us, r.allowed"""


def _sliding_sql(table: str, n: int) -> str:
    # $1 key, $2 limits, $3 periods (us), $4 cost, $5 the time in us or NULL. State: the n window
    # indices, the n previous windows' counts, the n current counts. A hit is admitted when the
    # previous count weighted by its overlap with the sliding window, plus the current count and
    # the cost, stays within the limit: prev * (P - elapsed) + (curr + cost) * P <= limit * P
    # (numeric: exact, no overflow).
    return f"""
WITH c AS (SELECT {_now(5)} AS now_us)
INSERT INTO {table} AS r (key, tat, at_us, allowed, expires_at)
SELECT $1::text,
       (SELECT array_agg(c.now_us / p ORDER BY i) || array_agg(0::bigint ORDER BY i)
               || array_agg($4::bigint ORDER BY i)
          FROM unnest($3::bigint[]) WITH ORDINALITY AS u(p, i)),
       c.now_us, true,
       to_timestamp((SELECT max((c.now_us / p + 2) * p) FROM unnest($3::bigint[]) AS m(p))
                    / 1000000.0)
FROM c
ON CONFLICT (key) DO UPDATE SET (tat, at_us, allowed, expires_at) = (
  SELECT CASE WHEN bool_and(ok)
              THEN array_agg(w ORDER BY i) || array_agg(prev ORDER BY i)
                   || array_agg(cur + $4::bigint ORDER BY i)
              ELSE r.tat END,
         excluded.at_us,
         bool_and(ok),
         CASE WHEN bool_and(ok) THEN to_timestamp(max((w + 2) * p) / 1000000.0)
              ELSE r.expires_at END
  FROM (SELECT i, p, w, prev, cur,
               prev::numeric * (p - (excluded.at_us - w * p)) + (cur + $4::bigint)::numeric * p
                 <= l::numeric * p AS ok
          FROM (SELECT i, l, p, excluded.at_us / p AS w,
                       CASE WHEN ow = excluded.at_us / p THEN op
                            WHEN ow = excluded.at_us / p - 1 THEN oc ELSE 0 END AS prev,
                       CASE WHEN ow = excluded.at_us / p THEN oc ELSE 0 END AS cur
                  FROM unnest(r.tat[1:{n}], r.tat[{n + 1}:{2 * n}], r.tat[{2 * n + 1}:{3 * n}],
                              $2::bigint[], $3::bigint[])
                       WITH ORDINALITY AS u(ow, op, oc, l, p, i)
                 WHERE l IS NOT NULL) AS s0) AS s)
RETURNING array_to_string(r.tat, ','), r.at_us, r.allowed"""


_SQL = {"gcra": _gcra_sql, "fixed_window": _fixed_sql, "sliding_window": _sliding_sql}

# One rule's verdict: admitted, remaining, reset_after (us), retry_after (us).
_Step = tuple[bool, int, int, int]


def _gcra_step(tat: int | None, em: int, cap: int, now: int, cost: int, consume: bool) -> _Step:
    tat = now if tat is None else max(tat, now)
    new = tat + cost * em
    if new - now > cap:
        return (False, max(0, (cap - (tat - now)) // em), tat - now, new - cap - now)
    after = new - now if consume else tat - now
    return (True, max(0, (cap - after) // em), after, 0)


def _fixed_step(
    w: int | None, count: int, limit: int, period: int, now: int, cost: int, consume: bool
) -> _Step:
    idx = now // period
    if w != idx:
        count = 0
    to_end = (idx + 1) * period - now
    if count + cost > limit:
        return (False, limit - count, to_end if count > 0 else 0, to_end)
    after = count + cost if consume else count
    return (True, limit - after, to_end if after > 0 else 0, 0)


def _sliding_step(
    w: int | None,
    prev: int,
    curr: int,
    limit: int,
    period: int,
    now: int,
    cost: int,
    consume: bool,
) -> _Step:
    idx = now // period
    e = now - idx * period
    if w == idx:
        pass
    elif w is not None and w == idx - 1:
        prev, curr = curr, 0
    else:
        prev, curr = 0, 0

    def reset_for(c: int) -> int:
        if c > 0:
            return (idx + 2) * period - now
        return (idx + 1) * period - now if prev > 0 else 0

    before = prev * (period - e) + curr * period
    if before + cost * period > limit * period:
        remaining = max(0, (limit * period - before) // period)
        if curr + cost <= limit:  # once prev's weight has shrunk enough, in this window
            retry = -(-period * (prev - (limit - curr - cost)) // prev) - e
        else:  # in the next window, where this one's count is the weighted one
            retry = (idx + 1) * period - (-period * (curr - (limit - cost)) // curr) - now
        return (False, remaining, reset_for(curr), retry)
    used = before + cost * period if consume else before
    return (True, (limit * period - used) // period, reset_for(curr + cost if consume else curr), 0)


class PgRateLimiter:
    """GCRA / sliding / fixed window over PostgreSQL with the methods of :class:`RateLimiter`
    (and ``*_async`` ones).

    ``pool``: a :class:`blocktrust_native.pool.Pool`. ``rules``, ``algorithm``: as for
    RateLimiter. ``table``: the table name (default ``blocktrust_ratelimit``; one table serves
    every algorithm). ``namespace``: prefixes every key (default: the rules text, preceded by the
    algorithm for the windows, so changing either starts afresh; limiters with different rules or
    algorithms must not share one). ``fail_open`` (required, one bool or one per rule): admit
    (True) or deny (False) when the database is unreachable; ``retry_after_on_error``: the
    Retry-After of such a denial (default 1s). ``cleanup_interval``: seconds between
    background cleanup passes (None: no background thread; call :meth:`cleanup` yourself).
    ``clock``: a :class:`ManualClock` to decide at its time instead of the database's (tests).
    """

    def __init__(
        self,
        pool: Any,
        rules: str | Rule | Iterable[str | Rule],
        algorithm: str = "gcra",
        *,
        table: str = "blocktrust_ratelimit",
        namespace: str | None = None,
        fail_open: bool | Sequence[bool],
        unlogged: bool = True,
        retry_after_on_error: float = 1.0,
        cleanup_interval: float | None = 60.0,
        cleanup_batch: int = 500,
        clock: ManualClock | None = None,
    ) -> None:
        if not _IDENT.match(table):
            raise ConfigError(f"table {table!r}: use lowercase letters, digits and _ (schema.name)")
        if algorithm not in ALGORITHMS:
            raise ConfigError(f"unknown algorithm {algorithm!r}; use one of {ALGORITHMS}")
        #: The algorithm: ``gcra``, ``sliding_window`` or ``fixed_window``.
        self.algorithm = algorithm
        self.rules: list[Rule] = as_rules(rules)
        self._policy = FailurePolicy(fail_open, self.rules, retry_after_on_error)
        #: Per rule: admit (True) or deny (False) when the store cannot be reached.
        self.fail_open: list[bool] = self._policy.fail_open
        for r in self.rules:
            if r.limit > r.period_ns // 1000:
                raise ConfigError(f"rule {r.text!r}: more than one unit per microsecond")
        if cleanup_batch < 1:
            raise ConfigError("cleanup_batch must be at least 1")
        if clock is not None and not isinstance(clock, ManualClock):
            raise ConfigError("clock must be a ManualClock (the default is the database's)")
        self._clock = clock
        self.pool = pool
        self.table = table
        if namespace is None:
            namespace = ";".join(r.text for r in self.rules)
            if algorithm != "gcra":  # gcra keeps the namespace it had before the windows came
                namespace = f"{algorithm}:{namespace}"
        self.namespace = namespace
        self.retry_after_on_error = self._policy.retry_after_on_error
        self.cleanup_batch = cleanup_batch
        self._unlogged = unlogged
        n = len(self.rules)
        self._periods = [r.period_ns // 1000 for r in self.rules]
        self._limits = [r.limit for r in self.rules]
        # GCRA in microseconds: emission interval rounded up (never faster than the rule).
        self._emission = [-(-p // r.limit) for p, r in zip(self._periods, self.rules, strict=True)]
        self._capacity = [e * r.limit for e, r in zip(self._emission, self.rules, strict=True)]
        first, second = (
            (self._emission, self._capacity)
            if algorithm == "gcra"
            else (self._limits, self._periods)
        )
        self._array_params = [
            "{" + ",".join(map(str, first)) + "}",
            "{" + ",".join(map(str, second)) + "}",
        ]
        self._state_len = {"gcra": n, "fixed_window": 2 * n, "sliding_window": 3 * n}[algorithm]
        self._min_limit = min(r.limit for r in self.rules)
        self._sql_hit = _SQL[algorithm](table, n)
        self._sql_peek = (
            f"SELECT array_to_string(r.tat, ','), c.now_us FROM (SELECT {_now(2)} AS now_us) "
            f"AS c LEFT JOIN {table} AS r ON r.key = $1"
        )
        self._ready = False
        self._ready_lock = threading.Lock()
        self._stop = threading.Event()
        self._cleaner: threading.Thread | None = None
        if cleanup_interval is not None:
            if cleanup_interval <= 0:
                raise ConfigError("cleanup_interval must be positive (or None)")
            self._cleaner = threading.Thread(
                target=self._clean_loop,
                args=(cleanup_interval,),
                daemon=True,
                name=f"ratelimit-cleanup-{table}",
            )
            self._cleaner.start()

    # -- schema ------------------------------------------------------------------------------

    def ensure_table(self) -> None:
        """Creates the table and its index if missing (idempotent, safe from many processes)."""
        kind = "UNLOGGED TABLE" if self._unlogged else "TABLE"
        index = self.table.replace(".", "_") + "_expires"
        self.pool.execute(
            f"CREATE {kind} IF NOT EXISTS {self.table} ("
            "key text PRIMARY KEY, tat bigint[] NOT NULL, at_us bigint NOT NULL, "
            "allowed boolean NOT NULL, expires_at timestamptz NOT NULL)"
        )
        self.pool.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {self.table} (expires_at)")
        self._ready = True

    def _ensure(self) -> None:
        if not self._ready:
            with self._ready_lock:
                if not self._ready:
                    try:
                        self.ensure_table()
                    except _STORE_ERRORS:
                        # Two processes racing on CREATE ... IF NOT EXISTS can collide on the
                        # catalog's unique index; the loser just checks again.
                        time.sleep(0.05)
                        self.ensure_table()

    # -- decisions ---------------------------------------------------------------------------

    def _check_cost(self, cost: int) -> None:
        if not isinstance(cost, int) or cost < 1:
            raise ConfigError(f"cost must be at least 1, got {cost!r}")
        if cost > self._min_limit:
            raise ConfigError(
                f"cost {cost} exceeds the smallest limit ({self._min_limit}), "
                "so it could never be admitted"
            )

    def _params(self, key: str, cost: int) -> list[Any]:
        # Arrays travel as text literals: plain parameters, no driver-specific array types.
        return [f"{self.namespace}|{key}", *self._array_params, cost, self._now_us()]

    def _now_us(self) -> int | None:
        return None if self._clock is None else self._clock.now_ns() // 1000

    def _state(self, text: str | None) -> list[int | None]:
        """The stored state, one slot per number (None: nothing stored, or another layout)."""
        values: list[int | None] = [int(t) for t in text.split(",")] if text else []
        return values if len(values) == self._state_len else [None] * self._state_len

    def _decide(self, state: Sequence[int | None], now: int, cost: int, consume: bool) -> Decision:
        """The decision for a stored state at ``now`` (us): the in-process limiter's steps, and
        its choice of rule (denied: the longest wait; admitted: the least left)."""
        n = len(self.rules)
        steps: list[_Step] = []
        for i in range(n):
            if self.algorithm == "gcra":
                steps.append(
                    _gcra_step(state[i], self._emission[i], self._capacity[i], now, cost, consume)
                )
            elif self.algorithm == "fixed_window":
                steps.append(
                    _fixed_step(
                        state[i],
                        state[n + i] or 0,
                        self._limits[i],
                        self._periods[i],
                        now,
                        cost,
                        consume,
                    )
                )
            else:
                steps.append(
                    _sliding_step(
                        state[i],
                        state[n + i] or 0,
                        state[2 * n + i] or 0,
                        self._limits[i],
                        self._periods[i],
                        now,
                        cost,
                        consume,
                    )
                )
        if all(s[0] for s in steps):
            best = min(range(n), key=lambda i: (steps[i][1], -steps[i][2], i))
        else:
            denied = [i for i, s in enumerate(steps) if not s[0]]
            best = min(denied, key=lambda i: (-steps[i][3], i))
        allowed, remaining, reset, retry = steps[best]
        return Decision(
            allowed=allowed,
            limit=self.rules[best].limit,
            remaining=remaining,
            reset_after=reset / _US,
            retry_after=retry / _US,
            rule_index=best,
        )

    def _from_hit_row(self, row: Sequence[Any], cost: int) -> Decision:
        text, now, allowed = row
        state = self._state(text)
        if allowed:
            # The row holds the state after this hit; the decision is the one taken before it.
            n = len(self.rules)
            if self.algorithm == "gcra":
                for i in range(n):
                    state[i] = int(state[i] or 0) - cost * self._emission[i]
            else:  # the current counts (the last n) held the cost too
                for i in range(self._state_len - n, self._state_len):
                    state[i] = int(state[i] or 0) - cost
        return self._decide(state, now, cost, True)

    def hit(self, key: str, cost: int = 1) -> Decision:
        """Consumes ``cost`` from every rule of ``key`` if all admit it (one round trip)."""
        self._check_cost(cost)
        try:
            self._ensure()
            (row,) = self.pool.execute(self._sql_hit, self._params(key, cost))
        except _STORE_ERRORS as exc:
            return self._policy.degraded(exc)
        return self._from_hit_row(row, cost)

    async def hit_async(self, key: str, cost: int = 1) -> Decision:
        """``hit`` without blocking the event loop (runs on the pool's worker threads)."""
        self._check_cost(cost)
        try:
            if not self._ready:
                import asyncio

                await asyncio.get_running_loop().run_in_executor(None, self._ensure)
            (row,) = await self.pool.execute_async(self._sql_hit, self._params(key, cost))
        except _STORE_ERRORS as exc:
            return self._policy.degraded(exc)
        return self._from_hit_row(row, cost)

    def test(self, key: str, cost: int = 1) -> Decision:
        """What ``hit`` would decide now, without consuming (remaining is before the hit)."""
        self._check_cost(cost)
        try:
            self._ensure()
            ((text, now),) = self.pool.execute(
                self._sql_peek, [f"{self.namespace}|{key}", self._now_us()]
            )
        except _STORE_ERRORS as exc:
            return self._policy.degraded(exc)
        return self._decide(self._state(text), now, cost, False)

    def reset(self, key: str) -> bool:
        """Forgets ``key``; returns whether it was held."""
        self._ensure()
        rows = self.pool.execute(
            f"DELETE FROM {self.table} WHERE key = $1 RETURNING 1", [f"{self.namespace}|{key}"]
        )
        return bool(rows)

    def check(self, key: str, cost: int = 1) -> Decision:
        """Like ``hit``, but raises :class:`RateLimitExceeded` when denied."""
        decision = self.hit(key, cost)
        if not decision.allowed:
            raise RateLimitExceeded(decision)
        return decision

    def headers(self, decision: Decision) -> dict[str, str]:
        """The HTTP fields for ``decision``."""
        return rate_limit_headers(decision, self.rules[decision.rule_index])

    # -- cleanup -----------------------------------------------------------------------------

    def cleanup(self) -> int:
        """Deletes up to ``cleanup_batch`` rows whose quota is back, skipping rows in use;
        returns how many were deleted."""
        self._ensure()
        rows = self.pool.execute(
            f"DELETE FROM {self.table} WHERE ctid IN ("
            f"SELECT ctid FROM {self.table} WHERE expires_at < statement_timestamp() "
            "LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING 1",
            [self.cleanup_batch],
        )
        return len(rows)

    def _clean_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                # Small batches until a short one: each is its own short transaction.
                while self.cleanup() == self.cleanup_batch and not self._stop.is_set():
                    pass
            except Exception as exc:  # the store may be down; the next pass retries
                log.debug("rate limit cleanup failed: %s", type(exc).__name__)

    def close(self) -> None:
        """Stops the background cleanup (the pool stays open: it is the caller's)."""
        self._stop.set()
        if self._cleaner is not None and self._cleaner is not threading.current_thread():
            self._cleaner.join(5)

    def __enter__(self) -> PgRateLimiter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        rules = ";".join(r.text for r in self.rules)
        return (
            f"<PgRateLimiter {rules!r} {self.algorithm} table={self.table} "
            f"fail={self._policy.describe()}>"
        )
