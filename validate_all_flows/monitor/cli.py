"""Command line of ``python -m validate_all_flows monitor``.

Watches a deployment: runs the checks every interval, stores metrics and alerts in its database
(or ``--monitor-database-url``), posts alerts to Slack-compatible webhooks and Telegram, serves
Prometheus metrics, writes SLO reports, until SIGINT/SIGTERM. Exit codes: 0 after a clean stop
(with ``--once``/``--cycles``: 0 when the last cycle had no failing check, 1 when it had), 2 cannot
run, with the reason on stderr.

Settings the Blocktrust monitor took from its environment are read from the same variables when
the option is not given: ``MONITOR_CHECK_INTERVAL``, ``SLO_UPTIME_TARGET`` (percent),
``SLO_LATENCY_MS``, ``SLACK_WEBHOOK_URL`` / ``ALERT_WEBHOOK_URL``, ``TELEGRAM_BOT_TOKEN``,
``TELEGRAM_CHAT_ID``. Prefer the environment for the token and webhook URLs: a command line is
visible to every user of the machine.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from validate_all_flows.check_model import GROUPS
from validate_all_flows.target import (
    MIN_GAS_BALANCE_HELP,
    add_chain_objective_arguments,
    add_target_arguments,
    parse_duration,
)
from validate_all_flows.target import duration_argument as _duration

if TYPE_CHECKING:
    from validate_all_flows.monitor.alerts import Channel
    from validate_all_flows.monitor.runner import MonitorConfig
    from validate_all_flows.monitor.store import MonitorStore
    from validate_all_flows.target import Target

__all__ = ["main", "parse_duration"]  # parse_duration: validate_all_flows.target's


class _CannotRun(Exception):
    pass


def _env_float(name: str, default: float, scale: float = 1.0) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw) * scale
    except ValueError:
        raise _CannotRun(f"{name}={raw!r} is not a number") from None


def _parser() -> argparse.ArgumentParser:
    env = os.environ
    p = argparse.ArgumentParser(
        prog="python -m validate_all_flows monitor",
        description="Run the checks against a deployment on a schedule; store metrics and "
        "alerts, post alerts to webhooks, serve Prometheus metrics, write SLO reports.",
    )
    t = p.add_argument_group("target (as for the main command; at least one)")
    add_target_arguments(t, "its PostgreSQL URL; also the store unless given below")
    t.add_argument(
        "--profile",
        default="reference",
        help="what the deployment is: a profile file or a built-in name (as for the command)",
    )
    s = p.add_argument_group("schedule and store")
    s.add_argument(
        "--interval", type=_duration, help="time between cycles (60 s; $MONITOR_CHECK_INTERVAL)"
    )
    s.add_argument("--once", action="store_true", help="one cycle, then exit")
    s.add_argument("--cycles", type=int, help="this many cycles, then exit")
    s.add_argument(
        "--groups",
        help="comma-separated check groups (default database,http,chain,workers; "
        f"known: {','.join(GROUPS)}; flows writes users and spends gas)",
    )
    s.add_argument("--name", help="this monitor's name in the store (default: from the target)")
    s.add_argument("--monitor-database-url", help="store metrics and alerts here instead")
    s.add_argument("--retention", type=_duration, default=40 * 86400.0, help="keep samples (40d)")
    o = p.add_argument_group("objectives")
    o.add_argument("--p95-ms", type=float, help="(800; $SLO_LATENCY_MS)")
    o.add_argument("--error-rate", type=float, default=0.01, help="(0.01)")
    o.add_argument("--availability", type=float, help="(0.995; $SLO_UPTIME_TARGET in percent)")
    o.add_argument("--listener-lag", type=float, default=180.0, help="seconds (180)")
    o.add_argument("--window", type=_duration, default=30 * 86400.0, help="SLO window (30d)")
    o.add_argument("--min-gas-balance", type=float, help=f"{MIN_GAS_BALANCE_HELP}; with --rpc-url")
    add_chain_objective_arguments(o)
    r = p.add_argument_group("reports")
    r.add_argument("--report-every", type=_duration, default=12 * 60.0, help="(12m)")
    r.add_argument("--report-dir", help="write slo-report.{txt,json} here (default: log only)")
    a = p.add_argument_group("alerts")
    a.add_argument(
        "--slack-webhook",
        action="append",
        default=[],
        help="Slack-compatible webhook URL, repeatable ($SLACK_WEBHOOK_URL, $ALERT_WEBHOOK_URL)",
    )
    a.add_argument(
        "--telegram-token",
        default=env.get("TELEGRAM_BOT_TOKEN"),
        help="bot token (prefer $TELEGRAM_BOT_TOKEN)",
    )
    a.add_argument("--telegram-chat-id", default=env.get("TELEGRAM_CHAT_ID"))
    a.add_argument("--telegram-api-base", default="https://api.telegram.org")
    a.add_argument(
        "--remind-every", type=_duration, default=4 * 3600.0, help="reminder period (4h; 0 off)"
    )
    a.add_argument(
        "--burn-alert", type=float, default=14.4, help="1-hour uptime burn rate alert (14.4; 0 off)"
    )
    m = p.add_argument_group("prometheus")
    m.add_argument("--metrics-port", type=int, help="serve /metrics on this port")
    m.add_argument("--metrics-host", default="127.0.0.1")
    p.add_argument("--quiet", action="store_true", help="log warnings and errors only")
    return p


class _RedactingFormatter(logging.Formatter):
    """Every line through Target.redact, whatever logged it (tracebacks included)."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S")
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(super().format(record))


def _default_name(args: argparse.Namespace) -> str:
    for url in (args.base_url, args.database_url, args.rpc_url):
        if url:
            parts = urlsplit(url)
            if url is args.database_url and parts.path.strip("/"):
                return f"{parts.hostname}/{parts.path.strip('/')}"
            return parts.netloc.rsplit("@", 1)[-1] or "blocktrust"
    return "blocktrust"


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the monitor; returns the process exit code."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        return _run(args)
    except _CannotRun as exc:
        print(f"cannot run: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    try:
        import blocktrust_native
        from blocktrust_native.errors import ConfigError
        from blocktrust_native.errors import Error as NativeError
    except ImportError as exc:
        raise _CannotRun(f"the native library does not load: {exc}") from None
    from validate_all_flows.envcheck import EnvSchemaError, parse_env_file
    from validate_all_flows.monitor.alerts import SlackWebhook, TelegramBot
    from validate_all_flows.monitor.runner import DEFAULT_GROUPS, MonitorConfig
    from validate_all_flows.monitor.store import MonitorStore
    from validate_all_flows.profile import ProfileError, load_profile
    from validate_all_flows.target import (
        DeploymentSlo,
        InputError,
        Target,
        check_inputs,
        check_min_gas_balance,
        check_url,
    )

    try:  # the profile first: a mistake in it stops everything before anything starts
        profile = load_profile(args.profile)
    except ProfileError as exc:
        raise _CannotRun(f"--profile {exc}") from None
    if not any([args.base_url, args.database_url, args.rpc_url, args.contracts]):
        raise _CannotRun(
            "the monitor needs a deployment to watch: give --base-url, --database-url and/or "
            "--rpc-url with --contracts (an embedded stack lives only as long as one command, "
            "so there is nothing to monitor without a target; use `stack up` to keep one up)"
        )
    store_url = args.monitor_database_url or args.database_url
    if not store_url:
        raise _CannotRun("metrics and alerts need a store: give --database-url or "
                         "--monitor-database-url (migrations 008 and 009 applied)")  # fmt: skip
    if args.interval is None:
        args.interval = _env_float("MONITOR_CHECK_INTERVAL", 60.0)
    if args.p95_ms is None:
        args.p95_ms = _env_float("SLO_LATENCY_MS", 800.0)
    if args.availability is None:
        args.availability = _env_float("SLO_UPTIME_TARGET", 0.995, 0.01)
    if args.once and args.cycles is not None:
        raise _CannotRun("give --once or --cycles, not both")
    cycles = 1 if args.once else args.cycles
    if cycles is not None and cycles < 1:
        raise _CannotRun("--cycles must be at least 1")
    if args.interval <= 0 or args.report_every <= 0 or args.window <= 0:
        raise _CannotRun("--interval, --report-every and --window must be positive")
    if not math.isfinite(args.burn_alert) or args.burn_alert < 0:
        raise _CannotRun(f"--burn-alert {args.burn_alert!r}: must be a burn rate >= 0 (0: off)")
    if args.metrics_port is not None and not 0 <= args.metrics_port <= 65535:
        raise _CannotRun(f"--metrics-port {args.metrics_port}: not a port (0-65535; 0: any free)")
    if args.name is not None and not args.name.strip():
        raise _CannotRun("--name '': give this monitor a name, or leave the option out")
    groups = tuple(DEFAULT_GROUPS)
    if args.groups is not None:
        groups = tuple(g.strip() for g in args.groups.split(",") if g.strip())
        if not groups:
            raise _CannotRun(f"--groups {args.groups!r}: no group named; known: {GROUPS}")
        unknown = sorted(set(groups) - set(GROUPS))
        if unknown:
            raise _CannotRun(f"--groups: unknown group(s) {unknown}; known: {GROUPS}")
    slo = DeploymentSlo(args.p95_ms, args.error_rate, args.availability, args.listener_lag)
    try:
        min_gas_wei = check_min_gas_balance(args.min_gas_balance)
        slo.check()
        check_inputs(
            base_url=args.base_url,
            database_url=args.database_url,
            rpc_url=args.rpc_url,
            contracts=args.contracts,
            env_schema=args.env_schema,
        )
        if args.monitor_database_url:
            check_url("--monitor-database-url", args.monitor_database_url, "database")
    except InputError as exc:
        raise _CannotRun(str(exc)) from None
    if not 0 < slo.availability < 1 or not 0 <= slo.error_rate < 1 or slo.p95_ms <= 0:
        raise _CannotRun("objectives: --availability in (0, 1), --error-rate in [0, 1), "
                         "--p95-ms > 0")  # fmt: skip

    target = Target(
        base_url=args.base_url,
        database_url=args.database_url,
        rpc_url=args.rpc_url,
        contracts=args.contracts,
        slo=slo,
        min_gas_balance_wei=min_gas_wei,
    ).use_profile(profile)
    target.use_chain_objectives(args)
    if args.env_schema:
        target.env_schema = Path(args.env_schema)
    if args.env_file:
        try:
            target.env = parse_env_file(args.env_file)
        except EnvSchemaError as exc:
            raise _CannotRun(str(exc)) from None
        target.webhook_secret = target.webhook_secret_value()
    target.register_inputs()
    hooks = list(args.slack_webhook) or [
        os.environ[k] for k in ("SLACK_WEBHOOK_URL", "ALERT_WEBHOOK_URL") if os.environ.get(k)
    ]
    hooks = list(dict.fromkeys(hooks))  # the same URL under both names posts once
    target.redactor.add_url(args.monitor_database_url)
    target.add_secrets([args.telegram_token or "", *hooks])  # a webhook URL is its credential

    logger = logging.getLogger("validate_all_flows.monitor")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter(target.redact))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if args.quiet else logging.INFO)
    logger.propagate = False
    try:
        channels: list[Channel] = []
        try:
            channels += [
                SlackWebhook(u, option="--slack-webhook / $SLACK_WEBHOOK_URL") for u in hooks
            ]
            if args.telegram_token or args.telegram_chat_id:
                if not (args.telegram_token and args.telegram_chat_id):
                    raise ConfigError("Telegram needs both a token and a chat id")
                channels.append(
                    TelegramBot(
                        args.telegram_token,
                        args.telegram_chat_id,
                        api_base=args.telegram_api_base,
                    )
                )
        except ConfigError as exc:
            raise _CannotRun(target.redact(str(exc))) from None
        report_dir = Path(args.report_dir) if args.report_dir else None
        if report_dir is not None:
            try:
                report_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _CannotRun(f"--report-dir {report_dir}: {exc.strerror}") from None
        name = args.name or _default_name(args)
        config = MonitorConfig(
            instance=name,
            interval_s=args.interval,
            groups=groups,
            window_s=args.window,
            report_every_s=args.report_every,
            report_dir=report_dir,
            retention_s=args.retention,
            burn_alert=args.burn_alert,
            remind_every_s=args.remind_every,
            version=blocktrust_native.__version__,
        )
        try:
            store = MonitorStore(store_url, name)
        except (ConfigError, NativeError) as exc:
            raise _CannotRun(target.redact(f"the store URL: {exc}")) from None
        try:
            return _watch(args, target, store, config, channels, cycles, logger)
        finally:
            store.close()
            target.close()
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def _watch(
    args: argparse.Namespace,
    target: Target,
    store: MonitorStore,
    config: MonitorConfig,
    channels: list[Channel],
    cycles: int | None,
    log: logging.Logger,
) -> int:
    from blocktrust_native.errors import Error as NativeError
    from validate_all_flows.monitor.runner import Monitor

    try:
        missing = store.missing_tables()
    except NativeError as exc:
        # Often the store is the monitored database: it being down is what to alert about.
        log.warning("the store does not answer yet (%s); starting anyway", str(exc).splitlines()[0])
    else:
        if missing:
            raise _CannotRun(
                f"the store lacks {', '.join(missing)}: apply the migrations "
                "(python -m validate_all_flows.embedded.migrate <database URL>)"
            )
    mon = Monitor(target, store, config, channels)
    if args.metrics_port is not None:
        try:
            srv = mon.serve_metrics(args.metrics_host, args.metrics_port)
        except OSError as exc:
            raise _CannotRun(
                f"--metrics-port {args.metrics_port} on {args.metrics_host}: {exc.strerror}"
            ) from None
        log.info("Prometheus metrics on %s", srv.url)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():  # a second Ctrl-C: stop now, mid-cycle
            raise KeyboardInterrupt
        log.info("%s: stopping after this cycle", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    names = ", ".join(c.name for c in channels) or "none"
    log.info(
        "monitoring %s every %g s: groups %s; alerts to %s",
        config.instance,
        config.interval_s,
        ",".join(config.groups),
        names,
    )
    try:
        mon.start()
        return mon.run(stop, cycles)
    except KeyboardInterrupt:
        return 0
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        mon.close()
        log.info("stopped after %d cycle(s)", mon.cycles)
