"""The failure policy of the shared stores (PostgreSQL, Redis): what a decision is when the store
cannot be reached.

    policy = FailurePolicy([True, False], rules, retry_after_on_error=1.0)
    decision = policy.degraded(exc)     # admitted only if every rule fails open

One bool per rule (or one for all). When the store fails, a decision is admitted only if every
rule fails open; otherwise it is denied by the first fail-closed rule with ``Retry-After:
retry_after_on_error``. Either way ``degraded=True`` and a warning naming the error (never a
password: the stores' messages are redacted) is logged at most every 10 seconds per limiter.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from blocktrust_native.errors import ConfigError
from blocktrust_native.ratelimit.limiter import Decision, Rule

__all__ = ["FailurePolicy"]

log = logging.getLogger("blocktrust_native.ratelimit")

_WARN_EVERY_S = 10.0


class FailurePolicy:
    """Per rule: admit (True) or deny (False) when the store fails; see the module doc.

    ``fail_open``: one bool, or a sequence of one bool per rule (anything else is a
    :class:`ConfigError`). ``retry_after_on_error``: seconds, positive.
    """

    def __init__(
        self,
        fail_open: bool | Sequence[bool],
        rules: Sequence[Rule],
        retry_after_on_error: float,
    ) -> None:
        policy = [fail_open] * len(rules) if isinstance(fail_open, bool) else fail_open
        if (
            isinstance(policy, (str, bytes))
            or not isinstance(policy, Sequence)
            or not all(isinstance(f, bool) for f in policy)
        ):
            raise ConfigError(
                "fail_open must be True or False (or one per rule): the policy when the store fails"
            )
        if len(policy) != len(rules):
            raise ConfigError(f"fail_open has {len(policy)} entries for {len(rules)} rules")
        if not isinstance(retry_after_on_error, (int, float)) or not retry_after_on_error > 0:
            raise ConfigError("retry_after_on_error must be a positive number of seconds")
        #: Per rule: admit (True) or deny (False) when the store cannot be reached.
        self.fail_open: list[bool] = list(policy)
        #: Retry-After (seconds) of a fail-closed denial.
        self.retry_after_on_error = float(retry_after_on_error)
        self._rules = list(rules)
        self._lock = threading.Lock()
        self._last_warning = -_WARN_EVERY_S

    @property
    def all_open(self) -> bool:
        """Whether every rule fails open (a failed store admits)."""
        return all(self.fail_open)

    def degraded(self, exc: BaseException) -> Decision:
        """The decision while the store fails with ``exc`` (and a throttled warning)."""
        open_ = self.all_open
        now = time.monotonic()
        with self._lock:
            warn = now - self._last_warning >= _WARN_EVERY_S
            if warn:
                self._last_warning = now
        if warn:
            state = "admitting (fail open)" if open_ else "denying (fail closed)"
            log.warning("rate limit store unavailable, %s: %s: %s", state, type(exc).__name__, exc)
        if open_:
            limit = self._rules[0].limit
            return Decision(allowed=True, limit=limit, remaining=limit, degraded=True)
        index = self.fail_open.index(False)
        return Decision(
            allowed=False,
            limit=self._rules[index].limit,
            remaining=0,
            degraded=True,
            retry_after=self.retry_after_on_error,
            reset_after=self.retry_after_on_error,
            rule_index=index,
        )

    def describe(self) -> str:
        """``open``/``closed`` per rule, comma-separated (for reprs)."""
        return ",".join("open" if f else "closed" for f in self.fail_open)
