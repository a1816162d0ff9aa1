"""The checks of ``validate_all_flows``: each has an id, a status, findings, evidence and a fix.

A check is a function ``(target) -> list[CheckResult]`` registered with :func:`check`; it reports
SKIP with the reason when an input it needs is missing (never PASS), and FAIL with evidence and a
fix when something is wrong. An exception inside a check becomes an ERROR result, so one broken
check never hides the others.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["CHECKS", "GROUPS", "CheckResult", "Status", "check", "run_checks"]


class Status(enum.Enum):
    """The outcome of one check."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"  # the check itself could not run to the end


@dataclass
class CheckResult:
    """One check's outcome: ``found`` says what it saw, ``evidence`` backs it, ``fix`` says what
    to do. Secrets are redacted before a result is built (see Target.redact). ``measures`` holds
    the numbers behind the outcome for machines (``status``, ``latency_ms`` of a probe, a
    listener's ``lag_s``): the monitor records them without parsing ``found``."""

    id: str
    title: str
    status: Status
    found: str
    evidence: list[str] = field(default_factory=list)
    fix: str = ""
    seconds: float = 0.0
    measures: dict[str, float] = field(default_factory=dict)


#: The groups in the order they run (cheap and foundational first).
GROUPS = ["env", "database", "http", "chain", "flows", "security", "logs", "workers"]

#: (group, function) in registration order; filled by @check.
CHECKS: list[tuple[str, Callable[..., list[CheckResult]]]] = []


def check(
    group: str,
) -> Callable[[Callable[..., list[CheckResult]]], Callable[..., list[CheckResult]]]:
    """Registers a check function under ``group`` (env, database, http, chain, flows, ...)."""

    def register(fn: Callable[..., list[CheckResult]]) -> Callable[..., list[CheckResult]]:
        CHECKS.append((group, fn))
        return fn

    return register


def run_checks(
    target: object,
    groups: set[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[CheckResult]:
    """Runs every registered check (or those in ``groups``) in order and returns all results."""
    # Importing the modules registers their checks, in this order.
    from validate_all_flows.checks import (  # noqa: F401
        chain,
        database,
        env,
        flows,
        http,
        logs,
        security,
        workers,
    )

    results: list[CheckResult] = []
    for group, fn in sorted(CHECKS, key=lambda c: GROUPS.index(c[0])):
        if groups is not None and group not in groups:
            continue
        if progress:
            progress(f"checking {group}: {fn.__name__.replace('_', ' ')}")
        t0 = time.monotonic()
        try:
            got = fn(target)
        except Exception as exc:
            redact = getattr(target, "redact", lambda s: s)
            got = [
                CheckResult(
                    f"{group}.{fn.__name__}",
                    fn.__doc__.splitlines()[0] if fn.__doc__ else fn.__name__,
                    Status.ERROR,
                    redact(f"the check could not complete: {type(exc).__name__}: {exc}"),
                    fix="see the evidence; rerun with the failing part reachable",
                )
            ]
        elapsed = time.monotonic() - t0
        for r in got:
            r.seconds = r.seconds or elapsed / max(1, len(got))
        results.extend(got)
    return results
