"""pytest plugin (entry point ``pytest11``): the deploy checks and the embedded stack as fixtures.

Options name the deployment (``--blocktrust-url``, ``--blocktrust-database-url``,
``--blocktrust-rpc-url``, ``--blocktrust-contracts``, ``--blocktrust-env-file``,
``--blocktrust-env-schema``; its logs ``--blocktrust-logs``, ``--blocktrust-logs-cmd``), the
objectives (``--blocktrust-p95-ms``, ``--blocktrust-error-rate``,
``--blocktrust-availability``, ``--blocktrust-listener-lag``, ``--blocktrust-min-gas-balance``,
``--blocktrust-failsafe-margin``, ``--blocktrust-worker-stale-after``,
``--blocktrust-job-objective``), the load (``--blocktrust-load VUS``,
``--blocktrust-load-duration``, ``--blocktrust-load-rate``, ``--blocktrust-load-flows``) and the
checks that must run (``--blocktrust-require``, added to the profile's ``require``: such a check
that skips fails its test, as it makes the command's verdict NO-GO). Each works as the
command's option without ``blocktrust-``, with its checks: a bad value is a usage error naming
the option. Without ``--blocktrust-url`` the ``blocktrust_target`` fixture brings the embedded
stack up once per session.

``pytest --pyargs validate_all_flows`` collects ONE TEST PER CHECK
(``validate_all_flows/test_deployment.py``: ``test_check[http.health]``, ...), from the ids each
check declares, without running anything. During the session each check function runs once
(``blocktrust_checks`` caches its results) and every item reports its own result: failed with
the evidence and the fix, skipped with the reason, passed.

``flow_runner`` runs a flow spec (FlowSpec, dict or YAML/JSON path) against the deployment with
``blocktrust_native.flows.run_flow`` and returns the Report (see :class:`FlowRunner`). The plugin
does nothing unless these fixtures or tests are used.
"""

from __future__ import annotations

import argparse
import io
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from validate_all_flows.checks import CheckResult, Status, declared_ids, id_matches, run_check
from validate_all_flows.profile import Profile
from validate_all_flows.target import (
    MIN_GAS_BALANCE_HELP,
    DeploymentSlo,
    LoadPlan,
    Target,
    add_chain_objective_arguments,
    check_min_gas_balance,
)

if TYPE_CHECKING:
    from blocktrust_native.flows import FlowSpec, Report

__all__ = [
    "CheckFn",
    "CheckSession",
    "FlowRunner",
    "blocktrust_checks",
    "blocktrust_stack",
    "blocktrust_target",
    "flow_runner",
    "judge",
]

#: A registered check function.
CheckFn = Callable[..., list[CheckResult]]
_SERVICE_LOG = pytest.StashKey[io.StringIO]()
_LOAD_PLAN = pytest.StashKey[LoadPlan]()
_PROFILE = pytest.StashKey[Profile]()
_LOAD_OPTIONS = ("load", "load_duration", "load_rate", "load_flows")


def pytest_addoption(parser: pytest.Parser) -> None:
    """Registers the --blocktrust-* options."""
    g = parser.getgroup("blocktrust", "Blocktrust deployment checks (validate_all_flows)")
    g.addoption("--blocktrust-url", help="the service to check (default: the embedded stack)")
    g.addoption("--blocktrust-database-url", help="its PostgreSQL URL")
    g.addoption("--blocktrust-rpc-url", help="its EVM JSON-RPC URL")
    g.addoption("--blocktrust-contracts", help="its contracts_config.json")
    g.addoption("--blocktrust-env-file", help="its .env file")
    g.addoption(
        "--blocktrust-env-schema", help="an environment schema (YAML/JSON); default: the profile's"
    )
    g.addoption("--blocktrust-p95-ms", type=float, default=800.0, help="latency objective (800)")
    g.addoption("--blocktrust-error-rate", type=float, default=0.01, help="error rate (0.01)")
    g.addoption("--blocktrust-availability", type=float, default=0.995, help="(0.995)")
    g.addoption("--blocktrust-listener-lag", type=float, default=180.0, help="seconds (180)")
    g.addoption("--blocktrust-min-gas-balance", type=float, help=MIN_GAS_BALANCE_HELP)
    add_chain_objective_arguments(g, prefix="--blocktrust-")
    g.addoption("--blocktrust-load", type=int, metavar="VUS", help="run the load checks (--load)")
    g.addoption("--blocktrust-load-duration", type=float, metavar="S", help="seconds (30)")
    g.addoption("--blocktrust-load-rate", type=float, metavar="R", help="iterations/s (open)")
    g.addoption("--blocktrust-load-flows", metavar="FILE", help="load flow spec to run instead")
    g.addoption("--blocktrust-flows", metavar="FILE", help="flows spec to run instead (--flows)")
    g.addoption(
        "--blocktrust-logs",
        action="append",
        default=[],
        metavar="FILE",
        help="a log file for the log checks (--logs; repeatable)",
    )
    g.addoption(
        "--blocktrust-logs-cmd",
        metavar="CMD",
        help='a command printing logs, e.g. "journalctl -u api -n 500" (--logs-cmd)',
    )
    g.addoption(
        "--blocktrust-require",
        action="append",
        default=[],
        metavar="CHECKS",
        help="comma-separated checks or groups that must run: a skip fails the test (--require)",
    )
    g.addoption(
        "--blocktrust-profile",
        metavar="FILE|NAME",
        default="reference",
        help="the deployment's profile (--profile): a file or a built-in name (reference)",
    )


def _slo(config: pytest.Config) -> DeploymentSlo:
    opt = config.getoption
    return DeploymentSlo(
        opt("--blocktrust-p95-ms", 800.0),
        opt("--blocktrust-error-rate", 0.01),
        opt("--blocktrust-availability", 0.995),
        opt("--blocktrust-listener-lag", 180.0),
    )


def pytest_configure(config: pytest.Config) -> None:
    """Checks the --blocktrust-* options up front (a usage error stops the session, naming the
    option; the chain work objectives' durations are checked as pytest parses them)."""
    from validate_all_flows.logsource import read_logs
    from validate_all_flows.profile import ProfileError, load_profile
    from validate_all_flows.target import InputError, check_inputs

    opt = config.getoption
    try:
        check_inputs(
            base_url=opt("--blocktrust-url", None),
            database_url=opt("--blocktrust-database-url", None),
            rpc_url=opt("--blocktrust-rpc-url", None),
            contracts=opt("--blocktrust-contracts", None),
            env_schema=opt("--blocktrust-env-schema", None),
            prefix="--blocktrust-",
        )
        _slo(config).check("--blocktrust-")
        read_logs(opt("--blocktrust-logs", None) or [], None, prefix="--blocktrust-")  # readable
        check_min_gas_balance(
            opt("--blocktrust-min-gas-balance", None), "--blocktrust-min-gas-balance"
        )
    except InputError as exc:
        raise pytest.UsageError(str(exc)) from None
    try:
        profile = load_profile(config.getoption("--blocktrust-profile", "reference"))
    except ProfileError as exc:
        raise pytest.UsageError(f"--blocktrust-profile {exc}") from None
    require = config.getoption("--blocktrust-require", None) or []
    for arg in require:
        if not [c for c in arg.split(",") if c.strip()]:
            raise pytest.UsageError(f"--blocktrust-require {arg!r}: no check or group named")
    more = [c.strip() for arg in require for c in arg.split(",") if c.strip()]
    try:
        config.stash[_PROFILE] = profile.with_require(more) if more else profile
    except ProfileError as exc:
        raise pytest.UsageError(str(exc).replace("--require", "--blocktrust-require", 1)) from None
    flows = config.getoption("--blocktrust-flows", None)
    if flows:
        from blocktrust_native.errors import FlowSpecError
        from validate_all_flows.flow_contract import check_flows_file

        try:
            check_flows_file(flows)
        except FlowSpecError as exc:
            raise pytest.UsageError(f"--blocktrust-flows {exc}") from None
    values = {n: config.getoption(f"--blocktrust-{n.replace('_', '-')}") for n in _LOAD_OPTIONS}
    if all(v is None for v in values.values()):
        return
    from validate_all_flows.checks.load import load_plan

    try:
        plan = load_plan(argparse.Namespace(**values), option_prefix="--blocktrust-")
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    if plan is not None:
        config.stash[_LOAD_PLAN] = plan


@pytest.fixture(scope="session")
def blocktrust_stack(request: pytest.FixtureRequest) -> Iterator[object | None]:
    """The embedded stack (started once per session), or None when --blocktrust-url is given."""
    if request.config.getoption("--blocktrust-url"):
        yield None
        return
    from validate_all_flows.embedded.stack import Stack

    # The embedded service logs in this process; the log checks read what it wrote.
    capture = io.StringIO()
    handler = logging.StreamHandler(capture)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    request.config.stash[_SERVICE_LOG] = capture
    try:
        with Stack() as stack:
            yield stack
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture(scope="session")
def blocktrust_target(
    request: pytest.FixtureRequest, blocktrust_stack: object | None
) -> Iterator[Target]:
    """The deployment under test as a Target (from the options, or the embedded stack)."""
    from validate_all_flows.envcheck import parse_env_file
    from validate_all_flows.logsource import read_logs
    from validate_all_flows.target import InputError

    opt = request.config.getoption
    target = Target(
        base_url=opt("--blocktrust-url"),
        database_url=opt("--blocktrust-database-url"),
        rpc_url=opt("--blocktrust-rpc-url"),
        contracts=opt("--blocktrust-contracts"),
        slo=_slo(request.config),
        min_gas_balance_wei=check_min_gas_balance(
            opt("--blocktrust-min-gas-balance"), "--blocktrust-min-gas-balance"
        ),
    ).use_chain_objectives(request.config.option, prefix="--blocktrust-")
    target.load = request.config.stash.get(_LOAD_PLAN, None)
    profile = request.config.stash.get(_PROFILE, None)
    if profile is not None:
        target.use_profile(profile)
    if opt("--blocktrust-env-schema"):
        target.env_schema = Path(opt("--blocktrust-env-schema"))
    if opt("--blocktrust-flows"):
        target.flows_spec = Path(opt("--blocktrust-flows"))
    if opt("--blocktrust-env-file"):
        target.env = parse_env_file(opt("--blocktrust-env-file"))
    stack = blocktrust_stack
    if stack is not None:
        target.use_stack(stack)
    target.webhook_secret = target.webhook_secret_value()
    target.register_inputs()  # every input's secrets, whichever checks the session runs
    try:
        target.log_texts = read_logs(
            opt("--blocktrust-logs") or [], opt("--blocktrust-logs-cmd"), prefix="--blocktrust-"
        )
    except InputError as exc:  # the command's own stderr may hold a credential
        target.close()
        pytest.exit(target.redact(str(exc)), returncode=pytest.ExitCode.USAGE_ERROR)
    yield target
    target.close()


class CheckSession:
    """Runs each check function at most once per session and keeps its results.

    With the embedded stack, the service's log (captured since the stack came up) is handed to
    the log checks just before they run, as the command does.
    """

    def __init__(self, target: Target, service_log: io.StringIO | None = None) -> None:
        self.target = target
        self._service_log = service_log
        self._results: dict[CheckFn, list[CheckResult]] = {}

    def results(self, group: str, fn: CheckFn) -> list[CheckResult]:
        """The results of ``fn`` (run now if it has not run yet in this session)."""
        if fn not in self._results:
            if group == "logs" and self._service_log is not None:
                self.target.log_texts = [("embedded service", self._service_log.getvalue())]
            self._results[fn] = run_check(self.target, group, fn)
        return self._results[fn]


@pytest.fixture(scope="session")
def blocktrust_checks(request: pytest.FixtureRequest, blocktrust_target: Target) -> CheckSession:
    """The session's check results, each check function run once (see CheckSession)."""
    return CheckSession(blocktrust_target, request.config.stash.get(_SERVICE_LOG, None))


def _describe(results: list[CheckResult]) -> list[str]:
    lines = []
    for r in results:
        lines += [f"{r.id}: {r.status.value}: {r.found}", *(f"  {e}" for e in r.evidence)]
        if r.fix:
            lines.append(f"  fix: {r.fix}")
    return lines


def judge(
    cid: str,
    group: str,
    fn: CheckFn,
    results: list[CheckResult],
    required: Sequence[str] = (),
) -> tuple[Status, str]:
    """The outcome of the test item for the declared id ``cid`` of ``fn``, from its results.

    FAIL (with evidence and fix) when a result for ``cid`` failed or errored, or when ``fn``
    crashed before yielding it; SKIP with the reasons when every result for it was skipped or
    ``fn`` stopped before it, unless ``cid`` or its group is ``required`` (the profile's
    ``require`` and ``--blocktrust-require``): then FAIL, as the command's NO-GO; PASS otherwise.
    Results under ids ``fn`` did not declare fail its first item, so a wrong declaration cannot
    hide a failure.
    """
    status, message = _judge(cid, group, fn, results)
    if status is Status.SKIP:
        wanted = [w for w in required if cid == w or cid.startswith(w + ".")]
        if wanted:
            return Status.FAIL, f"required by the profile ({', '.join(wanted)}), skipped: {message}"
    return status, message


def _judge(cid: str, group: str, fn: CheckFn, results: list[CheckResult]) -> tuple[Status, str]:
    declared = declared_ids(fn)
    mine = [r for r in results if id_matches(r.id, cid)]
    crash_id = f"{group}.{fn.__name__}"
    crashed = [r for r in results if r.id == crash_id and crash_id not in declared]
    undeclared = [
        r for r in results if r not in crashed and not any(id_matches(r.id, d) for d in declared)
    ]
    if cid == declared[0] and undeclared:
        ids = ", ".join(r.id for r in undeclared)
        head = f"{fn.__name__} returned id(s) it does not declare (check_model.CHECK_IDS): {ids}"
        return Status.FAIL, "\n".join([head, *_describe(undeclared)])
    bad = [r for r in mine if r.status in (Status.FAIL, Status.ERROR)]
    if bad:
        return Status.FAIL, "\n".join(_describe(bad))
    if not mine:
        if crashed:
            return Status.FAIL, "\n".join(_describe(crashed))
        if not results:
            return Status.SKIP, f"{fn.__name__}: the deployment's profile declares nothing to check"
        seen = ", ".join(f"{r.id} {r.status.value}" for r in results) or "none"
        return Status.SKIP, f"not reached: {fn.__name__} stopped before {cid} (results: {seen})"
    if all(r.status is Status.SKIP for r in mine):
        return Status.SKIP, "; ".join(dict.fromkeys(r.found for r in mine))
    return Status.PASS, "; ".join(f"{r.id}: {r.found}" for r in mine)


class FlowRunner:
    """Runs flow specs against the deployment under test (the ``flow_runner`` fixture).

    ``flow_runner(spec, *, variables=None, vus=1, iterations=None, duration=None, rate=None,
    **options)`` takes a ``FlowSpec``, a spec dict or a YAML/JSON path (schema:
    docs/tour_flows.md), adds ``variables`` (run-time values such as a token, referred to as
    ``{{name}}``; a dict or path only), runs it with ``blocktrust_native.flows.run_flow`` on
    ``base_url`` and returns the Report. With neither ``iterations`` nor ``duration`` it runs
    one iteration (a functional check); ``options`` go to run_flow as they are.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def __repr__(self) -> str:
        return f"FlowRunner(base_url={self.base_url!r})"

    def __call__(
        self,
        spec: FlowSpec | Mapping[str, Any] | str | Path,
        *,
        variables: Mapping[str, str] | None = None,
        vus: int = 1,
        iterations: int | None = None,
        duration: float | None = None,
        rate: float | None = None,
        **options: Any,
    ) -> Report:
        """Runs ``spec`` and returns its Report (see the class docstring)."""
        from blocktrust_native.flows import run_flow
        from validate_all_flows.checks.load import spec_with_vars

        if iterations is None and duration is None:
            iterations = 1
        return run_flow(
            spec_with_vars(spec, variables),
            self.base_url,
            vus=vus,
            iterations=iterations,
            duration=duration,
            rate=rate,
            **options,
        )


@pytest.fixture(scope="session")
def flow_runner(blocktrust_target: Target) -> FlowRunner:
    """A FlowRunner bound to the deployment's base URL (the embedded stack's by default)."""
    if not blocktrust_target.base_url:
        pytest.skip("no service given (--blocktrust-url)")
    return FlowRunner(blocktrust_target.base_url)
