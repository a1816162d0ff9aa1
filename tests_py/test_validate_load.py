"""--load on the embedded stack: the built-in flow meets the SLOs without tripping the API's rate
limits, an impossible objective is NO-GO naming the check, and --load-flows overrides the flow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from validate_all_flows.cli import main
from validate_all_flows.embedded.stack import Stack

pytestmark = [pytest.mark.pg, pytest.mark.slow]

LOAD_IDS = ["load.p95", "load.error_rate", "load.availability"]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # The reference rate limits stay on (register 3/h): each built-in run registers one user.
    with Stack() as s:
        yield s


def _run(stack: Stack, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:
    rc = main(["--base-url", stack.base_url, "--only", "load", "--format", "json", *argv])
    out, err = capsys.readouterr()
    return rc, json.loads(out), err


def test_the_builtin_load_meets_the_slos(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    rc, doc, err = _run(stack, capsys, "--load", "2", "--load-duration", "2")
    by_id = {c["id"]: c for c in doc["checks"]}
    assert [c["id"] for c in doc["checks"]] == LOAD_IDS
    assert rc == 0, doc
    assert all(c["status"] == "pass" for c in doc["checks"]), doc
    assert by_id["load.p95"]["found"].startswith("p95 ")
    assert "(target <= 800 ms)" in by_id["load.p95"]["found"]
    assert "target <= 1.00%" in by_id["load.error_rate"]["found"]
    assert "target >= 99.50%" in by_id["load.availability"]["found"]
    evidence = by_id["load.p95"]["evidence"]
    assert evidence[0].startswith("load: 2 virtual user(s)")
    for step in ("identity", "failsafe_status", "explorer_events", "health"):
        # Every step answered 200 only: the reads never met a rate limit (no 429).
        line = next(e for e in evidence if e.startswith(f"step {step}:"))
        assert ", 0 failed," in line
        assert "statuses {200: " in line
    # Progress about once a second on stderr; the probe user's token never shows.
    ticks = [line for line in err.splitlines() if line.startswith("· load: ") and " s, " in line]
    assert len(ticks) >= 1, err
    assert "eyJ" not in err + json.dumps(doc)


def test_an_impossible_objective_is_no_go_naming_the_check(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, doc, _ = _run(
        stack, capsys, "--quiet", "--load", "1", "--load-duration", "1", "--p95-ms", "0.001"
    )
    by_id = {c["id"]: c for c in doc["checks"]}
    assert rc == 1
    assert doc["verdict"] == "NO-GO"
    assert doc["reason"] == "1 check(s) failed: load.p95"
    assert by_id["load.p95"]["status"] == "fail"
    assert "(target <= 0.001 ms)" in by_id["load.p95"]["found"]
    assert by_id["load.p95"]["fix"]
    assert by_id["load.error_rate"]["status"] == "pass"


def test_load_flows_override_with_an_open_model(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No {{probe_token}}: no probe user is registered. The assert cannot hold (health answers
    # 200), so every request fails the error rate but none counts against availability.
    spec = tmp_path / "health.yaml"
    spec.write_text(
        "name: health-only\n"
        "steps:\n"
        "  - name: health\n"
        "    request: {path: /api/health}\n"
        "    assert: {status: 201}\n"
    )
    rc, doc, _ = _run(
        stack,
        capsys,
        "--quiet",
        "--load",
        "2",
        "--load-rate",
        "10",
        "--load-duration",
        "1",
        "--load-flows",
        str(spec),
    )
    by_id = {c["id"]: c for c in doc["checks"]}
    assert rc == 1
    assert doc["reason"] == "1 check(s) failed: load.error_rate"
    assert by_id["load.error_rate"]["found"].startswith("error rate 100.00%")
    assert by_id["load.availability"]["found"].startswith("availability 100.00%")
    evidence = by_id["load.error_rate"]["evidence"]
    assert evidence[0].startswith("health-only: open model, 10 iterations/s, at most 2 in flight")
    assert any("failure: step health" in e and "status" in e for e in evidence)
