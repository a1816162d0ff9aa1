"""The monitor's SLO report as one self-contained page (``slo-report.html``, written beside the
text and JSON): uptime, p95 latency and error rate over the window against their objectives, the
error budget's burn-down and the burn rate drawn from ``slo-history.jsonl``, and the open alerts.

Same page shell and charts as the validator's HTML report (report_html, charts): no script, no
fetch. Every text passes through the monitor target's ``redact`` before it is escaped.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from validate_all_flows.charts import Rule, Series, esc, line_chart, nice_ticks
from validate_all_flows.report_html import page

__all__ = ["MAX_POINTS", "read_history", "to_html"]

#: At most this many history entries are drawn (evenly thinned, the newest always kept).
MAX_POINTS = 240


def read_history(path: Path, since: dt.datetime) -> list[dict[str, Any]]:
    """The entries of ``slo-history.jsonl`` generated at or after ``since`` (unreadable lines,
    such as a line cut short by a crash, are left out), thinned to MAX_POINTS."""
    out = []
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    since = since.replace(microsecond=0)  # the history's times are whole seconds
    for line in lines:
        try:
            doc = json.loads(line)
            at = dt.datetime.fromisoformat(doc["generated_at"])
            if at.tzinfo is None:
                at = at.replace(tzinfo=dt.timezone.utc)
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        if at >= since:
            out.append(doc)
    if len(out) > MAX_POINTS:
        step = len(out) / MAX_POINTS
        out = [out[int(i * step)] for i in range(MAX_POINTS - 1)] + [out[-1]]
    return out


def _ts(doc: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(doc["generated_at"]).timestamp()


def _series(
    history: Sequence[dict[str, Any]], name: str, css: str, pick: Callable[[dict[str, Any]], Any]
) -> Series:
    pts = [(_ts(d), float(v)) for d in history if (v := pick(d)) is not None]
    return Series(name, pts, css)


def _time_ticks(history: Sequence[dict[str, Any]]) -> list[tuple[float, str]]:
    if not history:
        return []
    lo, hi = _ts(history[0]), _ts(history[-1])
    fmt = "%H:%M:%S" if hi - lo < 600 else "%m-%d %H:%M"
    utc = dt.timezone.utc
    ticks = nice_ticks(lo, hi, 4) if hi > lo else [lo]
    return [(t, dt.datetime.fromtimestamp(t, utc).strftime(fmt)) for t in ticks]


def _card(name: str, value: str, objective: str, met: bool | None) -> str:
    cls = "" if met is None else ("ok" if met else "bad")
    word = "no data" if met is None else ("met" if met else "MISSED")
    return (
        f'<div class="card" data-objective="{esc(name)}"><div>{esc(name)}</div>'
        f'<div class="big {cls}">{esc(value)}</div>'
        f'<div>objective {esc(objective)} · <b class="{cls}">{word}</b></div></div>'
    )


def _pct(x: float | None) -> str:
    return "no data" if x is None else f"{x * 100:.3f} %"


def to_html(
    report: Any,
    history: Sequence[dict[str, Any]],
    alerts: Sequence[Any],
    redact: Callable[[str], str] = lambda s: s,
) -> str:
    """The page for ``report`` (sloreport.SloReport), ``history`` (read_history) and the open
    ``alerts`` (monitor.alerts.Alert)."""
    r, i, slo = redact, report.inputs, report.slo
    verdict = {v.objective: v.passed for v in report.verdicts}
    utc = dt.timezone.utc
    since, end = report.since.astimezone(utc), i.end.astimezone(utc)
    met = "SLO MET" if report.passed else "SLO MISSED"
    lag = "no data" if i.max_lag_s is None else f"{i.max_lag_s:.0f} s"
    p95 = "no data" if i.p95_ms is None else f"{i.p95_ms:.1f} ms"
    body = [
        f'<header class="banner {"go" if report.passed else "nogo"}"><h1 id="verdict">{met}</h1>'
        f'<p id="reason">{esc(r(report.instance))}: window {since:%Y-%m-%d %H:%M} .. '
        f"{end:%Y-%m-%d %H:%M} UTC ({(end - since).total_seconds() / 3600:.1f} h of "
        f"{report.window_s / 86400:g} d)</p>"
        f'<p class="meta">generated {report.generated_at.astimezone(utc):%Y-%m-%d %H:%M:%S} UTC'
        f" · {len(alerts)} alert(s) open</p></header><main>",
        '<h2>Objectives over the window</h2><div class="cards" id="objectives">',
        _card(
            "uptime", _pct(report.uptime), f">= {slo.availability * 100:g} %", verdict.get("uptime")
        ),
        _card("p95 latency", p95, f"<= {slo.p95_ms:g} ms", verdict.get("p95 latency")),
        _card(
            "error rate",
            _pct(report.error_rate),
            f"<= {slo.error_rate * 100:g} %",
            verdict.get("error rate"),
        ),
        _card("listener lag", lag, f"<= {slo.listener_lag_s:g} s", verdict.get("listener lag")),
        "</div>",
        f"<p>{i.up_cycles} of {i.cycles} cycles up, {i.probe_errors} of {i.probes} probes "
        "failed.</p>",
    ]
    ticks = _time_ticks(history)
    budget = [
        _series(history, "availability budget", "s1", lambda d: d["uptime"]["budget_remaining"]),
        _series(history, "error-rate budget", "s2", lambda d: d["errors"]["budget_remaining"]),
    ]
    burn = [
        _series(history, "availability (window)", "s1", lambda d: d["uptime"]["burn_rate"]),
        _series(history, "availability (1 h)", "s3", lambda d: d["uptime"]["burn_rate_1h"]),
        _series(history, "error rate (window)", "s2", lambda d: d["errors"]["burn_rate"]),
    ]
    body.append('<h2>Error budget</h2><div class="charts" id="budget">')
    body.append(
        line_chart(
            [s for s in budget if s.points],
            title="error budget remaining (1 untouched, 0 spent)",
            x_label="report time (UTC)",
            y_label="budget remaining",
            x_ticks=ticks,
            rules=[Rule(0.0, "budget spent")],
            y_fmt=lambda v: f"{v:.2g}",
        )
    )
    body.append(
        line_chart(
            [s for s in burn if s.points],
            title="burn rate (1 spends the budget over the window)",
            x_label="report time (UTC)",
            y_label="burn rate",
            x_ticks=ticks,
            rules=[Rule(1.0, "burn rate 1")],
            y_fmt=lambda v: f"{v:.3g}",
        )
    )
    body.append("</div>")
    rows = "".join(
        f'<tr class="fail" data-alert="{esc(a.check_id)}"><td class="st fail">'
        f"{esc(a.severity.upper())}</td><td><code>{esc(a.check_id)}</code></td>"
        f"<td>{a.opened_at.astimezone(utc):%Y-%m-%d %H:%M:%S} UTC</td>"
        f"<td>{esc(r(a.message))}</td></tr>"
        for a in alerts
    )
    body.append(
        '<h2>Open alerts</h2><table id="alerts"><tr><th>severity</th><th>check</th>'
        f"<th>open since</th><th>message</th></tr>{rows or '<tr><td colspan=4>none</td></tr>'}"
        "</table>"
    )
    body.append("<footer>A self-contained report: nothing on this page is fetched.</footer></main>")
    return r(page(f"{met} — {report.instance}", "".join(body)))
