"""Merging the reports of shards of one load run into the report of the whole run.

    parts = [json.loads(Path(p).read_text()) for p in paths]    # Report.to_dict() of each shard
    report = merge_reports(parts)                                # one Report, as if one process
    Slo(p95_ms=800).evaluate(report)

Counters add up; latency histograms merge bucket by bucket, so every percentile of the merged
report is the one a single histogram fed every sample would give (the histograms are lossless at
their 3 significant digits, and merging loses nothing more). Elapsed time is the longest shard's
(shards run side by side). Failures are kept in time order up to ``max_failures``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from blocktrust_native._native.flows import Histogram
from blocktrust_native.errors import ConfigError, HistogramFormatError
from blocktrust_native.flows.report import REPORT_SCHEMA_VERSION, Report

__all__ = ["merge_reports", "report_from_dict", "summary"]

# Fields Report.to_dict() derives (recomputed after a merge) or adds around the run's data.
_DERIVED = ("schema", "flow", "interrupted", "requests_per_s", "error_rate", "availability", "slo")


def summary(h: Histogram) -> dict[str, Any]:
    """The latency summary of a histogram, in the shape the flow runner reports."""

    def ms(us: int) -> float:
        return us / 1000.0

    return {
        "count": h.count,
        "min_ms": ms(h.min_us),
        "mean_ms": h.mean_us / 1000.0,
        "p50_ms": ms(h.percentile_us(50)),
        "p90_ms": ms(h.percentile_us(90)),
        "p95_ms": ms(h.percentile_us(95)),
        "p99_ms": ms(h.percentile_us(99)),
        "p999_ms": ms(h.percentile_us(99.9)),
        "max_ms": ms(h.max_us),
        "histogram": base64.b64encode(h.to_bytes()).decode(),
    }


def _histogram(latency: Mapping[str, Any], where: str) -> Histogram:
    try:
        return Histogram.from_bytes(base64.b64decode(latency["histogram"], validate=True))
    except (KeyError, TypeError, ValueError, HistogramFormatError) as exc:
        raise ConfigError(f"{where}: no valid latency histogram ({exc})") from None


def report_from_dict(d: Mapping[str, Any], where: str = "report") -> Report:
    """A Report from ``Report.to_dict()`` output (e.g. a shard's JSON file); ConfigError names
    what is missing or from another schema version."""
    if not isinstance(d, Mapping):
        raise ConfigError(f"{where}: not a flow report (expected a JSON object)")
    if d.get("schema") != REPORT_SCHEMA_VERSION:
        raise ConfigError(
            f"{where}: report schema {d.get('schema')!r}, expected {REPORT_SCHEMA_VERSION}"
        )
    data = {k: v for k, v in d.items() if k not in _DERIVED}
    try:
        data["flow"] = data.pop("flow_latency")
        report = Report(data, flow_name=str(d["flow"]), interrupted=bool(d.get("interrupted")))
        _histogram(data["flow"], f"{where}: flow_latency")
        for s in report.steps:
            _histogram(s.latency, f"{where}: step {s.name!r}")
        (report.iterations, report.requests, report.failed_requests, report.elapsed_s)  # noqa: B018
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: not a complete flow report (missing or bad {exc})") from None
    return report


def merge_reports(parts: Sequence[Report | Mapping[str, Any]], max_failures: int = 100) -> Report:
    """One Report for shards of the same flow (Reports or their ``to_dict()``); ConfigError when
    the parts are not of one flow with the same steps."""
    reports = [
        p if isinstance(p, Report) else report_from_dict(p, f"part {i + 1}")
        for i, p in enumerate(parts)
    ]
    if not reports:
        raise ConfigError("nothing to merge: no reports")
    first = reports[0]
    names = [s.name for s in first.steps]
    for i, r in enumerate(reports[1:], start=2):
        if r.flow_name != first.flow_name:
            raise ConfigError(f"part {i} is flow {r.flow_name!r}, part 1 is {first.flow_name!r}")
        if [s.name for s in r.steps] != names:
            raise ConfigError(f"part {i} has steps {[s.name for s in r.steps]}, part 1 {names}")
        if r.model != first.model:
            raise ConfigError(f"part {i} ran the {r.model} model, part 1 the {first.model} one")
    flow_h = Histogram()
    for r in reports:
        flow_h.merge(r.flow_histogram())
    steps = []
    for idx, name in enumerate(names):
        h = Histogram()
        requests = attempts = failures = 0
        statuses: dict[str, int] = {}
        errors: dict[str, int] = {}
        asserts: dict[str, int] = {}
        for r in reports:
            s = r.steps[idx]
            h.merge(s.histogram())
            requests += s.requests
            attempts += s.attempts
            failures += s.failures
            for code, n in s.status_counts.items():
                statuses[str(code)] = statuses.get(str(code), 0) + n
            for k, n in s.errors.items():
                errors[k] = errors.get(k, 0) + n
            for a in s.asserts:
                asserts[a["label"]] = asserts.get(a["label"], 0) + int(a["failed"])
        steps.append(
            {
                "name": name,
                "requests": requests,
                "attempts": attempts,
                "failures": failures,
                "status_counts": statuses,
                "errors": errors,
                "asserts": [{"label": k, "failed": n} for k, n in asserts.items()],
                "latency": summary(h),
            }
        )
    failure_rows = [f.__dict__ for r in reports for f in r.failures][:max_failures]
    raw = [r._d for r in reports]
    data = {
        "model": first.model,
        "cancelled": any(r.cancelled for r in reports),
        "elapsed_s": max(r.elapsed_s for r in reports),
        "vus": sum(int(d.get("vus", 0)) for d in raw),
        "rate": sum(float(d.get("rate", 0) or 0) for d in raw),
        "threads": sum(int(d.get("threads", 0)) for d in raw),
        "shards": len(reports),
        "iterations": sum(r.iterations for r in reports),
        "failed_iterations": sum(r.failed_iterations for r in reports),
        "requests": sum(r.requests for r in reports),
        "failed_requests": sum(r.failed_requests for r in reports),
        "flow": summary(flow_h),
        "steps": steps,
        "failures": failure_rows,
    }
    return Report(data, flow_name=first.flow_name, interrupted=any(r.interrupted for r in reports))
