"""Prometheus text exposition (format 0.0.4) of the monitor's last cycle and SLO figures, served
by a stdlib HTTP server on a thread (``--metrics-port``; 127.0.0.1 unless ``--metrics-host``).

:func:`monitor_families` is the metric catalogue (every ``blocktrust_monitor_*`` family the
dashboard and the alert rules of ``monitor/ops/`` read); :func:`render` writes families as text.
Only numbers, check ids, job kinds and the chain worker's public signer addresses leave through
here: no URL, evidence text or secret.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from validate_all_flows.check_model import CheckResult, Status
from validate_all_flows.checks.workers import JobBacklog, SignerGas
from validate_all_flows.monitor.sloreport import SloReport
from validate_all_flows.target import DeploymentSlo

__all__ = ["CONTENT_TYPE", "Gauge", "MetricsServer", "monitor_families", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: (name, help, type, [(labels, value)]) — one metric family.
Gauge = tuple[str, str, str, list[tuple[dict[str, str], float]]]


def _label(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def render(families: Iterable[Gauge]) -> str:
    """The exposition text of ``families`` (families without samples are left out)."""
    out = []
    for name, help_text, kind, samples in families:
        if not samples:
            continue
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lab = ",".join(f'{k}="{_label(str(v))}"' for k, v in sorted(labels.items()))
            out.append(f"{name}{{{lab}}} {_value(value)}" if lab else f"{name} {_value(value)}")
    return "\n".join(out) + "\n"


# What the catalogue reads, as read-only views (a Monitor, its AlertManager, MonitorStore and
# Target, and a Cycle, without importing the runner that imports this module).


class _Alerts(Protocol):
    @property
    def open_count(self) -> int: ...
    @property
    def sent(self) -> int: ...
    @property
    def failures(self) -> Mapping[str, int]: ...


class _Store(Protocol):
    @property
    def buffered(self) -> int: ...


class _Target(Protocol):
    @property
    def slo(self) -> DeploymentSlo: ...
    @property
    def chain_margin_s(self) -> float: ...
    @property
    def worker_stale_s(self) -> float: ...
    @property
    def job_objective_s(self) -> float: ...


class _Monitor(Protocol):
    @property
    def cycles(self) -> int: ...
    @property
    def alerts(self) -> _Alerts: ...
    @property
    def store(self) -> _Store: ...
    @property
    def target(self) -> _Target: ...


class _Cycle(Protocol):
    @property
    def at(self) -> dt.datetime: ...
    @property
    def results(self) -> Sequence[CheckResult]: ...
    @property
    def up(self) -> bool | None: ...
    @property
    def seconds(self) -> float: ...
    @property
    def backlog(self) -> Sequence[JobBacklog] | None: ...
    @property
    def gas(self) -> SignerGas | None: ...


def monitor_families(monitor: _Monitor, c: _Cycle | None, rep: SloReport | None) -> list[Gauge]:
    """The monitor's metric families: its counters and objectives, the last cycle ``c`` (None
    before the first) and the last SLO report ``rep`` (None before the first)."""
    slo = monitor.target.slo
    fam: list[Gauge] = [
        (
            "blocktrust_monitor_cycles_total",
            "Check cycles run since the monitor started.",
            "counter",
            [({}, float(monitor.cycles))],
        ),
        (
            "blocktrust_monitor_alerts_open",
            "Alerts open now.",
            "gauge",
            [({}, float(monitor.alerts.open_count))],
        ),
        (
            "blocktrust_monitor_notices_sent_total",
            "Alert notices a channel accepted.",
            "counter",
            [({}, float(monitor.alerts.sent))],
        ),
        (
            "blocktrust_monitor_webhook_failures_total",
            "Notices a channel refused or did not answer (retried next cycle).",
            "counter",
            [({"channel": k}, float(v)) for k, v in sorted(monitor.alerts.failures.items())],
        ),
        (
            "blocktrust_monitor_store_buffered_samples",
            "Samples waiting for the store to answer.",
            "gauge",
            [({}, float(monitor.store.buffered))],
        ),
        (
            "blocktrust_monitor_slo_objective",
            "The objectives (availability and error rate as ratios; latency, lag, the time a "
            "fail-safe may take past its execute_after, a chain worker's silence beyond 3 "
            "polls and a chain job's time in s).",
            "gauge",
            [
                ({"objective": "availability"}, slo.availability),
                ({"objective": "p95_latency_seconds"}, slo.p95_ms / 1000),
                ({"objective": "error_rate"}, slo.error_rate),
                ({"objective": "listener_lag_seconds"}, slo.listener_lag_s),
                ({"objective": "failsafe_margin_seconds"}, monitor.target.chain_margin_s),
                ({"objective": "worker_stale_seconds"}, monitor.target.worker_stale_s),
                ({"objective": "chain_job_seconds"}, monitor.target.job_objective_s),
            ],
        ),
    ]
    if c is not None:
        ran = [r for r in c.results if r.status is not Status.SKIP]
        probes = [r for r in ran if "status" in r.measures]
        lags = [r.measures["lag_s"] for r in ran if "lag_s" in r.measures]
        fam += [
            (
                "blocktrust_monitor_check_up",
                "1: the check passed in the last cycle, 0: it failed (skipped: absent).",
                "gauge",
                [({"check": r.id}, 1.0 if r.status is Status.PASS else 0.0) for r in ran],
            ),
            (
                "blocktrust_monitor_probe_latency_seconds",
                "Latency of the last HTTP probe.",
                "gauge",
                [
                    ({"check": r.id}, r.measures["latency_ms"] / 1000)
                    for r in probes
                    if r.measures["status"] > 0
                ],
            ),
            (
                "blocktrust_monitor_probe_status",
                "HTTP status of the last probe (0: no answer).",
                "gauge",
                [({"check": r.id}, r.measures["status"]) for r in probes],
            ),
            (
                "blocktrust_monitor_listener_lag_seconds",
                "Worst listener lag or checkpoint age in the last cycle.",
                "gauge",
                [({}, max(lags))] if lags else [],
            ),
            (
                "blocktrust_monitor_up",
                "1 when every availability probe of the last cycle answered.",
                "gauge",
                [] if c.up is None else [({}, 1.0 if c.up else 0.0)],
            ),
            (
                "blocktrust_monitor_last_cycle_timestamp_seconds",
                "When the last cycle started (Unix time).",
                "gauge",
                [({}, c.at.timestamp())],
            ),
            (
                "blocktrust_monitor_cycle_duration_seconds",
                "How long the last cycle took.",
                "gauge",
                [({}, c.seconds)],
            ),
        ]
        fam += _chain_families(c.backlog or (), c.gas)
    if rep is not None:

        def some(
            pairs: list[tuple[dict[str, str], float | None]],
        ) -> list[tuple[dict[str, str], float]]:
            return [(k, v) for k, v in pairs if v is not None]

        i = rep.inputs
        fam += [
            (
                "blocktrust_monitor_uptime_ratio",
                "Share of cycles up over the SLO window.",
                "gauge",
                some([({}, rep.uptime)]),
            ),
            (
                "blocktrust_monitor_latency_p95_seconds",
                "95th percentile of probe latency over the SLO window.",
                "gauge",
                some([({}, None if i.p95_ms is None else i.p95_ms / 1000)]),
            ),
            (
                "blocktrust_monitor_error_rate",
                "Share of probes without a 2xx answer over the SLO window.",
                "gauge",
                some([({}, rep.error_rate)]),
            ),
            (
                "blocktrust_monitor_error_budget_remaining",
                "Error budget left over the SLO window (1 untouched, 0 spent, <0 overspent).",
                "gauge",
                some(
                    [
                        ({"objective": "availability"}, rep.uptime_budget_remaining),
                        ({"objective": "error_rate"}, rep.error_budget_remaining),
                    ]
                ),
            ),
            (
                "blocktrust_monitor_burn_rate",
                "Error budget burn rate (1 spends exactly the budget over the window).",
                "gauge",
                some(
                    [
                        (
                            {"objective": "availability", "window": "slo"},
                            rep.uptime_burn_rate,
                        ),
                        (
                            {"objective": "availability", "window": "1h"},
                            rep.uptime_burn_rate_1h,
                        ),
                        ({"objective": "error_rate", "window": "slo"}, rep.error_burn_rate),
                    ]
                ),
            ),
            (
                "blocktrust_monitor_slo_met",
                "1 when every objective with data is met over the window.",
                "gauge",
                [({}, 1.0 if rep.passed else 0.0)],
            ),
        ]
    return fam


def _chain_families(backlog: Sequence[JobBacklog], gas: SignerGas | None) -> list[Gauge]:
    """The chain worker's queue by kind and its signers' gas (absent when not read)."""
    return [
        (
            "blocktrust_monitor_chain_jobs_pending",
            "Chain jobs waiting or sent and not yet settled, by kind (absent: no such table).",
            "gauge",
            [({"kind": b.kind}, float(b.pending)) for b in backlog],
        ),
        (
            "blocktrust_monitor_chain_job_oldest_pending_seconds",
            "Age of the oldest pending chain job, by kind (0: none pends).",
            "gauge",
            [({"kind": b.kind}, b.oldest_pending_s) for b in backlog],
        ),
        (
            "blocktrust_monitor_chain_jobs_failed",
            "Chain jobs that failed, by kind.",
            "gauge",
            [({"kind": b.kind}, float(b.failed)) for b in backlog],
        ),
        (
            "blocktrust_monitor_chain_failsafe_overdue_seconds",
            "How long the most overdue pending fail-safe is past its execute_after (0: none is).",
            "gauge",
            [({}, b.overdue_s) for b in backlog if b.overdue_s is not None],
        ),
        (
            "blocktrust_monitor_signer_balance",
            "The chain worker's signer's balance in the chain's coin, by signer address.",
            "gauge",
            [({"signer": s}, wei / 1e18) for s, wei in (gas.balances if gas else ())],
        ),
        (
            "blocktrust_monitor_signer_balance_required",
            "The least balance a signer must hold, in the chain's coin (--min-gas-balance, "
            "else 20 fail-safes at the current gas price).",
            "gauge",
            [] if gas is None else [({}, gas.need_wei / 1e18)],
        ),
    ]


class MetricsServer:
    """Serves ``GET /metrics`` with whatever ``source()`` renders at that moment.

    ``port`` 0 picks a free one (read it back from ``.port``). Stops with :meth:`stop`.
    """

    def __init__(self, source: Callable[[], str], host: str = "127.0.0.1", port: int = 0) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404, "see /metrics")
                    return
                try:
                    body = source().encode()
                except Exception:  # a scrape must not take the monitor down
                    self.send_error(500, "rendering failed")
                    return
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # scrapes every few seconds would flood the monitor's log

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="monitor-metrics", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The scrape URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        """Stops serving and closes the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
