"""``python -m validate_all_flows merge part*.json``: one verdict for a load run split in shards.

Each shard ran ``--load VUS --shard K/N --load-output part-K.json`` (on any machine); this reads
the parts, checks that they are the N shards of one run (each K once, the same flow), merges their
histograms bucket by bucket (lossless: the merged percentiles are those of one histogram fed every
sample) and judges the merged run with the same load checks and objectives as a single run:
GO / NO-GO, text, JSON or JUnit, exit 0 / 1, and 2 when it cannot run (a missing or bad part).
Reports written by the flow runner itself (``Report.to_json()``, no shard field) merge too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "merge_parts"]


class _CannotRun(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m validate_all_flows merge",
        description="Merge the --load-output parts of a sharded load run into one verdict.",
    )
    p.add_argument("parts", nargs="+", metavar="PART", help="JSON reports of the shards")
    o = p.add_argument_group("objectives (as for the validator)")
    o.add_argument("--p95-ms", type=float, default=800.0, help="latency objective (800)")
    o.add_argument("--error-rate", type=float, default=0.01, help="error-rate objective (0.01)")
    o.add_argument("--availability", type=float, default=0.995, help="availability (0.995)")
    r = p.add_argument_group("output")
    r.add_argument("--format", choices=["text", "json", "junit", "html"], default="text")
    r.add_argument("--output", help="write the report here instead of stdout")
    r.add_argument("--merged-output", metavar="FILE", help="also write the merged flow report")
    return p


def _read(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise _CannotRun(f"{path}: {exc.strerror}") from None
    except ValueError as exc:
        raise _CannotRun(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise _CannotRun(f"{path}: not a flow report (expected a JSON object)")
    return data


def merge_parts(paths: Sequence[str]) -> tuple[Any, list[str]]:
    """The merged Report of the part files and evidence lines; _CannotRun names a bad part."""
    from blocktrust_native.errors import ConfigError
    from blocktrust_native.flows.merge import merge_reports, report_from_dict

    docs = [(p, _read(p)) for p in paths]
    shards = [(p, d.get("shard")) for p, d in docs]
    sharded = [s for _, s in shards if s]
    if sharded:
        if len(sharded) != len(docs):
            plain = [p for p, s in shards if not s]
            raise _CannotRun(f"{plain[0]} has no shard field; the other parts do")
        counts = {s.get("count") for s in sharded}
        if len(counts) != 1:
            raise _CannotRun(f"the parts come from runs of different shard counts: {counts}")
        (n,) = counts
        seen: dict[int, str] = {}
        for p, s in shards:
            k = s.get("index") if isinstance(s, dict) else None
            if not isinstance(k, int) or not isinstance(n, int) or not 0 <= k < n:
                raise _CannotRun(f"{p}: bad shard field {s!r}")
            if k in seen:
                raise _CannotRun(f"shard {k}/{n} given twice: {seen[k]} and {p}")
            seen[k] = p
        missing = [k for k in range(n) if k not in seen]
        if missing:
            raise _CannotRun(
                f"missing shard(s) {', '.join(f'{k}/{n}' for k in missing)}: merge all {n} parts "
                "(a verdict on part of the load would be too kind)"
            )
    try:
        reports = [report_from_dict(d, p) for p, d in docs]
        merged = merge_reports(reports)
    except ConfigError as exc:
        raise _CannotRun(str(exc)) from None
    evidence = [
        f"{merged.flow_name}: {len(reports)} part(s), {merged.elapsed_s:.1f} s (longest part), "
        f"{merged.iterations} iterations ({merged.failed_iterations} failed), "
        f"{merged.requests} requests, {merged.requests_per_s:.1f} requests/s together",
        f"flow p95 (whole iteration): {merged.flow_latency['p95_ms']:.1f} ms",
    ]
    for p, r in zip(paths, reports, strict=True):
        evidence.append(
            f"part {p}: {r.requests} requests, {r.failed_requests} failed, "
            f"p95 {r.flow_latency['p95_ms']:.1f} ms per iteration"
        )
    for st in merged.steps:
        codes = ", ".join(f"{c}: {n}" for c, n in sorted(st.status_counts.items()))
        evidence.append(
            f"step {st.name}: {st.requests} requests, {st.failures} failed, "
            f"p95 {st.percentile_ms(95):.1f} ms, statuses {{{codes}}}"
        )
    return merged, evidence


def main(argv: Sequence[str]) -> int:
    """Runs ``merge``; returns the exit code (0 GO, 1 NO-GO, 2 cannot run)."""
    args = _parser().parse_args(list(argv))
    try:
        from validate_all_flows.check_model import CheckResult, Status
        from validate_all_flows.checks.load import judge_load
        from validate_all_flows.report import decide, to_json, to_junit, to_text
        from validate_all_flows.target import DeploymentSlo, Target
    except ImportError as exc:
        print(f"cannot run: the native library does not load: {exc}", file=sys.stderr)
        return 2
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    t0 = time.monotonic()
    try:
        for name in ("p95_ms", "error_rate", "availability"):
            value = getattr(args, name)
            if not value >= 0 or value == float("inf"):
                raise _CannotRun(f"--{name.replace('_', '-')}: must be a number >= 0")
        merged, evidence = merge_parts(args.parts)
        slo = DeploymentSlo(args.p95_ms, args.error_rate, args.availability)
        results: list[CheckResult] = judge_load(merged, slo, evidence)
        if merged.interrupted or merged.cancelled:
            results = [
                CheckResult(r.id, r.title, Status.ERROR, "a part was interrupted", r.evidence)
                for r in results
            ]
        if args.merged_output:
            try:
                Path(args.merged_output).write_text(merged.to_json() + "\n")
            except OSError as exc:
                raise _CannotRun(f"--merged-output {args.merged_output}: {exc.strerror}") from None
    except _CannotRun as exc:
        print(f"cannot run: {exc}", file=sys.stderr)
        return 2
    seconds = time.monotonic() - t0
    verdict = decide(results)
    target = Target()
    if args.format == "json":
        from blocktrust_native import __version__

        text = to_json(results, verdict, target, started, seconds, __version__)
    elif args.format == "junit":
        text = to_junit(results, verdict, seconds)
    elif args.format == "html":
        from blocktrust_native import __version__
        from validate_all_flows.report_html import to_html

        text = to_html(
            results,
            verdict,
            redact=target.redact,
            started_at=started,
            seconds=seconds,
            version=__version__,
            target_line=f"{len(args.parts)} load part(s) merged",
        )
    else:
        text = to_text(results, verdict, seconds)
    if args.output:
        try:
            Path(args.output).write_text(text)
        except OSError as exc:
            print(f"cannot run: --output {args.output}: {exc.strerror}", file=sys.stderr)
            return 2
        print(f"{verdict.label}: {verdict.reason} (report in {args.output})")
    else:
        sys.stdout.write(text)
    return 0 if verdict.go else 1
