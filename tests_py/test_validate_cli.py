"""The operator command without the embedded stack: inputs, exit codes, reports, redaction."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from validate_all_flows.checks import CheckResult, Status
from validate_all_flows.cli import main
from validate_all_flows.embedded.postgres import free_port
from validate_all_flows.flow_contract import BUILTIN_FLOWS, INPUTS, PARTS, load_flows
from validate_all_flows.report import decide

SECRET = "s3cr3t-Value-that-must-never-show-9f8e7d6c5b4a"


def _env_file(tmp_path: Path, **extra: str) -> Path:
    env = {
        "DATABASE_URL": "postgresql://app:dbpass-123456@db.internal:5432/blocktrust",
        "JWT_SECRET": SECRET,
        "SUMSUB_APP_TOKEN": "sbx:" + "a1b2c3d4" * 3,
        "SUMSUB_SECRET_KEY": "Zr8q9w8e7r6q9w8e7r6",
        "API_KEY_SALT": SECRET[::-1],
        **extra,
    }
    f = tmp_path / ".env"
    f.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return f


def test_a_good_env_file_passes_and_skips_are_not_passes(tmp_path: Path, capsys) -> None:
    rc = main(["--quiet", "--env-file", str(_env_file(tmp_path)), "--only", "env,http"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "GO  —  all 1 checks passed, 3 skipped (each says why)" in out
    assert "skip  http.health" in out


def test_a_bad_env_is_no_go_and_never_shows_secrets(tmp_path: Path, capsys) -> None:
    f = _env_file(tmp_path, ENVIRONMENT="production", DEBUG_MODE="true", JWT_SECRET="changeme")
    rc = main(["--quiet", "--env-file", str(f), "--only", "env", "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert doc["schema"] == "blocktrust.validate/1"
    assert doc["verdict"] == "NO-GO"
    evidence = doc["checks"][0]["evidence"]
    assert "DEBUG_MODE: must be false in production" in evidence
    assert "CORS_ORIGINS: missing (required in production)" in evidence
    assert any(e.startswith("JWT_SECRET: too short") for e in evidence)
    assert "changeme" not in json.dumps(doc)


def test_logs_with_errors_and_credentials_are_no_go(tmp_path: Path, capsys) -> None:
    log = tmp_path / "api.log"
    log.write_text(
        "INFO started\n"
        f"DEBUG config jwt={SECRET}\n"
        "ERROR request failed\n"
        "INFO Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123\n"
        "INFO private_key=0x" + "ab" * 32 + "\n"
        "INFO mined tx 0x" + "cd" * 32 + "\n"
    )
    rc = main(
        [
            "--quiet",
            "--env-file",
            str(_env_file(tmp_path)),
            "--logs",
            str(log),
            "--only",
            "env,logs",
            "--format",
            "json",
        ]
    )
    text = capsys.readouterr().out
    doc = json.loads(text)
    assert rc == 1
    by_id = {c["id"]: c for c in doc["checks"]}
    assert by_id["logs.errors"]["status"] == "fail"
    assert by_id["logs.secrets"]["status"] == "fail"
    leaks = by_id["logs.secrets"]["evidence"]
    assert any(":2: a secret from the environment" in e for e in leaks)
    assert any(":4: a bearer token" in e for e in leaks)
    assert any(":5: a private key" in e for e in leaks)
    assert not any(":6:" in e for e in leaks)  # a transaction hash is not a key
    assert SECRET not in text
    assert "abcdefghijklmnopqrstuvwxyz0123" not in text


def test_junit_has_one_case_per_check(tmp_path: Path) -> None:
    out = tmp_path / "report.xml"
    rc = main(
        [
            "--quiet",
            "--env-file",
            str(_env_file(tmp_path)),
            "--only",
            "env,http,chain",
            "--format",
            "junit",
            "--output",
            str(out),
        ]
    )
    assert rc == 0
    suite = ET.parse(out).getroot()
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [
        "env.schema",
        "http.health",
        "http.ready",
        "http.debug_off",
        "chain.contracts",
    ]
    assert suite.get("skipped") == "4"
    assert cases[1].find("skipped") is not None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--env-file", "/nonexistent/.env"], "cannot read the env file"),
        (["--logs", "/nonexistent.log"], "--logs /nonexistent.log"),
        (["--logs-cmd", "false"], "--logs-cmd exited 1"),
        (["--only", "nope", "--env-file", "/dev/null"], "unknown group"),
        (["--load-rate", "5", "--env-file", "/dev/null"], "--load-rate given without --load VUS"),
        (["--load", "2", "--load-flows", "/nonexistent.yaml"], "--load-flows: /nonexistent.yaml"),
    ],
)
def test_unusable_inputs_exit_2_with_the_reason(argv: list[str], message: str, capsys) -> None:
    assert main(["--quiet", *argv]) == 2
    assert message in capsys.readouterr().err


def test_the_verdict_rules() -> None:
    def r(status: Status) -> CheckResult:
        return CheckResult("x.y", "t", status, "f")

    assert decide([r(Status.PASS), r(Status.SKIP)]).go
    assert not decide([r(Status.PASS), r(Status.ERROR)]).go
    assert not decide([r(Status.SKIP)]).go  # nothing checked is not GO
    assert not decide([]).go
    # Errors are counted as errors, not as failures.
    e = CheckResult("a.b", "t", Status.ERROR, "f")
    assert decide([r(Status.FAIL), e]).reason == (
        "1 check(s) failed, 1 could not be judged (error): x.y, a.b"
    )
    assert decide([e]).reason == "1 could not be judged (error): a.b"


def test_a_check_that_raises_keeps_its_declared_ids(tmp_path: Path, capsys) -> None:
    # Before: one ERR named after the function (workers.listener_lag); the documented id
    # workers.listener disappeared from JSON and JUnit. Here the database has no listener table.
    from validate_all_flows.checks import declared_ids, run_check
    from validate_all_flows.checks.workers import listener_lag
    from validate_all_flows.target import Target

    class Broken(Target):
        def pool(self):  # a deployment part that fails mid-check
            raise ConnectionResetError("connection reset by peer")

    got = run_check(Broken(database_url="postgresql://u@127.0.0.1:1/d"), "workers", listener_lag)
    assert [r.id for r in got] == list(declared_ids(listener_lag)) == ["workers.listener"]
    assert got[0].status is Status.ERROR
    assert got[0].evidence == ["listener_lag raised ConnectionResetError: connection reset by peer"]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("exports: [token_id]", "exports: []", "flows.kyc_mint.exports: must export 'token_id'"),
        (
            'applicantId: "{{applicant}}"',
            'applicantId: "{{applicant_idd}}"',
            "flows.kyc_mint.steps[1].request.json.applicantId: unknown variable {{applicant_idd}}",
        ),
        ("sign_duress", "sign_under_duress", "flows.sign_duress: missing (the validator runs"),
        ('retry: {within: "{{mint_wait_s}}"', "retry: {within: soon", "retry.within: must be"),
    ],
)
def test_a_flows_spec_that_breaks_the_contract_cannot_run(
    tmp_path: Path, capsys, old: str, new: str, message: str
) -> None:
    text = BUILTIN_FLOWS.read_text()
    assert old in text
    spec = tmp_path / "flows.yaml"
    spec.write_text(text.replace(old, new))
    argv = ["--quiet", "--flows", str(spec), "--base-url", "http://127.0.0.1:9"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"cannot run: --flows {spec}: " in err
    assert message in err


def test_the_built_in_flows_keep_the_contract() -> None:
    inputs = {name: "x" for name in INPUTS} | {"failsafe_wait_s": 1}
    spec = load_flows(BUILTIN_FLOWS, inputs)
    assert spec.subflow_names == list(PARTS)
    assert spec.subflow("register", vars=inputs).step_names == [
        "register/register",
        "register/login",
        "register/identity",  # the id and wallet: register answers alike for a taken e-mail
    ]
    assert set(spec.capture_names) >= {"token", "token_id", "normal_headers", "duress_body"}


def test_load_is_skipped_with_the_reason_unless_asked(tmp_path: Path, capsys) -> None:
    rc = main(["--quiet", "--env-file", str(_env_file(tmp_path)), "--only", "env,load"])
    out = capsys.readouterr().out
    assert rc == 0, out
    for cid in ("load.p95", "load.error_rate", "load.availability"):
        assert f"skip  {cid}" in out
    assert "load not requested (--load VUS)" in out


def test_bad_load_options_are_refused(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "load.yaml"
    spec.write_text("name: x\nsteps:\n  - request: {path: /api/health, headers: {A: '{{nope}}'}}\n")
    assert main(["--quiet", "--load", "1", "--load-flows", str(spec)]) == 2
    assert "unknown variable {{nope}}" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["--quiet", "--load", "0"])
    assert exc.value.code == 2
    assert "--load: must be > 0: '0'" in capsys.readouterr().err


def test_load_against_a_dead_service_is_no_go(tmp_path: Path, capsys) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    # The built-in flow needs a probe user: its registration fails, so the load cannot run.
    rc = main(
        ["--quiet", "--base-url", nobody, "--only", "load", "--load", "1", "--format", "json"]
    )
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert {c["status"] for c in doc["checks"]} == {"error"}
    assert "answered connect: Connection refused" in doc["checks"][0]["found"]
    # A spec without {{probe_token}} runs: every request fails without an answer.
    spec = tmp_path / "health.yaml"
    spec.write_text("name: health\nsteps:\n  - {name: health, request: {path: /api/health}}\n")
    argv = ["--quiet", "--base-url", nobody, "--only", "load", "--format", "json"]
    rc = main([*argv, "--load", "1", "--load-duration", "0.5", "--load-flows", str(spec)])
    doc = json.loads(capsys.readouterr().out)
    by_id = {c["id"]: c for c in doc["checks"]}
    assert rc == 1
    assert by_id["load.error_rate"]["status"] == "fail"
    assert by_id["load.error_rate"]["found"].startswith("error rate 100.00%")
    assert by_id["load.availability"]["status"] == "fail"
    assert by_id["load.availability"]["found"].startswith("availability 0.00%")
    assert any("step health:" in e for e in by_id["load.p95"]["evidence"])


def test_the_seconds_of_a_checks_results_add_up_to_its_time() -> None:
    # A flows-like check: the first part times itself, three skipped parts do not. Before, each
    # skipped one got a quarter of the whole call on top: the group summed to ~1.75x its time.
    import time

    from validate_all_flows.checks import run_check

    def parts(_t: object) -> list[CheckResult]:
        t0 = time.monotonic()
        time.sleep(0.05)  # the first part's work: it must take measurable time
        first = CheckResult("x.a", "t", Status.FAIL, "f", seconds=time.monotonic() - t0)
        return [first, *(CheckResult(f"x.{n}", "t", Status.SKIP, "needs x.a") for n in "bcd")]

    t0 = time.monotonic()
    got = run_check(object(), "x", parts)
    total = time.monotonic() - t0
    assert sum(r.seconds for r in got) <= total
    assert got[0].seconds >= 0.05


def test_per_group_timings_on_stderr_add_up_to_the_total(tmp_path: Path, capsys) -> None:
    import re

    from fix_wsgi import serve_wsgi

    def refuse(environ: dict, start_response) -> list[bytes]:
        start_response("401 Unauthorized", [("Content-Type", "application/json")])
        return [b"{}"]

    with serve_wsgi(refuse) as url:
        env = _env_file(tmp_path)
        assert main(["--base-url", url, "--env-file", str(env), "--only", "env,http,flows"]) == 1
    err = capsys.readouterr().err
    m = re.search(r"checks done in ([0-9.]+)s \((.*)\)", err)
    assert m, err
    groups = dict(re.findall(r"(\w+) ([0-9.]+)s", m.group(2)))
    assert set(groups) == {"env", "http", "flows"}
    # Each figure is rounded to 0.1 s: allow that much per group.
    assert sum(map(float, groups.values())) <= float(m.group(1)) + 0.05 * len(groups)
