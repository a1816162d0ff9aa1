"""The checks of ``validate_all_flows``: each has an id, a status, findings, evidence and a fix.

A check is a function ``(target) -> list[CheckResult]`` registered with :func:`check`; it reports
SKIP with the reason when an input it needs is missing (never PASS), and FAIL with evidence and a
fix when something is wrong. An exception inside a check becomes an ERROR result, so one broken
check never hides the others.

Each function's ids (the ids it yields) are declared in the catalogue,
:data:`validate_all_flows.check_model.CHECK_IDS`, so that they are known without running (or
importing) anything: the pytest plugin makes one test item per declared id at collection time.
An id may be a glob pattern (``"env.var.*"``) for checks whose ids depend on the input (one per
variable, per spec step); such a pattern is one test item that gathers every matching result.
tests_py/test_pytest_plugin.py checks that the ids a function returns are exactly its declared
ones. The types a check uses (:class:`CheckResult`, :class:`Status`, :func:`check`) live in
:mod:`validate_all_flows.check_model`, which the check modules, the profile and the reports
import without importing the checks.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from validate_all_flows.check_model import (
    CHECK_IDS,
    CHECKS,
    GROUPS,
    CheckResult,
    Status,
    catalogue_ids,
    check,
    declared_ids,
    id_matches,
    no_answer,
    not_an_answer,
)

__all__ = [
    "CHECKS",
    "CHECK_IDS",
    "GROUPS",
    "CheckResult",
    "Status",
    "all_checks",
    "catalogue_ids",
    "check",
    "declared_ids",
    "id_matches",
    "no_answer",
    "not_an_answer",
    "run_check",
    "run_checks",
]


def all_checks() -> list[tuple[str, Callable[..., list[CheckResult]]]]:
    """Every registered (group, function) in run order (imports the check modules)."""
    # Importing the modules registers their checks. Here rather than at the top: what imports
    # this package for its names (the pytest plugin at every pytest start, the reports) does not
    # load every check and the native module with it. No cycle: the check modules import
    # validate_all_flows.check_model, never this package.
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
