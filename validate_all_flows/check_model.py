"""What a check is: its result and status, the catalogue of check ids, and the registry.

Shared by the checks (``validate_all_flows.checks.*``), which register with :func:`check`, and by
what reads their ids without running (or importing) them: the profile (``require``), the pytest
plugin, the reports. See :mod:`validate_all_flows.checks` for how checks behave.
"""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CHECKS",
    "CHECK_IDS",
    "GROUPS",
    "CheckResult",
    "Status",
    "catalogue_ids",
    "check",
    "declared_ids",
    "id_matches",
    "no_answer",
    "not_an_answer",
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

#: The catalogue: per group, each check function (``validate_all_flows.checks.<group>``) and the
#: result ids it yields whatever the target (a glob pattern for ids that depend on the input).
#: The one home of the ids: profiles name them (``require``) and the pytest plugin makes its
#: items from them without importing a check; :func:`check` gives a function its entry.
CHECK_IDS: dict[str, dict[str, tuple[str, ...]]] = {
    "env": {"environment": ("env.schema",)},
    "database": {"database": ("database.reachable", "database.migrations", "database.schema")},
    "http": {
        "health_and_ready": ("http.health", "http.ready"),
        "debug_off": ("http.debug_off",),
        "metrics": ("http.metrics",),
    },
    "chain": {"contracts": ("chain.contracts",)},
    "flows": {
        "blocktrust_flows": (
            "flows.register",
            "flows.kyc_mint",
            "flows.sign_normal",
            "flows.sign_duress",
        ),
        "profile_flows": ("flows.*",),
    },
    "load": {"slo_under_load": ("load.p95", "load.error_rate", "load.availability")},
    "security": {
        "login_rate_limit": ("security.login_rate_limit",),
        "protected_endpoints": ("security.auth_required",),
        "webhook_signatures": ("security.webhook_signature",),
        "cors": ("security.cors",),
    },
    "logs": {"log_hygiene": ("logs.errors", "logs.secrets")},
    "workers": {
        "listener_lag": ("workers.listener",),
        "monitor": ("workers.monitor",),
        "chain_worker": ("workers.chain",),
        "job_queue": ("workers.jobs",),
    },
}


def catalogue_ids() -> set[str]:
    """Every id of :data:`CHECK_IDS` that is not a pattern."""
    return {
        i
        for functions in CHECK_IDS.values()
        for ids in functions.values()
        for i in ids
        if not any(c in i for c in "*?[")
    }


#: (group, function) in registration order; filled by @check.
CHECKS: list[tuple[str, Callable[..., list[CheckResult]]]] = []

#: The ids (or glob patterns) each check function declared; see the module docstring.
_DECLARED: dict[Callable[..., list[CheckResult]], tuple[str, ...]] = {}


def check(
    group: str, ids: tuple[str, ...] | None = None
) -> Callable[[Callable[..., list[CheckResult]]], Callable[..., list[CheckResult]]]:
    """Registers a check function under ``group`` (env, database, http, chain, flows, ...).

    Its ids are the result ids the function yields whatever the target (a skipped check still
    yields them; one that stops early, as database does when the server is unreachable, may
    yield fewer, and the pytest plugin reports the rest as not reached); a glob pattern stands
    for ids that depend on the input. They are the function's entry in :data:`CHECK_IDS`, else
    ``ids``; with neither the function counts as one check named ``<group>.<function name>``.
    """

    def register(fn: Callable[..., list[CheckResult]]) -> Callable[..., list[CheckResult]]:
        listed = CHECK_IDS.get(group, {}).get(fn.__name__)
        if listed is not None and ids is not None and tuple(ids) != listed:
            raise ValueError(f"@check({group!r}): {fn.__name__} has the ids {listed} (CHECK_IDS)")
        declared = listed or (tuple(ids) if ids else (f"{group}.{fn.__name__}",))
        bad = [i for i in declared if not i.startswith(f"{group}.")]
        if bad:
            raise ValueError(f"@check({group!r}): ids {bad} do not start with {group + '.'!r}")
        CHECKS.append((group, fn))
        _DECLARED[fn] = declared
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
