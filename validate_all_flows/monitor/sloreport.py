"""The monitor's SLO report: uptime, latency, error rate and listener lag against the objectives
over a window, with the error budget left and how fast it burns.

The indicators, from what the monitor recorded each cycle (see MonitorStore):

- **uptime**: the share of cycles in which the deployment was up, that is every availability probe
  of the cycle answered (``/api/health`` and ``/api/ready`` with a 2xx, the database reachable). A
  slow but correct answer is up; slowness counts against the latency objective instead.
- **latency**: the 95th percentile of the HTTP probes' latencies.
- **error rate**: the share of HTTP probes that got no 2xx answer.
- **listener lag**: the worst lag (or checkpoint age) the listener check saw.

The window is ``window_s`` back from now, or since the first sample when the monitor is younger
than that. The error budget and burn rate of uptime and of the error rate come from
:class:`blocktrust_native.flows.ErrorBudget` (one formula for flows and monitor alike): remaining 1
is untouched, 0 spent, negative overspent; burn rate 1 spends exactly the budget over the window.
``burn_rate_1h`` is the same over the last hour, the fast-burn signal alerts are built on.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blocktrust_native.flows import ErrorBudget, Verdict
from blocktrust_native.flows import Slo as FlowSlo
from validate_all_flows.monitor.store import SloInputs
from validate_all_flows.redact import redact_data
from validate_all_flows.target import DeploymentSlo

__all__ = ["REPORT_SCHEMA", "SloReport", "budget", "build_report", "write_report"]

#: The ``schema`` field of the JSON report.
REPORT_SCHEMA = "blocktrust.monitor.slo/1"


def budget(
    failed: int, total: int, *, availability: float | None = None, error_rate: float | None = None
) -> tuple[float | None, float | None]:
    """(remaining, burn rate) of the budget ``1 - availability`` (or ``error_rate``) after
    ``failed`` of ``total`` events; (None, None) with no event."""
    eb = ErrorBudget(FlowSlo(availability=availability, error_rate=error_rate))
    eb.failed, eb.total = failed, total
    return eb.remaining, eb.burn_rate


@dataclass(frozen=True)
class SloReport:
    """One evaluation; ``to_dict`` is the JSON report, ``to_text`` the one for people."""

    instance: str
    generated_at: dt.datetime
    window_s: float
    inputs: SloInputs
    slo: DeploymentSlo
    verdicts: list[Verdict]
    uptime: float | None
    error_rate: float | None
    uptime_budget_remaining: float | None
    uptime_burn_rate: float | None
    uptime_burn_rate_1h: float | None
    error_budget_remaining: float | None
    error_burn_rate: float | None

    @property
    def passed(self) -> bool:
        """True when every objective passed (one without samples never does)."""
        return all(v.passed for v in self.verdicts)

    @property
    def since(self) -> dt.datetime:
        """Where the window starts: its nominal start, or the first sample when later."""
        first = self.inputs.first_sample
        return max(self.inputs.start, first) if first else self.inputs.start

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (schema ``blocktrust.monitor.slo/1``)."""
        i = self.inputs
        return {
            "schema": REPORT_SCHEMA,
            "instance": self.instance,
            "generated_at": self.generated_at.isoformat(timespec="seconds"),
            "window": {
                "seconds": self.window_s,
                "start": i.start.isoformat(timespec="seconds"),
                "since": self.since.isoformat(timespec="seconds"),
                "end": i.end.isoformat(timespec="seconds"),
            },
            "objectives": {
                "availability": self.slo.availability,
                "p95_ms": self.slo.p95_ms,
                "error_rate": self.slo.error_rate,
                "listener_lag_s": self.slo.listener_lag_s,
            },
            "passed": self.passed,
            "uptime": {
                "cycles": i.cycles,
                "up": i.up_cycles,
                "ratio": self.uptime,
                "budget_remaining": self.uptime_budget_remaining,
                "burn_rate": self.uptime_burn_rate,
                "cycles_1h": i.cycles_1h,
                "up_1h": i.up_cycles_1h,
                "burn_rate_1h": self.uptime_burn_rate_1h,
            },
            "latency": {"probes": i.probes, "p95_ms": i.p95_ms},
            "errors": {
                "probes": i.probes,
                "failed": i.probe_errors,
                "rate": self.error_rate,
                "budget_remaining": self.error_budget_remaining,
                "burn_rate": self.error_burn_rate,
            },
            "listener_lag": {"max_s": i.max_lag_s},
            "verdicts": [v.to_dict() for v in self.verdicts],
        }

    def to_text(self) -> str:
        """A short report for people."""
        i = self.inputs
        utc = dt.timezone.utc
        since, end = self.since.astimezone(utc), i.end.astimezone(utc)

        def pct(x: float | None) -> str:
            return "no data" if x is None else f"{x * 100:.3f} %"

        def num(x: float | None, fmt: str = ".2f") -> str:
            return "n/a" if x is None else format(x, fmt)

        lines = [
            f"SLO report for {self.instance} — {'MET' if self.passed else 'MISSED'}",
            f"window: {since:%Y-%m-%d %H:%M:%S} .. {end:%Y-%m-%d %H:%M:%S} UTC "
            f"({(end - since).total_seconds() / 3600:.1f} h of {self.window_s / 86400:g} d)",
            f"uptime:       {pct(self.uptime)} ({i.up_cycles}/{i.cycles} cycles up), "
            f"objective {self.slo.availability * 100:g} %",
            f"  budget remaining {num(self.uptime_budget_remaining, '.3f')}, "
            f"burn rate {num(self.uptime_burn_rate)} (last hour {num(self.uptime_burn_rate_1h)})",
            f"latency p95:  {'no data' if i.p95_ms is None else f'{i.p95_ms:.1f} ms'} "
            f"over {i.probes} probes, "
            f"objective {self.slo.p95_ms:g} ms",
            f"error rate:   {pct(self.error_rate)} ({i.probe_errors}/{i.probes} probes), "
            f"objective {self.slo.error_rate * 100:g} %",
            f"  budget remaining {num(self.error_budget_remaining, '.3f')}, "
            f"burn rate {num(self.error_burn_rate)}",
            f"listener lag: max {'no data' if i.max_lag_s is None else f'{i.max_lag_s:.0f} s'}, "
            f"objective {self.slo.listener_lag_s:g} s",
        ]
        lines += [f"  {v.describe()}" for v in self.verdicts]
        return "\n".join(lines) + "\n"


def build_report(
    instance: str, inputs: SloInputs, slo: DeploymentSlo, window_s: float, now: dt.datetime
) -> SloReport:
    """Judges ``inputs`` against ``slo``. Uptime, latency and error rate are always judged, and
    fail with no samples (a window with nothing measured is never MET); listener lag only when
    the listener was checked."""
    i = inputs
    uptime = i.up_cycles / i.cycles if i.cycles else None
    error_rate = i.probe_errors / i.probes if i.probes else None
    up_rem, up_burn = budget(i.cycles - i.up_cycles, i.cycles, availability=slo.availability)
    _, up_burn_1h = budget(i.cycles_1h - i.up_cycles_1h, i.cycles_1h, availability=slo.availability)
    err_rem, err_burn = budget(i.probe_errors, i.probes, error_rate=slo.error_rate)
    verdicts = [
        Verdict.judge("uptime", uptime, slo.availability, samples=i.cycles, at_least=True),
        Verdict.judge("p95 latency", i.p95_ms, slo.p95_ms, samples=i.probes, unit=" ms"),
        Verdict.judge("error rate", error_rate, slo.error_rate, samples=i.probes),
    ]
    if i.max_lag_s is not None:
        verdicts.append(
            Verdict.judge("listener lag", i.max_lag_s, slo.listener_lag_s, samples=1, unit=" s")
        )
    return SloReport(
        instance=instance,
        generated_at=now,
        window_s=window_s,
        inputs=i,
        slo=slo,
        verdicts=verdicts,
        uptime=uptime,
        error_rate=error_rate,
        uptime_budget_remaining=up_rem,
        uptime_burn_rate=up_burn,
        uptime_burn_rate_1h=up_burn_1h,
        error_budget_remaining=err_rem,
        error_burn_rate=err_burn,
    )


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # readers never see half a report


def write_report(
    report: SloReport,
    directory: Path,
    redact: Callable[[str], str] = lambda s: s,
    alerts: Sequence[Any] = (),
) -> list[Path]:
    """Writes ``slo-report.txt``, ``slo-report.json`` and ``slo-report.html`` (replaced
    atomically) and appends the JSON to ``slo-history.jsonl``; returns the paths. Every text
    passes through ``redact`` (the monitor's Target.redact) on its way out. The HTML page draws
    the history over the window and lists the open ``alerts``."""
    from validate_all_flows.monitor.slo_html import read_history, to_html

    directory.mkdir(parents=True, exist_ok=True)
    doc = redact_data(report.to_dict(), redact)
    txt, js, page, hist = (
        directory / "slo-report.txt",
        directory / "slo-report.json",
        directory / "slo-report.html",
        directory / "slo-history.jsonl",
    )
    _replace(txt, redact(report.to_text()))
    _replace(js, json.dumps(doc, indent=2) + "\n")
    with hist.open("a") as f:
        f.write(json.dumps(doc) + "\n")
    _replace(page, to_html(report, read_history(hist, report.since), alerts, redact))
    return [txt, js, page, hist]
