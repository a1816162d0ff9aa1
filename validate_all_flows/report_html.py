"""The verdict as one self-contained HTML page (``--format html``), and the page shell the monitor's
SLO report shares.

The page inlines its CSS and draws its charts as inline SVG (validate_all_flows.charts): it loads
no script, font or image, and its Content-Security-Policy forbids any fetch, so it opens the same
from a CI artifact, an e-mail attachment or a file share. It holds the verdict banner, every
check with status, finding, evidence and fix (failures first), the load checks' latency per step
(a histogram and a percentile curve with the p95 objective drawn) and the time each phase took.

Secrets: every text passes through the same ``redact`` as the text and JSON reports before it is
escaped, and the finished page through it once more.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from validate_all_flows.charts import Rule, Series, esc, hbars, histogram, line_chart
from validate_all_flows.check_model import CheckResult, Status

__all__ = ["CSS", "page", "to_html"]

#: Inline style of every report page (system fonts only: nothing is fetched).
CSS = """
:root{--go:#16794a;--nogo:#b3261e;--warn:#8a5a00;--ink:#1d232b;--mute:#5b6573;--line:#d5dae1}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);
background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:0 20px 40px}
.banner{color:#fff;padding:18px 20px;margin:0 0 16px}
.banner.go{background:var(--go)}.banner.nogo{background:var(--nogo)}.banner.warn{background:var(--warn)}
.banner h1{margin:0;font-size:30px;letter-spacing:.02em}.banner p{margin:4px 0 0}
.banner .meta{opacity:.85;font-size:12px}
h2{font-size:18px;margin:24px 0 8px}
.counts span{display:inline-block;margin-right:14px;font-weight:600}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line)}
th,td{text-align:left;vertical-align:top;padding:6px 8px;border-top:1px solid var(--line)}
#checks td:last-child{white-space:nowrap}
th{background:#eef1f4;font-size:12px;text-transform:uppercase;color:var(--mute)}
.st{font-weight:700;font-size:12px;white-space:nowrap}
.st.pass{color:var(--go)}.st.fail,.st.error{color:var(--nogo)}.st.skip{color:var(--mute)}
tr.fail td,tr.error td{background:#fff4f3}
code,.ev{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}
.ev{margin:4px 0 0;padding:0;list-style:none;color:#333;white-space:pre-wrap;word-break:break-word}
.fix{margin-top:4px;color:var(--warn)}
.charts{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid var(--line);padding:10px 12px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.cards .card{min-width:200px}.big{font-size:24px;font-weight:700}
.ok{color:var(--go)}.bad{color:var(--nogo)}
svg.chart{background:#fff;border:1px solid var(--line)}
svg .ctitle{font-weight:600;font-size:13px;fill:var(--ink)}
svg .tick{font-size:11px;fill:var(--mute)}svg .alabel{font-size:11px;fill:var(--ink)}
svg .grid{stroke:#eceff3}svg .axis{stroke:#8a94a3}
svg .bar{fill:#4a78b5}svg .hbars .bar{fill:#6b8fc9}
svg .objective{stroke:var(--nogo);stroke-width:1.5;stroke-dasharray:6 4}
svg .olabel{font-size:11px;fill:var(--nogo);font-weight:600}
svg .line{fill:none;stroke-width:2}svg .pt{stroke:#fff;stroke-width:1}
svg .s1{stroke:#2f6db5}svg circle.s1,svg rect.s1{fill:#2f6db5}
svg .s2{stroke:#c07a00}svg circle.s2,svg rect.s2{fill:#c07a00}
svg .s3{stroke:#7a4bb0}svg circle.s3,svg rect.s3{fill:#7a4bb0}
footer{color:var(--mute);font-size:12px;margin-top:24px}
"""

# No script, no fetch of any kind: inline styles and data: images only.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_ORDER = {Status.FAIL: 0, Status.ERROR: 1, Status.SKIP: 2, Status.PASS: 3}


def page(title: str, body: str) -> str:
    """A complete HTML document around ``body`` (already escaped HTML)."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>{body}</body></html>\n"
    )


def _check_rows(results: Sequence[CheckResult], r: Callable[[str], str]) -> str:
    rows = []
    for c in sorted(results, key=lambda c: _ORDER[c.status]):
        st = c.status.value
        ev = "".join(f"<li>{esc(r(e))}</li>" for e in c.evidence)
        detail = f'<ul class="ev">{ev}</ul>' if ev else ""
        if ev and c.status in (Status.PASS, Status.SKIP):
            detail = f"<details><summary>evidence</summary>{detail}</details>"
        fix = f'<div class="fix">fix: {esc(r(c.fix))}</div>' if c.fix else ""
        rows.append(
            f'<tr class="{st}" data-check="{esc(c.id)}"><td class="st {st}">{st.upper()}</td>'
            f"<td><code>{esc(c.id)}</code><br>{esc(r(c.title))}</td>"
            f"<td>{esc(r(c.found))}{detail}{fix}</td><td>{c.seconds:.2f} s</td></tr>"
        )
    head = "<tr><th>status</th><th>check</th><th>finding, evidence and fix</th><th>time</th></tr>"
    return f'<table id="checks">{head}{"".join(rows)}</table>'


def _nines(p: float) -> float:
    """Percentile to the 'nines' axis: 90 -> 1, 99 -> 2, 99.9 -> 3 (the tail gets the room)."""
    return -math.log10(1 - min(p, 99.9) / 100)


_NINES_TICKS = [
    (_nines(p), label)
    for p, label in ((0, "p0"), (50, "p50"), (90, "p90"), (99, "p99"), (99.9, "p99.9"))
]


def _load_section(latency: dict[str, Any], r: Callable[[str], str]) -> str:
    objective = float(latency["p95_objective_ms"])
    parts = []
    for st in latency["steps"]:
        name = r(str(st["name"]))
        h = st["histogram"]
        hist = histogram(
            h["edges_ms"],
            h["counts"],
            title=f"{name}: latency of {st['requests']} requests",
            x_label="latency (ms, log scale)",
            rules=[Rule(objective, f"p95 objective {objective:g} ms", axis="x")],
        )
        curve = line_chart(
            [Series(f"{name} latency", [(_nines(p), v) for p, v in st["percentiles"]])],
            title=f"{name}: latency by percentile",
            x_label="percentile",
            y_label="latency (ms, log scale)",
            x_ticks=_NINES_TICKS,
            log_y=True,
            rules=[Rule(objective, f"p95 objective {objective:g} ms")],
        )
        parts.append(
            f'<div class="step" data-step="{esc(name)}"><div class="charts">'
            f"{hist}{curve}</div></div>"
        )
    return '<section id="load"><h2>Load: latency per step</h2>' + "".join(parts) + "</section>"


def to_html(
    results: Sequence[CheckResult],
    verdict: Any,
    *,
    redact: Callable[[str], str],
    started_at: str,
    seconds: float,
    version: str,
    target_line: str = "",
    phases: Sequence[tuple[str, float]] = (),
) -> str:
    """The report page: ``verdict`` (report.GoNoGo), every result, the load charts of any result
    carrying ``data["latency"]`` and a bar per (phase, seconds). ``redact`` is the target's."""
    r = redact
    cls = "go" if verdict.go else "nogo"
    counts = {s: sum(c.status is s for c in results) for s in Status}
    body = [
        f'<header class="banner {cls}"><h1 id="verdict">{esc(verdict.label)}</h1>'
        f'<p id="reason">{esc(r(verdict.reason))}</p>'
        f'<p class="meta">validate_all_flows {esc(version)} · started {esc(started_at)} · '
        f"{seconds:.1f} s{' · ' + esc(r(target_line)) if target_line else ''}</p></header><main>",
        '<p class="counts">'
        f'<span class="ok">{counts[Status.PASS]} passed</span>'
        f'<span class="bad">{counts[Status.FAIL]} failed</span>'
        f'<span class="bad">{counts[Status.ERROR]} errors</span>'
        f"<span>{counts[Status.SKIP]} skipped</span></p>",
        "<h2>Checks (failures first)</h2>",
        _check_rows(results, r),
    ]
    for c in results:
        if "latency" in c.data:
            body.append(_load_section(c.data["latency"], r))
    if phases:
        body.append(
            '<section id="phases"><h2>Timings per phase</h2>'
            + hbars([(r(n), s) for n, s in phases], title="seconds per phase")
            + "</section>"
        )
    body.append("<footer>A self-contained report: nothing on this page is fetched.</footer></main>")
    return r(page(f"{verdict.label} — validate_all_flows", "".join(body)))
