"""A rate limiter shared by many server processes through PostgreSQL (GCRA, one round trip).

    pool = Pool(dsn, max_size=8)                        # blocktrust_native.pool
    limiter = PgRateLimiter(pool, "5/15minutes", fail_open=False)
    decision = limiter.hit(f"login:{user}")             # or: await limiter.hit_async(...)

Each decision is one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` on the database's clock
(``statement_timestamp()``), so servers with skewed clocks agree and concurrent callers in any
number of processes are serialized by the row lock: exact, never more than the limit. The
statement uses no server-side prepared statement and no session state, so it is safe behind
PgBouncer in transaction mode (create the pool with ``pgbouncer=True`` there).

The table (``UNLOGGED`` by default: limits are ephemeral, and a crash only forgets them) is
created idempotently on first use. Rows whose quota is fully back are deleted in small batches
with ``FOR UPDATE SKIP LOCKED`` by a background thread, so cleanup never blocks a caller.

Failure policy, per rule and required (``fail_open=False``, or one bool per rule): when the
database cannot be reached, a decision is admitted only if every rule fails open; otherwise it is
denied by the first fail-closed rule with ``Retry-After: retry_after_on_error``. Either way the
decision has ``degraded=True`` and a warning is logged (at most every 10 seconds). There is no
default, because the right policy depends on the rule: a login limit that fails open turns a
database outage into unlimited password guessing; a limit on cheap reads may rather stay out of
the way.
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
    Decision,
    ManualClock,
    Rule,
    as_rules,
    rate_limit_headers,
)

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


def _hit_sql(table: str) -> str:
    # $1 key, $2 emission intervals (us, one per rule), $3 capacities (us), $4 cost, $5 the time
    # in us or NULL for the database's.
    # A fresh key always passes (cost <= every limit). An existing one passes only if every rule
    # admits it; a refused hit leaves the TATs as they were. RETURNING gives the caller what it
    # needs to compute remaining / reset / retry exactly, on the database's clock.
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


class PgRateLimiter:
    """GCRA over PostgreSQL with the methods of :class:`RateLimiter` (and ``*_async`` ones).

    ``pool``: a :class:`blocktrust_native.pool.Pool`. ``rules``: as for RateLimiter.
    ``table``: the table name (default ``blocktrust_ratelimit``). ``namespace``: prefixes every
    key (default: the rules text, so changing the rules starts afresh). ``fail_open`` (required,
    one bool or one per rule): admit (True) or deny (False) when the database is unreachable;
    ``retry_after_on_error``:
    the Retry-After of such a denial (default 1s). ``cleanup_interval``: seconds between
    background cleanup passes (None: no background thread; call :meth:`cleanup` yourself).
    ``clock``: a :class:`ManualClock` to decide at its time instead of the database's (tests).
    """

    def __init__(
        self,
        pool: Any,
        rules: str | Rule | Iterable[str | Rule],
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
        self.rules: list[Rule] = as_rules(rules)
        policy = [fail_open] * len(self.rules) if isinstance(fail_open, bool) else fail_open
        if not isinstance(policy, Sequence) or not all(isinstance(f, bool) for f in policy):
            raise ConfigError(
                "fail_open must be True or False (or one per rule): the policy when the store fails"
            )
        if len(policy) != len(self.rules):
            raise ConfigError(f"fail_open has {len(policy)} entries for {len(self.rules)} rules")
        #: Per rule: admit (True) or deny (False) when the store cannot be reached.
        self.fail_open: list[bool] = list(policy)
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
        self.namespace = (
            namespace if namespace is not None else ";".join(r.text for r in self.rules)
        )
        self.retry_after_on_error = float(retry_after_on_error)
        self.cleanup_batch = cleanup_batch
        self._unlogged = unlogged
        # GCRA in microseconds: emission interval rounded up (never faster than the rule).
        self._emission = [-(-(r.period_ns // 1000) // r.limit) for r in self.rules]
        self._capacity = [e * r.limit for e, r in zip(self._emission, self.rules, strict=True)]
        self._emission_text = "{" + ",".join(map(str, self._emission)) + "}"
        self._capacity_text = "{" + ",".join(map(str, self._capacity)) + "}"
        self._min_limit = min(r.limit for r in self.rules)
        self._sql_hit = _hit_sql(table)
        self._sql_peek = (
            f"SELECT array_to_string(r.tat, ','), c.now_us FROM (SELECT {_now(2)} AS now_us) "
            f"AS c LEFT JOIN {table} AS r ON r.key = $1"
        )
        self._ready = False
        self._ready_lock = threading.Lock()
        self._last_warning = 0.0
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
        return [
            f"{self.namespace}|{key}",
            self._emission_text,
            self._capacity_text,
            cost,
            self._now_us(),
        ]

    def _now_us(self) -> int | None:
        return None if self._clock is None else self._clock.now_ns() // 1000

    def _decide(self, tats: Sequence[int | None], now: int, cost: int, consume: bool) -> Decision:
        """The decision for stored TATs (us) at ``now``: same rules as the in-process GCRA."""
        steps = []
        for i, (em, cap) in enumerate(zip(self._emission, self._capacity, strict=True)):
            stored = tats[i] if i < len(tats) else None
            tat = now if stored is None else max(stored, now)
            new = tat + cost * em
            if new - now > cap:
                steps.append((False, max(0, (cap - (tat - now)) // em), tat - now, new - cap - now))
            else:
                after = new - now if consume else tat - now
                steps.append((True, max(0, (cap - after) // em), after, 0))
        if all(s[0] for s in steps):
            best = min(range(len(steps)), key=lambda i: (steps[i][1], -steps[i][2], i))
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
        tats = [int(t) for t in text.split(",")]
        if allowed:
            return self._after_hit(tats, now)  # the row holds the TATs after this hit
        return self._decide(tats, now, cost, True)  # unchanged TATs: recompute the refusal

    def _after_hit(self, tats: Sequence[int], now: int) -> Decision:
        best, best_key = 0, None
        for i, (em, cap) in enumerate(zip(self._emission, self._capacity, strict=True)):
            after = tats[i] - now
            k = (max(0, (cap - after) // em), -after, i)
            if best_key is None or k < best_key:
                best, best_key = i, k
        assert best_key is not None
        return Decision(
            allowed=True,
            limit=self.rules[best].limit,
            remaining=best_key[0],
            reset_after=-best_key[1] / _US,
            rule_index=best,
        )

    def _degraded(self, exc: BaseException) -> Decision:
        now = time.monotonic()
        open_ = all(self.fail_open)
        if now - self._last_warning >= 10.0:
            self._last_warning = now
            state = "admitting (fail open)" if open_ else "denying (fail closed)"
            log.warning("rate limit store unavailable, %s: %s: %s", state, type(exc).__name__, exc)
        if open_:
            limit = self.rules[0].limit
            return Decision(allowed=True, limit=limit, remaining=limit, degraded=True)
        index = self.fail_open.index(False)
        return Decision(
            allowed=False,
            limit=self.rules[index].limit,
            remaining=0,
            degraded=True,
            retry_after=self.retry_after_on_error,
            reset_after=self.retry_after_on_error,
            rule_index=index,
        )

    def hit(self, key: str, cost: int = 1) -> Decision:
        """Consumes ``cost`` from every rule of ``key`` if all admit it (one round trip)."""
        self._check_cost(cost)
        try:
            self._ensure()
            (row,) = self.pool.execute(self._sql_hit, self._params(key, cost))
        except _STORE_ERRORS as exc:
            return self._degraded(exc)
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
            return self._degraded(exc)
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
            return self._degraded(exc)
        tats = [int(t) for t in text.split(",")] if text else []
        return self._decide(tats, now, cost, False)

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
        mode = "fail-open" if all(self.fail_open) else "fail-closed"
        return f"<PgRateLimiter {rules!r} table={self.table} {mode}>"
