"""Command line of ``python -m validate_all_flows``: the GO / NO-GO verdict for a deployment.

``python -m validate_all_flows stack up`` only brings the embedded stack up (until Ctrl-C).
``python -m validate_all_flows monitor ...`` runs the checks on a schedule (see its --help).
``python -m validate_all_flows merge part*.json`` judges the shards of a load run split with
``--shard K/N --load-output FILE`` as one run (see its --help).
``python -m validate_all_flows init-profile --base-url URL ...`` writes a starter profile.
With no target it brings up the embedded stack (throwaway PostgreSQL, anvil, contracts, the
reference service), runs every check against it, prints the verdict and tears it down.
Exit codes: 0 GO, 1 NO-GO, 2 cannot run (bad arguments, unreadable inputs, a stack that will not
come up), with the reason on stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from validate_all_flows.profile import Profile

__all__ = ["load_profile_arg", "main"]

from validate_all_flows.check_model import GROUPS, Status
from validate_all_flows.checks.load import add_load_arguments, load_plan
from validate_all_flows.profile import BUILTIN_PROFILES
from validate_all_flows.report import FORMATS
from validate_all_flows.rollout import add_rollout_arguments, rollout_plan
from validate_all_flows.target import (
    MIN_GAS_BALANCE_HELP,
    add_chain_objective_arguments,
    add_target_arguments,
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m validate_all_flows",
        description="Validate a Blocktrust-style deployment end to end and answer GO or NO-GO. "
        "With no target, validate an embedded stack brought up on this machine.",
    )
    t = p.add_argument_group("target (each optional; checks needing a missing one are skipped)")
    add_target_arguments(t)
    t.add_argument(
        "--flows",
        help="a flows spec (YAML/JSON) for API paths that differ from the reference service's; "
        "default: built-in (README: Overriding the flows)",
    )
    t.add_argument(
        "--profile",
        default="reference",
        help="what the deployment is: a profile file (YAML/JSON) or a built-in name "
        f"({', '.join(BUILTIN_PROFILES)}); default: reference (README: Validating your deployment)",
    )
    t.add_argument(
        "--require",
        action="append",
        default=[],
        metavar="CHECKS",
        help="comma-separated checks or groups that must run: skipping one is NO-GO (repeatable)",
    )
    t.add_argument("--logs", nargs="*", default=[], help="log files to scan")
    t.add_argument("--logs-cmd", help='a command printing logs, e.g. "journalctl -u api -n 500"')
    o = p.add_argument_group("objectives")
    o.add_argument("--p95-ms", type=float, default=800.0, help="latency objective (800)")
    o.add_argument("--error-rate", type=float, default=0.01, help="error-rate objective (0.01)")
    o.add_argument("--availability", type=float, default=0.995, help="availability (0.995)")
    o.add_argument("--listener-lag", type=float, default=180.0, help="listener lag, s (180)")
    o.add_argument("--min-gas-balance", type=float, help=MIN_GAS_BALANCE_HELP)
    add_chain_objective_arguments(o)
    add_load_arguments(p)
    add_rollout_arguments(p)
    r = p.add_argument_group("output")
    r.add_argument("--only", help=f"comma-separated check groups: {','.join(GROUPS)}")
    r.add_argument("--format", choices=list(FORMATS), default="text")
    r.add_argument("--output", help="write the report here instead of stdout")
    r.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--self-check", action="store_true", help="only the native self-check")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    return p


class _CannotRun(Exception):
    pass


def _check_flows(path: Path) -> None:
    """Validates a --flows spec against the validator's contract before anything starts."""
    from blocktrust_native.errors import FlowSpecError
    from validate_all_flows.flow_contract import check_flows_file

    try:
        check_flows_file(path)
    except FlowSpecError as exc:
        raise _CannotRun(f"--flows {exc}") from None


def load_profile_arg(name_or_path: str, require: Sequence[str] = ()) -> Profile:
    """The profile of ``--profile`` with ``--require``'s additions; _CannotRun names the place."""
    from validate_all_flows.profile import ProfileError, load_profile

    try:
        profile = load_profile(name_or_path)
        more = [c.strip() for arg in require for c in arg.split(",") if c.strip()]
        return profile.with_require(more) if more else profile
    except ProfileError as exc:
        raise _CannotRun(
            f"--profile {exc}" if not str(exc).startswith("--require") else str(exc)
        ) from None


def _self_check() -> int:
    from validate_all_flows.selfcheck import run_selfcheck

    results = run_selfcheck()
    for res in results:
        print(f"  {'PASS' if res.passed else 'FAIL'}  {res.id:<18} {res.detail}")
    return 0 if all(r.passed for r in results) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["stack"]:
        if argv[1:] not in ([], ["up"]):
            print("usage: python -m validate_all_flows stack [up]", file=sys.stderr)
            return 2
        from validate_all_flows.embedded.stack import main as stack_main

        return stack_main()
    if argv[:1] == ["merge"]:
        from validate_all_flows.merge import main as merge_main

        return merge_main(argv[1:])
    if argv[:1] == ["init-profile"]:
        try:
            from validate_all_flows.discover import main as init_main
        except ImportError as exc:
            print(f"cannot run: the native library does not load: {exc}", file=sys.stderr)
            return 2
        return init_main(argv[1:])
    if argv[:1] == ["monitor"]:
        try:
            from validate_all_flows.monitor.cli import main as monitor_main
        except ImportError as exc:
            print(f"cannot run: the native library does not load: {exc}", file=sys.stderr)
            return 2
        return monitor_main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        import blocktrust_native
    except ImportError as exc:
        print(f"cannot run: the native library does not load: {exc}", file=sys.stderr)
        return 2
    if args.version:
        print(f"validate_all_flows {blocktrust_native.__version__}")
        return 0
    if args.self_check:
        return _self_check()
    try:
        return _validate(args, blocktrust_native.__version__)
    except _CannotRun as exc:
        print(f"cannot run: {exc}", file=sys.stderr)
        return 2


def _check_arguments(args: argparse.Namespace) -> set[str] | None:
    """Every argument checked before anything runs (exit 2 naming it); returns the groups."""
    from validate_all_flows.target import (
        DeploymentSlo,
        InputError,
        check_inputs,
        check_min_gas_balance,
        check_output_path,
    )

    groups = None
    if args.only is not None:
        groups = {g.strip() for g in args.only.split(",") if g.strip()}
        if not groups:
            raise _CannotRun(f"--only {args.only!r}: no group named; known: {GROUPS}")
        unknown = groups - set(GROUPS)
        if unknown:
            raise _CannotRun(f"--only: unknown group(s) {sorted(unknown)}; known: {GROUPS}")
    for arg in args.require:
        if not [c for c in arg.split(",") if c.strip()]:
            raise _CannotRun(f"--require {arg!r}: no check or group named")
    try:
        check_min_gas_balance(args.min_gas_balance)
        check_inputs(
            base_url=args.base_url,
            database_url=args.database_url,
            rpc_url=args.rpc_url,
            contracts=args.contracts,
            env_schema=args.env_schema,
        )
        DeploymentSlo(args.p95_ms, args.error_rate, args.availability, args.listener_lag).check()
        if args.output:
            check_output_path("--output", args.output)
    except InputError as exc:
        raise _CannotRun(str(exc)) from None
    return groups


def _validate(args: argparse.Namespace, version: str) -> int:
    from validate_all_flows.checks import run_checks
    from validate_all_flows.envcheck import EnvSchemaError, parse_env_file
    from validate_all_flows.logsource import read_logs
    from validate_all_flows.progress import Progress
    from validate_all_flows.report import decide, render
    from validate_all_flows.rollout import wait_for_version
    from validate_all_flows.target import DeploymentSlo, InputError, Target, check_min_gas_balance

    groups = _check_arguments(args)
    target = Target(
        base_url=args.base_url,
        database_url=args.database_url,
        rpc_url=args.rpc_url,
        contracts=args.contracts,
        slo=DeploymentSlo(args.p95_ms, args.error_rate, args.availability, args.listener_lag),
    ).use_chain_objectives(args)
    target.min_gas_balance_wei = check_min_gas_balance(args.min_gas_balance)

    say = Progress(quiet=args.quiet, redact=target.redact)

    profile = load_profile_arg(args.profile, args.require)
    try:
        health = profile.health[0].path if profile.health else "/api/health"
        wait = rollout_plan(args, args.base_url, health)
    except ValueError as exc:
        raise _CannotRun(str(exc)) from None
    if args.env_file:
        try:
            target.env = parse_env_file(args.env_file)
        except EnvSchemaError as exc:
            raise _CannotRun(str(exc)) from None
    target.use_profile(profile)
    if args.env_schema:
        target.env_schema = Path(args.env_schema)
    if args.flows:
        target.flows_spec = Path(args.flows)
        _check_flows(target.flows_spec)
    # Every secret of every input is known before any check runs, whichever groups run.
    target.register_inputs()
    try:
        target.load = load_plan(args, None if args.quiet else say)
    except ValueError as exc:
        raise _CannotRun(target.redact(str(exc))) from None
    try:
        target.log_texts = read_logs(args.logs, args.logs_cmd)
    except InputError as exc:  # --logs-cmd's own stderr may hold a credential
        raise _CannotRun(target.redact(str(exc))) from None
    given = any(
        [args.base_url, args.database_url, args.rpc_url, args.contracts, args.env_file,
         args.logs, args.logs_cmd]
    )  # fmt: skip
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    t0 = time.monotonic()
    phases: list[tuple[str, float]] = []  # (phase, seconds) for the HTML report
    stack = None
    capture = io.StringIO()
    handler = logging.StreamHandler(capture)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    try:
        if not given:
            from validate_all_flows.embedded.stack import Stack, StackError

            # The embedded service logs into this buffer; the log checks read it afterwards.
            handler.setLevel(logging.INFO)
            logging.getLogger().addHandler(handler)
            logging.getLogger().setLevel(logging.INFO)
            say("no target given: bringing up the embedded stack")
            t_up = time.monotonic()
            steps = [0]

            def stack_say(msg: str) -> None:
                steps[0] += ": done in " in msg
                say.meter("stack up", steps[0], len(Stack.PHASES), msg)

            try:
                stack = Stack(progress=stack_say).start()
            except StackError as exc:
                raise _CannotRun(
                    target.redact(f"the embedded stack did not come up: {exc}")
                ) from None
            phases.append(("stack up", time.monotonic() - t_up))
            target.use_stack(stack)
        target.webhook_secret = target.webhook_secret_value()
        t_checks = time.monotonic()
        per_group: dict[str, float] = {}
        waited = None
        if wait is not None and target.base_url:
            waited = wait_for_version(target.base_url, wait, progress=say, redact=target.redact)
            phases.append(("waiting for the version", time.monotonic() - t_checks))
            t_checks = time.monotonic()
        if waited is not None and waited.status is not Status.PASS:
            results = [waited]  # the checks would judge the old deployment: none runs
        else:
            results = ([waited] if waited else []) + run_checks(
                target, groups, progress=say, timings=per_group
            )
        if stack is not None and (groups is None or "logs" in groups):
            from validate_all_flows.checks import logs as log_checks

            t_logs = time.monotonic()
            target.log_texts = [("embedded service", capture.getvalue())]
            results = [r for r in results if not r.id.startswith("logs.")]
            results += log_checks.log_hygiene(target)
            per_group["logs"] = time.monotonic() - t_logs
        phases += [(f"checks: {g}", s) for g, s in per_group.items()]
        say(
            f"checks done in {time.monotonic() - t_checks:.1f}s ("
            + ", ".join(f"{g} {s:.1f}s" for g, s in per_group.items())
            + ")"
        )
    finally:
        logging.getLogger().removeHandler(handler)
        target.close()
        if stack is not None:
            say("tearing the embedded stack down")
            t_down = time.monotonic()
            stack.stop()
            phases.append(("teardown", time.monotonic() - t_down))
            say(f"torn down in {time.monotonic() - t_down:.1f}s")
    seconds = time.monotonic() - t0
    # --only leaves other groups out on purpose: their required checks are not judged.
    required = [r for r in profile.require if groups is None or r.split(".")[0] in groups]
    verdict = decide(results, required)
    text = render(args.format, results, verdict, target, started, seconds, version, phases=phases)
    if args.output:
        try:
            Path(args.output).write_text(text)
        except OSError as exc:
            raise _CannotRun(f"--output {args.output}: {exc.strerror}") from None
        print(f"{verdict.label}: {target.redact(verdict.reason)} (report in {args.output})")
    else:
        sys.stdout.write(text)
    return 0 if verdict.go else 1
