"""The monitor loop: every interval, run the checks, record what they measured, raise and resolve
alerts, post notices, refresh the heartbeat, and now and then write the SLO report.

Nothing that happens to the store, a webhook or a check stops the loop: a store that does not
answer keeps the samples buffered (see MonitorStore), a webhook that fails is tried again next
cycle, a check that raises is an ERROR result. Only a stop request (SIGINT/SIGTERM through
``stop``) or the requested number of cycles ends it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from blocktrust_native.errors import Error as NativeError
from blocktrust_native.leader import Leader
from validate_all_flows.checks import CheckResult, Status, run_checks
from validate_all_flows.checks.workers import (
    JobBacklog,
    SignerGas,
    chain_backlog,
    chain_signers,
    signer_gas,
)
from validate_all_flows.monitor.alerts import AVAILABILITY_CHECKS, AlertManager, Channel
from validate_all_flows.monitor.prometheus import MetricsServer, monitor_families, render
from validate_all_flows.monitor.sloreport import SloReport, build_report, write_report
from validate_all_flows.monitor.store import MonitorStore
from validate_all_flows.target import Target

__all__ = ["DEFAULT_GROUPS", "Cycle", "Monitor", "MonitorConfig"]

log = logging.getLogger("validate_all_flows.monitor")

#: What runs every interval unless ``--groups`` says otherwise: the checks that only read. Left
#: out: env (the env file is read once; re-checking it each minute finds nothing new), flows
#: (each run registers users, mints NFTs and spends gas), security (the login probe trips the
#: rate limiter on purpose, 30 requests a cycle) and logs (files read once at start).
DEFAULT_GROUPS = ("database", "http", "chain", "workers")

#: The check id of the fast-burn alert on the uptime error budget.
BURN_CHECK = "slo.uptime_burn"


@dataclass
class MonitorConfig:
    """How the monitor runs; see ``python -m validate_all_flows monitor --help``."""

    instance: str
    interval_s: float = 60.0
    groups: tuple[str, ...] = DEFAULT_GROUPS
    window_s: float = 30 * 86400.0
    report_every_s: float = 12 * 60.0
    report_dir: Path | None = None
    retention_s: float = 40 * 86400.0  # 0 keeps everything
    burn_alert: float = 14.4  # 1-hour burn rate that raises an alert; 0 turns it off
    burn_alert_min_cycles: int = 10  # ... once the hour holds this many cycles
    remind_every_s: float = 4 * 3600.0  # at most one reminder per failing check this often; 0 off
    version: str = ""


@dataclass
class Cycle:
    """What one cycle saw and did."""

    number: int
    at: dt.datetime
    results: list[CheckResult]
    up: bool | None  # None: no availability probe ran
    seconds: float = 0.0
    notices: int = 0
    report: SloReport | None = None
    wrote_report: list[Path] = field(default_factory=list)
    #: The chain worker's queue by kind (None: not read: workers not in the groups, or the
    #: database did not answer; a kind whose table is absent is not in the list).
    backlog: list[JobBacklog] | None = None
    #: The chain worker's signers' balances and the least they must hold (None: no --rpc-url,
    #: workers not in the groups, or the chain did not answer).
    gas: SignerGas | None = None

    @property
    def failing(self) -> list[str]:
        """Ids of the checks that failed or could not complete."""
        return [r.id for r in self.results if r.status in (Status.FAIL, Status.ERROR)]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _is_up(r: CheckResult) -> bool:
    if "status" in r.measures:  # an HTTP probe: any 2xx answer is up, however slow
        return 200 <= r.measures["status"] < 300
    return r.status is Status.PASS


class Monitor:
    """Runs ``target``'s checks on a schedule and records them in ``store``.

    ``channels`` receive the alert notices; ``clock`` (tests) replaces the wall clock.

    Monitors of the same ``instance`` on one store elect a leader (``leader=True``, a PostgreSQL
    advisory lock, :mod:`blocktrust_native.leader`): only the leader runs the cycle, so each alert
    is sent once; a standby's cycle does nothing until the leader goes away, and then takes over
    the open alerts the leader saved (an alert announced by it is not announced again). When the
    store does not answer, every monitor runs its cycles: a duplicate beats a silence.
    """

    def __init__(
        self,
        target: Target,
        store: MonitorStore,
        config: MonitorConfig,
        channels: Iterable[Channel] = (),
        *,
        clock: Callable[[], dt.datetime] = _utcnow,
        leader: bool = True,
    ) -> None:
        self.target = target
        self.store = store
        self.config = config
        self.clock = clock
        self.alerts = AlertManager(
            config.instance, channels, remind_every_s=config.remind_every_s, redact=target.redact
        )
        self.cycles = 0
        self.last: Cycle | None = None
        self.report: SloReport | None = None
        self._last_report_at: float | None = None
        self._written: SloReport | None = None
        self._store_ok = True
        self._chain_read_ok = True
        self._restored = False  # the store's open alerts taken over (see AlertManager.restore)
        self._lock = threading.Lock()  # the metrics server reads last/report from its thread
        self.metrics_server: MetricsServer | None = None
        #: The leader election among monitors of this instance (None with leader=False).
        self.leader = Leader(store.pool, f"monitor:{config.instance}") if leader else None
        self.standby = False  # another monitor of this instance leads

    # --- life cycle

    def start(self) -> None:
        """Takes over the open alerts and announces the heartbeat (best effort: a store that
        does not answer now is tried again every cycle)."""
        try:
            self._restore()
            self.store.beat(self.config.interval_s, 0, self.config.version, starting=True)
        except NativeError as exc:
            self._store_failed("start", exc)

    def _restore(self) -> None:
        if not self._restored:
            self.alerts.restore(self.store.open_alerts())
            self._restored = True

    def serve_metrics(self, host: str = "127.0.0.1", port: int = 0) -> MetricsServer:
        """Starts the Prometheus endpoint (raises OSError when the port cannot be bound)."""
        self.metrics_server = MetricsServer(self.exposition, host, port)
        return self.metrics_server

    def close(self) -> None:
        """Writes the last SLO report if not yet written, marks the heartbeat stopped, writes
        what is buffered and stops the metrics server (a standby only stops)."""
        if self.standby:
            if self.metrics_server is not None:
                self.metrics_server.stop()
                self.metrics_server = None
            return
        if self.report is not None and self.report is not self._written:
            self._write_report(self.report, self.clock())
        if self.metrics_server is not None:
            self.metrics_server.stop()
            self.metrics_server = None
        try:
            self.store.flush()
            self._save_alerts()
            self.store.mark_stopped()
        except NativeError as exc:
            self._store_failed("shutdown", exc)
        if self.leader is not None:
            self.leader.release()

    def run(self, stop: threading.Event, cycles: int | None = None) -> int:
        """Runs cycles until ``stop`` is set or ``cycles`` ran; returns the exit code: 0, or
        with ``cycles``, 1 when the last cycle had a failing check."""
        done = 0
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                self.run_cycle()
            except Exception:  # a bug in one cycle must not end the watch; the log says where
                log.exception("cycle %d failed", self.cycles)
            done += 1
            if cycles is not None and done >= cycles:
                break
            stop.wait(max(0.0, self.config.interval_s - (time.monotonic() - t0)))
        if cycles is not None and self.last is not None and self.last.failing:
            return 1
        return 0

    # --- one cycle

    def _lead(self) -> bool:
        """Whether this monitor runs the cycle (see the class doc)."""
        if self.leader is None:
            return True
        if self.leader.ensure() or self.leader.last_error is not None:
            if self.standby:  # taking over: the alerts as the old leader left them
                log.info("monitor %s: taking over from the previous leader", self.config.instance)
                self.alerts.alerts.clear()
                self.alerts.closing.clear()
                self._restored = False
                self.standby = False
            return True
        self.standby = True
        return False

    def run_cycle(self) -> Cycle:
        """Runs the checks once and does everything that follows from them (a standby: nothing;
        its cycle has no results)."""
        t0 = time.monotonic()
        at = self.clock()
        if not self._lead():
            return Cycle(self.cycles, at, [], None)
        groups = set(self.config.groups)
        with self.target.sharing_reads():  # the checks and the gauges read the signers once
            results = run_checks(self.target, groups)
            now = self.clock()
            self.cycles += 1
            cycle = Cycle(self.cycles, at, results, self._record(results, at))
            if "workers" in groups:
                cycle.backlog, cycle.gas = self._chain_queue()
        cycle.seconds = time.monotonic() - t0
        self.store.add("monitor.cycle_seconds", cycle.seconds, at)
        self.alerts.observe(results, now)
        try:
            self._restore()  # when the store did not answer at start
            self.store.flush()  # first, so that this cycle counts in the SLO figures
            report = build_report(
                self.config.instance,
                self.store.slo_inputs(now - dt.timedelta(seconds=self.config.window_s), now),
                self.target.slo,
                self.config.window_s,
                now,
            )
            self._store_back()
        except NativeError as exc:
            self._store_failed("recording the cycle", exc)
            report = None
        if report is not None:
            self._burn_alert(report, now)
        cycle.notices = self.alerts.notify(now)
        try:
            self._save_alerts()
            self.store.beat(self.config.interval_s, self.cycles, self.config.version)
        except NativeError as exc:
            self._store_failed("saving alerts and heartbeat", exc)
        cycle.report = report
        with self._lock:
            self.last = cycle
            if report is not None:
                self.report = report
        log.info(self._describe(cycle))
        if report is not None and self._report_due():
            cycle.wrote_report = self._write_report(report, now)
        return cycle

    def _chain_queue(self) -> tuple[list[JobBacklog] | None, SignerGas | None]:
        """The chain worker's backlog and its signers' gas, for the gauges (what cannot be read
        is left out: a database or chain that does not answer has its own check and alert)."""
        t = self.target
        backlog: list[JobBacklog] | None = None
        gas: SignerGas | None = None
        failed: list[str] = []
        try:
            backlog = chain_backlog(t)
        except Exception as exc:  # a gauge must not cost the cycle
            failed.append(
                f"the chain job backlog: {str(exc).splitlines()[0] if str(exc) else exc!r}"
            )
        if t.rpc_url:
            try:
                gas = signer_gas(t, chain_signers(t) if t.database_url else [])
            except Exception as exc:
                failed.append(
                    f"the signer's gas: {str(exc).splitlines()[0] if str(exc) else exc!r}"
                )
        if failed and self._chain_read_ok:
            log.warning(
                t.redact("not read this cycle (the gauges are left out): " + "; ".join(failed))
            )
        self._chain_read_ok = not failed
        return backlog, gas

    def _record(self, results: list[CheckResult], at: dt.datetime) -> bool | None:
        avail = []
        for r in results:
            if r.status is Status.SKIP:
                continue
            self.store.add("check.status", 1.0 if r.status is Status.PASS else 0.0, at, check=r.id)
            m = r.measures
            if "status" in m:
                self.store.add("probe.status", m["status"], at, check=r.id)
                if m["status"] > 0 and "latency_ms" in m:
                    self.store.add("probe.latency_ms", m["latency_ms"], at, check=r.id)
            if "lag_s" in m:
                self.store.add("listener.lag_seconds", m["lag_s"], at)
            if r.id in AVAILABILITY_CHECKS:
                avail.append(_is_up(r))
        if not avail:
            return None
        up = all(avail)
        self.store.add("monitor.up", 1.0 if up else 0.0, at)
        return up

    def _burn_alert(self, report: SloReport, now: dt.datetime) -> None:
        burn, n = report.uptime_burn_rate_1h, report.inputs.cycles_1h
        if self.config.burn_alert <= 0 or burn is None or n < self.config.burn_alert_min_cycles:
            return
        down = n - report.inputs.up_cycles_1h
        found = f"burn rate {burn:.1f} over the last hour ({down} of {n} cycles down)"
        title = f"uptime error budget burns below {self.config.burn_alert:g}x"
        failing = burn >= self.config.burn_alert
        result = CheckResult(
            BURN_CHECK,
            title,
            Status.FAIL if failing else Status.PASS,
            found,
            fix="the deployment is failing often enough to spend the month's budget in days: "
            "see the failing checks' alerts"
            if failing
            else "",
        )
        self.alerts.observe([result], now)

    def _save_alerts(self) -> None:
        for a in self.alerts.dirty():
            self.alerts.saved(a, self.store.save_alert(a))

    def _report_due(self) -> bool:
        now = time.monotonic()
        if self._last_report_at is None or now - self._last_report_at >= self.config.report_every_s:
            self._last_report_at = now
            return True
        return False

    def _write_report(self, report: SloReport, now: dt.datetime) -> list[Path]:
        self._written = report
        paths: list[Path] = []
        if self.config.report_dir is not None:
            try:
                paths = write_report(
                    report,
                    self.config.report_dir,
                    self.target.redact,
                    list(self.alerts.alerts.values()),
                )
            except OSError as exc:
                log.error("cannot write the SLO report to %s: %s", self.config.report_dir, exc)
        verdict = (
            "met"
            if report.passed
            else "MISSED: " + ", ".join(v.objective for v in report.verdicts if not v.passed)
        )
        up = "no data" if report.uptime is None else f"{report.uptime * 100:.3f} %"
        rem = report.uptime_budget_remaining
        log.info(
            "SLO report: %s; uptime %s, budget remaining %s%s",
            verdict,
            up,
            "n/a" if rem is None else f"{rem:.3f}",
            f" (written to {self.config.report_dir})" if paths else "",
        )
        if self.config.retention_s > 0:
            try:
                self.store.prune(now - dt.timedelta(seconds=self.config.retention_s))
            except NativeError as exc:
                self._store_failed("pruning old samples", exc)
        return paths

    def _store_failed(self, what: str, exc: Exception) -> None:
        if self._store_ok:
            log.error(
                "the monitor store does not answer (%s): %s; samples stay buffered",
                what,
                self.target.redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__),
            )
        self._store_ok = False

    def _store_back(self) -> None:
        if not self._store_ok:
            log.info("the monitor store answers again")
        self._store_ok = True

    def _describe(self, c: Cycle) -> str:
        n = {s: sum(1 for r in c.results if r.status is s) for s in Status}
        parts = [
            f"cycle {c.number}: {n[Status.PASS]} pass, {n[Status.FAIL]} fail, "
            f"{n[Status.ERROR]} error, {n[Status.SKIP]} skip",
            {True: "up", False: "DOWN", None: "availability unknown"}[c.up],
        ]
        if c.failing:
            parts.append("failing: " + ", ".join(c.failing))
        if c.report is not None and c.report.uptime is not None:
            parts.append(f"window uptime {c.report.uptime * 100:.2f} %")
        parts.append(f"{self.alerts.open_count} alert(s) open")
        if c.notices:
            parts.append(f"{c.notices} notice(s) sent")
        if self.store.buffered:
            parts.append(f"{self.store.buffered} sample(s) buffered")
        parts.append(f"{c.seconds:.2f} s")
        return self.target.redact(" | ".join(parts))

    # --- Prometheus

    def exposition(self) -> str:
        """The Prometheus text for the last cycle and the last SLO figures (the metric
        catalogue: :func:`validate_all_flows.monitor.prometheus.monitor_families`)."""
        with self._lock:
            c, rep = self.last, self.report
        return self.target.redact(render(monitor_families(self, c, rep)))
