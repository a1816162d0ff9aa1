"""The checks of ``validate_all_flows``: each has an id, a status, findings, evidence and a fix.

A check is a function ``(target) -> list[CheckResult]`` registered with :func:`check`; it reports
SKIP with the reason when an input it needs is missing (never PASS), and FAIL with evidence and a
fix when something is wrong. An exception inside a check becomes an ERROR result, so one broken
check never hides the others.

Each function declares the ids it yields (``@check("http", ids=("http.health", "http.ready"))``)
so that the ids are known without running anything: the pytest plugin makes one test item per
declared id at collection time. An id may be a glob pattern (``"env.var.*"``) for checks whose
ids depend on the input (one per variable, per spec step); such a pattern is one test item that
gathers every matching result. tests_py/test_pytest_plugin.py checks that the ids a function
returns are exactly its declared ones.
"""

from __future__ import annotations

import enum
import fnmatch
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CHECKS",
    "GROUPS",
    "CheckResult",
    "Status",
    "all_checks",
    "check",
    "declared_ids",
    "id_matches",
    "no_answer",
    "not_an_answer",
    "run_check",
    "run_checks",
]


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
    listener's ``lag_s``): the monitor records them without parsing ``found``. ``warnings`` are
    findings that do not change the status (a misspelt variable name beside a passing
    environment); every report shows them. ``data`` holds structure a report draws (the load
    checks' per-step latency, see checks.load); text and JSON reports leave it out."""

    id: str
    title: str
    status: Status
    found: str
    evidence: list[str] = field(default_factory=list)
    fix: str = ""
    seconds: float = 0.0
    measures: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def not_an_answer(status: int) -> bool:
    """True for an HTTP outcome that says nothing about the service's own behaviour: no answer
    (0: reset, timeout, refused), a 5xx (the service or a proxy in front failing), 408 or 429
    (turned away before being judged). Security checks judge only the other answers."""
    return status == 0 or status >= 500 or status in (408, 429)


def no_answer(cid: str, title: str, probes: list[str]) -> CheckResult:
    """The result of a check whose probes got no HTTP answer, or none that can carry the property
    (see :func:`not_an_answer`; ``probes`` say which and what came back): an ERROR, since nothing
    about the service can be concluded, least of all a missing defence."""
    return CheckResult(
        cid,
        title,
        Status.ERROR,
        "the service did not answer, so this cannot be judged",
        probes,
        "check that the service is up and reachable (see http.health)",
    )


#: The groups in the order they run (cheap and foundational first).
GROUPS = ["env", "database", "http", "chain", "flows", "load", "security", "logs", "workers"]

#: (group, function) in registration order; filled by @check.
CHECKS: list[tuple[str, Callable[..., list[CheckResult]]]] = []

#: The ids (or glob patterns) each check function declared; see the module docstring.
_DECLARED: dict[Callable[..., list[CheckResult]], tuple[str, ...]] = {}


def check(
    group: str, ids: tuple[str, ...] | None = None
) -> Callable[[Callable[..., list[CheckResult]]], Callable[..., list[CheckResult]]]:
    """Registers a check function under ``group`` (env, database, http, chain, flows, ...).

    ``ids`` are the result ids the function yields whatever the target (a skipped check still
    yields them; one that stops early, as database does when the server is unreachable, may
    yield fewer, and the pytest plugin reports the rest as not reached); a glob pattern stands
    for ids that depend on the input. Without ``ids`` the function counts as one check named
    ``<group>.<function name>``.
    """

    def register(fn: Callable[..., list[CheckResult]]) -> Callable[..., list[CheckResult]]:
        bad = [i for i in ids or () if not i.startswith(f"{group}.")]
        if bad:
            raise ValueError(f"@check({group!r}): ids {bad} do not start with {group + '.'!r}")
        CHECKS.append((group, fn))
        _DECLARED[fn] = tuple(ids) if ids else (f"{group}.{fn.__name__}",)
        return fn

    return register


def declared_ids(fn: Callable[..., list[CheckResult]]) -> tuple[str, ...]:
    """The ids (or patterns) ``fn`` declared with :func:`check`."""
    return _DECLARED[fn]


def id_matches(result_id: str, declared: str) -> bool:
    """True when ``result_id`` is ``declared`` or matches it as a glob pattern."""
    return result_id == declared or (
        any(c in declared for c in "*?[") and fnmatch.fnmatchcase(result_id, declared)
    )


def all_checks() -> list[tuple[str, Callable[..., list[CheckResult]]]]:
    """Every registered (group, function) in run order (imports the check modules)."""
    # Importing the modules registers their checks, in this order.
    from validate_all_flows.checks import (  # noqa: F401
        chain,
        database,
        env,
        flows,
        http,
        load,
        logs,
        security,
        workers,
    )

    return sorted(CHECKS, key=lambda c: GROUPS.index(c[0]))


def _error_ids(group: str, fn: Callable[..., list[CheckResult]]) -> list[str]:
    """The ids a crashed check reports under: its declared ones (a glob pattern as the pattern
    with ``*`` read as ``error``, which it matches)."""
    out = []
    for d in declared_ids(fn):
        if any(c in d for c in "*?["):
            stand_in = d.replace("*", "error")
            d = stand_in if id_matches(stand_in, d) else f"{group}.{fn.__name__}"
        out.append(d)
    return list(dict.fromkeys(out))


def run_check(
    target: object, group: str, fn: Callable[..., list[CheckResult]]
) -> list[CheckResult]:
    """Runs one check function; an exception becomes an ERROR result for each id the function
    declared (so JSON, JUnit and pytest keep the documented ids), quoting the exception."""
    t0 = time.monotonic()
    try:
        got = fn(target)
    except Exception as exc:
        redact = getattr(target, "redact", lambda s: s)
        title = fn.__doc__.splitlines()[0] if fn.__doc__ else fn.__name__
        why = redact(f"{type(exc).__name__}: {exc}".strip())
        got = [
            CheckResult(
                cid,
                title,
                Status.ERROR,
                "the check could not complete, so this cannot be judged",
                [f"{fn.__name__} raised {why}"],
                fix="see the evidence; rerun with the failing part reachable",
            )
            for cid in _error_ids(group, fn)
        ]
    elapsed = time.monotonic() - t0
    # Results that did not time themselves share what the timed ones leave of the call, so the
    # seconds of a function's results add up to its wall-clock time (a failed first flow and
    # three skipped ones were counted about twice).
    untimed = [r for r in got if not r.seconds]
    left = max(0.0, elapsed - sum(r.seconds for r in got))
    for r in untimed:
        r.seconds = left / len(untimed)
    return got


def run_checks(
    target: object,
    groups: set[str] | None = None,
    progress: Callable[[str], None] | None = None,
    timings: dict[str, float] | None = None,
) -> list[CheckResult]:
    """Runs every registered check (or those in ``groups``) in order and returns all results.
    ``timings`` (when given) gets each group's wall-clock seconds, which add up to no more than
    the whole run (a result's own ``seconds`` may overlap others')."""
    results: list[CheckResult] = []
    for group, fn in all_checks():
        if groups is not None and group not in groups:
            continue
        if progress:
            progress(f"checking {group}: {fn.__name__.replace('_', ' ')}")
        t0 = time.monotonic()
        results.extend(run_check(target, group, fn))
        if timings is not None:
            timings[group] = timings.get(group, 0.0) + time.monotonic() - t0
    return results
