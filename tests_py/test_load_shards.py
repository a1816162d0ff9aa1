"""Sharded load: merging shard reports is lossless (merged percentiles equal those of one
histogram fed every sample), the merge refuses incomplete or mixed parts, and four shard
processes against a loopback service merge into one verdict in every format."""

from __future__ import annotations

import base64
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fix_http_server import MisbehavingServer

from blocktrust_native.errors import ConfigError
from blocktrust_native.flows import REPORT_SCHEMA_VERSION, Histogram
from blocktrust_native.flows.merge import merge_reports, summary
from validate_all_flows.checks.load import HISTOGRAM_BINS, parse_shard, shard_share
from validate_all_flows.cli import main

ROOT = Path(__file__).resolve().parents[1]


def part(samples: list[int], shard: tuple[int, int] | None = None) -> dict[str, Any]:
    """A shard's report as Report.to_dict() writes it, holding ``samples`` (us)."""
    h = Histogram()
    for s in samples:
        h.record_us(s)
    lat = summary(h)
    doc = {
        "schema": REPORT_SCHEMA_VERSION,
        "flow": "probe",
        "interrupted": False,
        "model": "closed",
        "cancelled": False,
        "elapsed_s": 2.0,
        "vus": 1,
        "rate": 0,
        "threads": 1,
        "iterations": len(samples),
        "failed_iterations": 0,
        "requests": len(samples),
        "failed_requests": 0,
        "flow_latency": lat,
        "steps": [
            {
                "name": "get",
                "requests": len(samples),
                "attempts": len(samples),
                "failures": 0,
                "status_counts": {"200": len(samples)},
                "errors": {},
                "asserts": [{"label": "status 200", "failed": 0}],
                "latency": lat,
            }
        ],
        "failures": [],
    }
    if shard is not None:
        doc["shard"] = {"index": shard[0], "count": shard[1]}
    return doc


def test_merged_percentiles_equal_one_histogram_fed_every_sample() -> None:
    rng = random.Random(18)
    # Latencies spanning four decades, with a heavy tail, as recorded samples.
    samples = [int(rng.lognormvariate(9, 1.3)) + 1 for _ in range(40_000)]
    samples += [rng.randint(2_000_000, 9_000_000) for _ in range(200)]
    rng.shuffle(samples)
    whole = Histogram()
    for s in samples:
        whole.record_us(s)
    # Uneven shards, as machines of different speed would give.
    cuts = sorted(rng.sample(range(1, len(samples)), 3))
    pieces = [samples[a:b] for a, b in zip([0, *cuts], [*cuts, len(samples)], strict=True)]
    merged = merge_reports([part(p) for p in pieces])
    got = merged.step("get").histogram()
    assert got.count == whole.count == len(samples)
    for p in (50, 90, 95, 99, 99.9, 100):
        assert got.percentile_us(p) == whole.percentile_us(p), p
    assert got.max_us == whole.max_us
    assert got.min_us == whole.min_us
    assert merged.flow_histogram().percentile_us(99) == whole.percentile_us(99)
    lat = merged.step("get").latency
    assert lat["p95_ms"] == whole.percentile_us(95) / 1000
    assert merged.requests == len(samples)
    # A naive merge (averaging the parts' p95) would not give the same answer.
    naive = sum(Histogram.from_bytes(base64.b64decode(part(p)["flow_latency"]["histogram"]))
                .percentile_us(95) for p in pieces) / 4  # fmt: skip
    assert naive != whole.percentile_us(95)


def test_merge_refuses_parts_of_other_flows_or_steps() -> None:
    a, b = part([100, 200]), part([300])
    b["flow"] = "other"
    with pytest.raises(ConfigError, match="flow 'other'"):
        merge_reports([a, b])
    c = part([1])
    c["schema"] = 99
    with pytest.raises(ConfigError, match="schema"):
        merge_reports([a, c])
    d = part([1])
    d["steps"][0]["latency"]["histogram"] = "bm90IGEgaGlzdG9ncmFt"
    with pytest.raises(ConfigError, match="histogram"):
        merge_reports([a, d])


def test_shard_arithmetic_and_errors() -> None:
    assert [shard_share(10, k, 4) for k in range(4)] == [3, 3, 2, 2]
    assert sum(shard_share(7, k, 3) for k in range(3)) == 7
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "1", "a/b", "-1/3", "0/0"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)


def _write(tmp: Path, docs: list[dict[str, Any]]) -> list[str]:
    paths = []
    for i, d in enumerate(docs):
        p = tmp / f"part-{i}.json"
        p.write_text(json.dumps(d))
        paths.append(str(p))
    return paths


def test_merge_cli_needs_every_shard_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _write(tmp_path, [part([100], (0, 3)), part([200], (2, 3))])
    assert main(["merge", *paths]) == 2
    assert "missing shard(s) 1/3" in capsys.readouterr().err
    paths = _write(tmp_path, [part([100], (0, 2)), part([200], (0, 2))])
    assert main(["merge", *paths]) == 2
    assert "shard 0/2 given twice" in capsys.readouterr().err
    assert main(["merge", str(tmp_path / "nope.json")]) == 2
    assert "nope.json" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["merge", str(tmp_path / "bad.json")]) == 2
    assert "not JSON" in capsys.readouterr().err


def test_merge_cli_judges_the_whole_run_in_every_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each shard alone meets p95 <= 5 ms; together the slow shard's tail breaks it.
    fast = [1000] * 96
    slow = [1000] * 90 + [50_000] * 10
    paths = _write(tmp_path, [part(fast, (0, 2)), part(slow, (1, 2))])
    assert main(["merge", *paths, "--p95-ms", "5", "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    by_id = {c["id"]: c for c in doc["checks"]}
    assert doc["verdict"] == "NO-GO"
    assert by_id["load.p95"]["status"] == "fail"
    assert "over 196 requests" in by_id["load.p95"]["found"]
    assert main(["merge", *paths, "--p95-ms", "60"]) == 0
    assert "GO" in capsys.readouterr().out
    assert main(["merge", *paths, "--p95-ms", "5", "--format", "junit"]) == 1
    assert "<failure" in capsys.readouterr().out
    # The HTML report draws the merged histogram: every request in its bin, 186 fast, 10 slow.
    assert main(["merge", *paths, "--p95-ms", "5", "--format", "html"]) == 1
    page = capsys.readouterr().out
    assert '<h1 id="verdict">NO-GO</h1>' in page
    bars = [int(n) for n in re.findall(r'<rect class="bar"[^>]*><title>[^<]*: (\d+)</title>', page)]
    assert len(bars) == HISTOGRAM_BINS
    assert (bars[0], bars[-1], sum(bars)) == (186, 10, 196)
    assert "p95 objective 5 ms" in page
    merged_file = tmp_path / "merged.json"
    assert main(["merge", *paths, "--merged-output", str(merged_file), "--p95-ms", "60"]) == 0
    merged = json.loads(merged_file.read_text())
    assert merged["requests"] == 196
    # The flow runner's own merged report merges again (no shard field).
    assert main(["merge", str(merged_file), "--p95-ms", "60"]) == 0


def test_load_output_and_shard_need_load(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--base-url", "http://127.0.0.1:9", "--shard", "0/2"]) == 2
    assert "--shard given without --load" in capsys.readouterr().err
    argv = ["--base-url", "http://127.0.0.1:9", "--load", "1", "--shard", "1/2"]
    assert main(argv) == 2
    assert "cannot be shared by 2 shards" in capsys.readouterr().err


@pytest.mark.slow
def test_four_shard_processes_against_a_loopback_service_merge_into_one_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "probe.yaml"
    spec.write_text(
        "name: probe\nsteps:\n  - name: json\n    request: {path: /json}\n"
        "    assert: {status: 200}\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "python"), str(ROOT)]))
    with MisbehavingServer() as srv:

        def shard(k: int) -> subprocess.Popen[str]:
            out = str(tmp_path / f"part-{k}.json")
            argv = ["--base-url", srv.url, "--only", "load", "--quiet", "--format", "json",
                    "--load", "8", "--load-duration", "1", "--load-flows", str(spec),
                    "--shard", f"{k}/4", "--load-output", out]  # fmt: skip
            return subprocess.Popen(
                [sys.executable, "-m", "validate_all_flows", *argv],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )

        procs = [shard(k) for k in range(4)]
        outs = [p.communicate(timeout=120) for p in procs]
        hits = srv.hits.get("/json", 0)
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, (out, err)
    parts = [json.loads((tmp_path / f"part-{k}.json").read_text()) for k in range(4)]
    assert [d["shard"] for d in parts] == [{"index": k, "count": 4} for k in range(4)]
    assert [d["vus"] for d in parts] == [2, 2, 2, 2]  # 8 VUs shared by 4 shards
    rc = main(["merge", *(str(tmp_path / f"part-{k}.json") for k in range(4)),
               "--format", "json", "--merged-output", str(tmp_path / "all.json")])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0, doc
    assert doc["verdict"] == "GO"
    merged = json.loads((tmp_path / "all.json").read_text())
    total = sum(d["requests"] for d in parts)
    assert merged["requests"] == total == hits  # every request the server saw, once
    whole = Histogram()
    for d in parts:
        whole.merge(Histogram.from_bytes(base64.b64decode(d["steps"][0]["latency"]["histogram"])))
    assert merged["steps"][0]["latency"]["p95_ms"] == whole.percentile_us(95) / 1000
