"""SVG charts for the HTML reports, drawn here so the page needs no script, font or fetch.

Each chart is one inline ``<svg>`` with a ``<title>`` (what a screen reader says) and classes the
browser test counts: ``bar`` for a histogram's or a timing chart's bars, ``pt`` for each point of
a line, ``objective`` for an objective's line. Text passes through :func:`esc` (HTML-escaped).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["Rule", "Series", "esc", "hbars", "histogram", "line_chart", "log_ticks", "nice_ticks"]

_W, _H = 560, 250
_L, _R, _T, _B = 64, 18, 42, 44  # margins: axis labels left and below, title and key above


def esc(text: object) -> str:
    """``text`` escaped for HTML text and attribute values."""
    return html.escape(str(text), quote=True)


@dataclass(frozen=True)
class Series:
    """One line: (x, y) points in data units; ``css`` picks its colour (s1, s2, s3)."""

    name: str
    points: Sequence[tuple[float, float]]
    css: str = "s1"


@dataclass(frozen=True)
class Rule:
    """A reference line across the chart, such as an objective, at ``value`` on the y axis
    (``axis="x"``: a vertical line at that x)."""

    value: float
    label: str
    axis: str = "y"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, v = [], start
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    if ticks[-1] < hi:  # the top tick covers the data
        ticks.append(round(v, 12))
    return ticks


def _num(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 1:
        return f"{v:.3g}"
    return f"{v:.2g}"


def _ident(v: float) -> float:
    return v


class _Frame:
    """Maps data coordinates onto the plot area (either axis optionally logarithmic)."""

    def __init__(
        self, x0: float, x1: float, y0: float, y1: float, log_x: bool = False, log_y: bool = False
    ) -> None:
        self.fx: Callable[[float], float] = math.log10 if log_x else _ident
        self.fy: Callable[[float], float] = math.log10 if log_y else _ident
        self.x0, self.x1 = self.fx(x0), self.fx(x1)
        if self.x1 <= self.x0:
            self.x1 = self.x0 + 1
        self.y0, self.y1 = self.fy(y0), self.fy(y1)
        if self.y1 <= self.y0:
            self.y1 = self.y0 + 1

    def px(self, x: float) -> float:
        return _L + (self.fx(x) - self.x0) / (self.x1 - self.x0) * (_W - _L - _R)

    def py(self, y: float) -> float:
        return _H - _B - (self.fy(y) - self.y0) / (self.y1 - self.y0) * (_H - _T - _B)


def log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks covering [lo, hi] (both > 0): 1-2-5 per decade, or one per decade over a wide span;
    from the one at or below lo to the one at or above hi."""
    decades = range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
    mults = (1,) if hi / lo > 300 else (1, 2, 5)  # over 2.5 decades: one tick per decade
    steps = [10.0**d * m for d in decades for m in mults]
    below = [t for t in steps if t <= lo * (1 + 1e-9)]
    above = [t for t in steps if t >= hi * (1 - 1e-9)]
    start, end = (below[-1] if below else steps[0]), (above[0] if above else steps[-1])
    return [t for t in steps if start <= t <= end]


def _open(title: str, css: str) -> list[str]:
    return [
        f'<svg class="chart {css}" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" '
        f'role="img" aria-label="{esc(title)}"><title>{esc(title)}</title>',
        f'<text class="ctitle" x="{_L}" y="18">{esc(title)}</text>',
    ]


def _axes(
    f: _Frame,
    xticks: Sequence[tuple[float, str]],
    yticks: Sequence[float],
    x_label: str,
    y_label: str,
    y_fmt: Callable[[float], str],
) -> list[str]:
    out = []
    for y in yticks:
        py = f.py(y)
        out.append(f'<line class="grid" x1="{_L}" x2="{_W - _R}" y1="{py:.1f}" y2="{py:.1f}"/>')
        out.append(
            f'<text class="tick" x="{_L - 6}" y="{py + 4:.1f}" text-anchor="end">'
            f"{esc(y_fmt(y))}</text>"
        )
    for x, label in xticks:
        px = f.px(x)
        out.append(
            f'<line class="axis" x1="{px:.1f}" x2="{px:.1f}" y1="{_H - _B}" y2="{_H - _B + 4}"/>'
        )
        out.append(
            f'<text class="tick" x="{px:.1f}" y="{_H - _B + 16}" text-anchor="middle">'
            f"{esc(label)}</text>"
        )
    out.append(f'<line class="axis" x1="{_L}" x2="{_W - _R}" y1="{_H - _B}" y2="{_H - _B}"/>')
    out.append(f'<line class="axis" x1="{_L}" x2="{_L}" y1="{_T}" y2="{_H - _B}"/>')
    out.append(
        f'<text class="alabel" x="{(_L + _W - _R) / 2}" y="{_H - 6}" '
        f'text-anchor="middle">{esc(x_label)}</text>'
    )
    out.append(
        f'<text class="alabel" transform="translate(14 {(_T + _H - _B) / 2}) rotate(-90)" '
        f'text-anchor="middle">{esc(y_label)}</text>'
    )
    return out


def _rules(f: _Frame, rules: Sequence[Rule]) -> list[str]:
    out = []
    for r in rules:
        if r.axis == "x":
            px = f.px(r.value)
            out.append(
                f'<line class="objective" x1="{px:.1f}" x2="{px:.1f}" y1="{_T}" '
                f'y2="{_H - _B}"><title>{esc(r.label)}</title></line>'
            )
            anchor = "end" if px > (_L + _W) / 2 else "start"
            dx = -4 if anchor == "end" else 4
            out.append(
                f'<text class="olabel" x="{px + dx:.1f}" y="{_T + 12}" '
                f'text-anchor="{anchor}">{esc(r.label)}</text>'
            )
        else:
            py = f.py(r.value)
            out.append(
                f'<line class="objective" x1="{_L}" x2="{_W - _R}" y1="{py:.1f}" '
                f'y2="{py:.1f}"><title>{esc(r.label)}</title></line>'
            )
            out.append(
                f'<text class="olabel" x="{_W - _R - 4}" y="{py - 4:.1f}" '
                f'text-anchor="end">{esc(r.label)}</text>'
            )
    return out


def histogram(
    edges: Sequence[float],
    counts: Sequence[int],
    *,
    title: str,
    x_label: str,
    y_label: str = "requests",
    rules: Sequence[Rule] = (),
) -> str:
    """Bars of ``counts`` between consecutive ``edges`` (positive, increasing) on a log x axis;
    ``rules`` with ``axis="x"`` mark objectives (the axis stretches to show them)."""
    xs = [*edges, *(r.value for r in rules if r.axis == "x" and r.value > 0)]
    lo, hi = min(xs), max(xs)
    top = max([*counts, 1])
    yticks = [t for t in nice_ticks(0, top * 1.05) if t == int(t)]
    f = _Frame(lo / 1.05, hi * 1.05, 0, max(yticks), log_x=True)
    decades = range(math.floor(math.log10(lo / 1.05)), math.ceil(math.log10(hi * 1.05)) + 1)
    xticks = [
        (10.0**d * m, _num(10.0**d * m))
        for d in decades
        for m in (1, 2, 5)
        if lo / 1.05 <= 10.0**d * m <= hi * 1.05
    ]
    out = _open(title, "histogram")
    out += _axes(
        f,
        xticks,
        yticks,
        x_label,
        y_label,
        lambda v: f"{v:.0f}",
    )
    for a, b, n in zip(edges, edges[1:], counts, strict=False):
        x0, x1, y = f.px(a), f.px(b), f.py(n)
        out.append(
            f'<rect class="bar" x="{x0 + 0.5:.1f}" y="{y:.1f}" '
            f'width="{max(x1 - x0 - 1, 0.5):.1f}" height="{_H - _B - y:.1f}">'
            f"<title>{esc(f'{_num(a)} to {_num(b)} ms: {n}')}</title></rect>"
        )
    out += _rules(f, rules)
    out.append("</svg>")
    return "".join(out)


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_ticks: Sequence[tuple[float, str]] | None = None,
    y_fmt: Callable[[float], str] = _num,
    rules: Sequence[Rule] = (),
    y_floor: float | None = 0.0,
    log_y: bool = False,
) -> str:
    """Lines through each series' points (drawn in x order) with a ``pt`` mark per point;
    ``rules`` draw objectives; ``y_floor`` keeps that value inside the y range. ``log_y``: a
    logarithmic y axis (values at or under 0 are drawn at its floor), for latencies that span
    decades."""
    if log_y:
        positive = [y for s in series for _, y in s.points if y > 0]
        floor = min(positive, default=1.0) / 2
        series = [Series(s.name, [(x, max(y, floor)) for x, y in s.points], s.css) for s in series]
    pts = [p for s in series for p in s.points]
    ys = [y for _, y in pts] + [r.value for r in rules if r.axis == "y"]
    xs = [x for x, _ in pts] + [r.value for r in rules if r.axis == "x"]
    if y_floor is not None and not log_y:
        ys.append(y_floor)
    if not xs:
        xs = [0.0, 1.0]
    y0, y1 = (min(ys), max(ys)) if ys else (0.0, 1.0)
    if log_y:
        yticks = log_ticks(y0, y1)
    else:
        pad = (y1 - y0) * 0.1 or 1.0
        yticks = nice_ticks(y0, y1 + pad)
    f = _Frame(min(xs), max(xs), min(yticks), max(yticks), log_y=log_y)
    if x_ticks is None:
        x_ticks = [(x, _num(x)) for x in nice_ticks(min(xs), max(xs))]
    out = _open(title, "line")
    out += _axes(
        f,
        [t for t in x_ticks if f.x0 <= t[0] <= f.x1 or len(set(xs)) == 1],
        yticks,
        x_label,
        y_label,
        y_fmt,
    )
    out += _rules(f, rules)
    for s in series:
        ordered = sorted(s.points)
        path = " ".join(f"{f.px(x):.1f},{f.py(y):.1f}" for x, y in ordered)
        out.append(f'<polyline class="line {s.css}" points="{path}"/>')
        for x, y in ordered:
            out.append(
                f'<circle class="pt {s.css}" cx="{f.px(x):.1f}" cy="{f.py(y):.1f}" r="3">'
                f"<title>{esc(f'{s.name}: {y_fmt(y)}')}</title></circle>"
            )
    if len(series) > 1:
        for i, s in enumerate(series):
            x = _L + 8 + i * 150
            out.append(
                f'<rect class="key {s.css}" x="{x}" y="{_T - 14}" width="10" height="4"/>'
                f'<text class="tick" x="{x + 14}" y="{_T - 9}">{esc(s.name)}</text>'
            )
    out.append("</svg>")
    return "".join(out)


def hbars(items: Sequence[tuple[str, float]], *, title: str, unit: str = "s") -> str:
    """Horizontal bars, one per (label, value): how long each phase took."""
    row, label_w = 22, 170
    height = _T + row * max(len(items), 1) + 10
    top = max([v for _, v in items] + [1e-9])
    width = _W - label_w - 70
    out = [
        f'<svg class="chart hbars" viewBox="0 0 {_W} {height}" width="{_W}" height="{height}" '
        f'role="img" aria-label="{esc(title)}"><title>{esc(title)}</title>',
        f'<text class="ctitle" x="4" y="18">{esc(title)}</text>',
    ]
    for i, (label, v) in enumerate(items):
        y = _T + i * row
        w = max(v / top * width, 1.0)
        out.append(
            f'<text class="tick" x="{label_w - 6}" y="{y + 14}" text-anchor="end">'
            f"{esc(label)}</text>"
        )
        out.append(
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}">'
            f"<title>{esc(f'{label}: {v:.2f} {unit}')}</title></rect>"
        )
        out.append(
            f'<text class="tick" x="{label_w + w + 6:.1f}" y="{y + 14}">'
            f"{esc(f'{v:.2f} {unit}')}</text>"
        )
    out.append("</svg>")
    return "".join(out)
