"""The pytest plugin: one test item per check (ids declared statically and matching what the checks
return), each reporting its own result; the flow_runner fixture."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from blocktrust_native.errors import FlowSpecError
from validate_all_flows.check_model import CHECK_IDS, catalogue_ids
from validate_all_flows.checks import (
    CheckResult,
    Status,
    all_checks,
    check,
    declared_ids,
    id_matches,
    run_check,
)
from validate_all_flows.checks import database as database_checks
from validate_all_flows.checks.load import spec_with_vars
from validate_all_flows.embedded.postgres import free_port
from validate_all_flows.embedded.stack import Stack
from validate_all_flows.pytest_plugin import FlowRunner, judge
from validate_all_flows.target import LoadPlan, Target

ROOT = Path(__file__).resolve().parents[1]
# The plugin is named with -p only: installed (scripts/setup), its entry point would load it too.
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(ROOT / "python"), str(ROOT)]),
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
}
DECLARED = [cid for _, fn in all_checks() for cid in declared_ids(fn)]


def _pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "validate_all_flows.pytest_plugin",
         "-p", "no:cacheprovider", *args],
        capture_output=True, text=True, env=ENV, cwd=cwd, timeout=600, check=False,
    )  # fmt: skip


def test_collection_lists_one_item_per_check_without_running_anything(tmp_path: Path) -> None:
    # A dead URL: collecting must not touch it (nor bring a stack up).
    nobody = f"http://127.0.0.1:{free_port()}"
    proc = _pytest(tmp_path, "--pyargs", "validate_all_flows", "--collect-only", "-q",
                   "--blocktrust-url", nobody)  # fmt: skip
    items = [line for line in proc.stdout.splitlines() if "::" in line]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert items == [f"test_deployment.py::test_check[{cid}]" for cid in DECLARED]
    for cid in ("env.schema", "http.health", "http.ready", "database.migrations",
                "security.cors", "load.p95", "load.error_rate", "load.availability",
                "logs.secrets", "workers.listener"):  # fmt: skip
        assert f"test_check[{cid}]" in proc.stdout
    groups = {cid.split(".")[0] for cid in DECLARED}
    assert len(items) > len(groups)  # one per check, not one per group


def test_each_check_reports_its_own_result(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "DATABASE_URL=postgresql://db.internal/app\n"
        "JWT_SECRET=k3Jx9vQ2mZ7pL4tR8wY1nB6cF0hD5sGa\n"
        "SUMSUB_APP_TOKEN=sbx:a1b2c3d4a1b2c3d4\n"
        "SUMSUB_SECRET_KEY=Zr8q9w8e7r6q9w8e7r6\n"
        "API_KEY_SALT=aG5sD0fH6cB1nY8wR4tL7pZ2mQ9vXj3k\n"
    )
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    proc = _pytest(tmp_path, "--pyargs", "validate_all_flows", "-rA", "-v",
                   "--blocktrust-url", nobody, "--blocktrust-env-file", str(env_file))  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr

    def outcome(cid: str) -> str:
        lines = [
            x for x in out.splitlines() if x.startswith(f"test_deployment.py::test_check[{cid}] ")
        ]
        assert len(lines) == 1, (cid, out)
        return lines[0].split()[1]

    assert outcome("env.schema") == "PASSED"
    failed = ["http.health", "http.ready", "http.debug_off", "flows.register",
              "security.login_rate_limit", "security.auth_required",
              "security.webhook_signature"]  # fmt: skip
    for cid in failed:
        assert outcome(cid) == "FAILED", cid
    skipped = [cid for cid in DECLARED if cid not in [*failed, "env.schema"]]
    for cid in skipped:
        assert outcome(cid) == "SKIPPED", cid
    # Each item says its own evidence and fix, or the reason it was skipped.
    assert "http.health: fail: connect: Connection refused" in out
    assert "fix: start the service" in out
    assert "security.auth_required: error: the service did not answer, so this cannot be" in out
    for reason in ("no database given", "not given: --rpc-url and --contracts", "no logs given",
                   "needs flows.register, which failed", "load not requested (--load VUS)",
                   "no CORS_ORIGINS in the environment"):  # fmt: skip
        assert reason in out
    assert f"{len(failed)} failed, 1 passed, {len(skipped)} skipped" in out
    assert "k3Jx9vQ2mZ7pL4tR8wY1nB6cF0hD5sGa" not in out


# No monitor runs beside the embedded stack (its heartbeat check skips with the reason), and the
# reference profile declares no metrics path and no flows checks of its own.
NO_MONITOR = {"workers.monitor", "http.metrics", "flows.*", "workers.jobs"}
PROFILE_ONLY = {
    "metrics",
    "profile_flows",
    "job_queue",
}  # check functions with nothing to report by default


@pytest.mark.pg
@pytest.mark.slow
def test_every_check_passes_as_its_own_item_on_the_embedded_stack(tmp_path: Path) -> None:
    # No --blocktrust-url: the session brings the embedded stack up (and captures its log for
    # the log checks); a short load makes the load items run too.
    proc = _pytest(tmp_path, "--pyargs", "validate_all_flows", "-v", "--blocktrust-load", "2",
                   "--blocktrust-load-duration", "1")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for cid in DECLARED:
        outcome = "SKIPPED" if cid in NO_MONITOR else "PASSED"
        assert f"test_deployment.py::test_check[{cid}] {outcome}" in proc.stdout, cid
    assert f"{len(DECLARED) - len(NO_MONITOR)} passed, {len(NO_MONITOR)} skipped" in proc.stdout


def test_bad_load_options_are_a_usage_error(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, "--pyargs", "validate_all_flows", "--blocktrust-load-rate", "5")
    assert proc.returncode == 4  # pytest's usage error
    assert "--blocktrust-load-rate given without --blocktrust-load VUS" in proc.stderr


_SEEN = """
import json

def test_seen(blocktrust_target):
    t = blocktrust_target
    print("SEEN " + json.dumps({
        "chain_margin_s": t.chain_margin_s, "worker_stale_s": t.worker_stale_s,
        "job_objective_s": t.job_objective_s, "min_gas_balance_wei": t.min_gas_balance_wei,
        "listener_lag_s": t.slo.listener_lag_s, "env_schema": str(t.env_schema),
    }))
"""


def test_the_deployment_settings_reach_the_target(tmp_path: Path) -> None:
    from validate_all_flows.envcheck import BUILTIN_SCHEMA

    (tmp_path / "test_seen.py").write_text(_SEEN)
    schema = tmp_path / "schema.yaml"
    schema.write_text(BUILTIN_SCHEMA.read_text())
    nobody = f"http://127.0.0.1:{free_port()}"  # no stack comes up; the fixture only builds

    def seen(*options: str) -> dict[str, object]:
        proc = _pytest(tmp_path, "-q", "-s", "test_seen.py", "--blocktrust-url", nobody, *options)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        line = next(x for x in proc.stdout.splitlines() if x.startswith("SEEN "))
        return dict(json.loads(line.removeprefix("SEEN ")))

    assert seen() == {  # the command's defaults
        "chain_margin_s": 60.0,
        "worker_stale_s": 120.0,
        "job_objective_s": 600.0,
        "min_gas_balance_wei": None,
        "listener_lag_s": 180.0,
        "env_schema": str(BUILTIN_SCHEMA),
    }
    assert seen(
        "--blocktrust-failsafe-margin", "90s",
        "--blocktrust-worker-stale-after", "5m",
        "--blocktrust-job-objective", "1.5h",
        "--blocktrust-min-gas-balance", "0.25",
        "--blocktrust-listener-lag", "30",
        "--blocktrust-env-schema", str(schema),
    ) == {
        "chain_margin_s": 90.0,
        "worker_stale_s": 300.0,
        "job_objective_s": 5400.0,
        "min_gas_balance_wei": 25 * 10**16,
        "listener_lag_s": 30.0,
        "env_schema": str(schema),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--blocktrust-failsafe-margin", "0", "'0': must be a duration > 0 and at most 7d"),
        ("--blocktrust-worker-stale-after", "8d", "'8d': must be a duration > 0 and at most 7d"),
        ("--blocktrust-job-objective", "soon", "not a duration: 'soon'"),
        ("--blocktrust-min-gas-balance", "-1", "must be >= 0, got -1.0"),
        ("--blocktrust-listener-lag", "0", "0.0: must be a number of seconds > 0"),
        ("--blocktrust-env-schema", "missing.yaml", "missing.yaml"),
    ],
)
def test_bad_deployment_settings_are_a_usage_error(
    tmp_path: Path, option: str, value: str, says: str
) -> None:
    (tmp_path / "test_seen.py").write_text(_SEEN)
    nobody = f"http://127.0.0.1:{free_port()}"
    proc = _pytest(tmp_path, "-q", "test_seen.py", "--blocktrust-url", nobody, f"{option}={value}")
    assert proc.returncode == 4, proc.stdout + proc.stderr  # pytest's usage error
    assert option in proc.stderr, proc.stderr
    assert says in proc.stderr, proc.stderr
    assert "SEEN" not in proc.stdout  # stopped before any test ran


def test_a_flows_override_is_checked_up_front_and_used(tmp_path: Path) -> None:
    from validate_all_flows.flow_contract import BUILTIN_FLOWS

    broken = tmp_path / "broken.yaml"
    broken.write_text("flows: {register: {steps: []}}\n")
    proc = _pytest(tmp_path, "--pyargs", "validate_all_flows", "--blocktrust-flows", str(broken))
    assert proc.returncode == 4, proc.stdout + proc.stderr  # pytest's usage error
    assert "--blocktrust-flows" in proc.stderr
    # A valid override is what the flows items run: against a dead URL its register step fails.
    nobody = f"http://127.0.0.1:{free_port()}"
    moved = tmp_path / "moved.yaml"
    moved.write_text(BUILTIN_FLOWS.read_text().replace("/api/auth/register", "/v2/signup"))
    proc = _pytest(tmp_path, "--pyargs", "validate_all_flows", "-rA", "-k", "flows.register",
                   "--blocktrust-url", nobody, "--blocktrust-flows", str(moved))  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "/v2/signup" in proc.stdout


def test_judge_reports_each_declared_id_on_its_own() -> None:
    fn = database_checks.database
    down = [CheckResult("database.reachable", "t", Status.FAIL, "cannot query", ["e"], "start it")]
    assert judge("database.reachable", "database", fn, down) == (
        Status.FAIL,
        "database.reachable: fail: cannot query\n  e\n  fix: start it",
    )
    status, why = judge("database.schema", "database", fn, down)
    assert status is Status.SKIP
    assert why == (
        "not reached: database stopped before database.schema (results: database.reachable fail)"
    )
    # A crash (the ERROR result run_check makes from an exception) fails every item.
    crash = [CheckResult("database.database", "t", Status.ERROR, "could not complete: boom")]
    for cid in declared_ids(fn):
        assert judge(cid, "database", fn, crash)[0] is Status.FAIL
    # An id the function does not declare fails its first item, whatever its status.
    extra = [
        CheckResult("database.reachable", "t", Status.PASS, "ok"),
        CheckResult("database.migrations", "t", Status.PASS, "ok"),
        CheckResult("database.schema", "t", Status.PASS, "ok"),
        CheckResult("database.surprise", "t", Status.PASS, "ok"),
    ]
    status, why = judge("database.reachable", "database", fn, extra)
    assert status is Status.FAIL
    assert "does not declare (check_model.CHECK_IDS): database.surprise" in why
    assert judge("database.schema", "database", fn, extra)[0] is Status.PASS
    skipped = [CheckResult(c, "t", Status.SKIP, "no database given") for c in declared_ids(fn)]
    assert judge("database.schema", "database", fn, skipped) == (Status.SKIP, "no database given")


def test_a_required_check_that_skips_fails_its_item() -> None:
    fn = database_checks.database
    skipped = [CheckResult(c, "t", Status.SKIP, "no database given") for c in declared_ids(fn)]
    for required in (["database.schema"], ["database"], ["http", "database"]):
        status, why = judge("database.schema", "database", fn, skipped, required)
        assert status is Status.FAIL, required
        assert why.startswith("required by the profile (")
        assert why.endswith("), skipped: no database given")
    # Another check, or a group whose name only begins the same, leaves the skip alone.
    assert judge("database.schema", "database", fn, skipped, ["database.reachable"])[0] is (
        Status.SKIP
    )
    assert judge("database.schema", "database", fn, skipped, ["data"])[0] is Status.SKIP


def test_require_option_fails_what_it_names_and_is_checked_up_front(tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    proc = _pytest(tmp_path, "--pyargs", "validate_all_flows", "-rA", "-v", "-k", "database",
                   "--blocktrust-url", nobody,
                   "--blocktrust-require", "database.schema")  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "test_check[database.schema] FAILED" in out, out
    assert "required by the profile (database.schema), skipped: no database given" in out
    assert "test_check[database.reachable] SKIPPED" in out, out
    bad_values = [("nosuch.check", "is not a check id"), (" , ", "no check or group")]
    for bad, says in bad_values:
        proc = _pytest(tmp_path, "--pyargs", "validate_all_flows", "--blocktrust-url", nobody,
                       f"--blocktrust-require={bad}")  # fmt: skip
        assert proc.returncode == 4, proc.stdout + proc.stderr  # pytest's usage error
        assert "--blocktrust-require" in proc.stderr, proc.stderr
        assert says in proc.stderr, proc.stderr


def test_logs_options_feed_the_log_checks(tmp_path: Path) -> None:
    secret = "k3Jx9vQ2mZ7pL4tR8wY1nB6cF0hD5sGa"
    env_file = tmp_path / ".env"
    env_file.write_text(f"JWT_SECRET={secret}\n")
    log = tmp_path / "api.log"
    log.write_text(f"INFO started\nDEBUG signing with {secret}\n")
    nobody = f"http://127.0.0.1:{free_port()}"
    base = ["--pyargs", "validate_all_flows", "-rA", "-v", "-k", "logs", "--blocktrust-url", nobody,
            "--blocktrust-env-file", str(env_file)]  # fmt: skip
    proc = _pytest(tmp_path, *base, "--blocktrust-logs", str(log))
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "test_check[logs.errors] PASSED" in out, out
    assert "test_check[logs.secrets] FAILED" in out, out
    assert "api.log:2: a secret from the environment" in out
    assert secret not in out + proc.stderr
    # The command's output is read as the file's is; without either, the log checks skip.
    proc = _pytest(tmp_path, *base, "--blocktrust-logs-cmd", f"cat {log}")
    assert "test_check[logs.secrets] FAILED" in proc.stdout, proc.stdout
    proc = _pytest(tmp_path, *base)
    assert "test_check[logs.secrets] SKIPPED" in proc.stdout, proc.stdout
    # A file that cannot be read, or a command that fails, stops the session as a usage error.
    for args, says in (
        (["--blocktrust-logs", str(tmp_path / "missing.log")], "--blocktrust-logs "),
        (["--blocktrust-logs-cmd", "false"], "--blocktrust-logs-cmd exited 1"),
    ):
        proc = _pytest(tmp_path, *base, *args)
        assert proc.returncode == 4, proc.stdout + proc.stderr  # pytest's usage error
        assert says in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_declarations_are_checked() -> None:
    with pytest.raises(ValueError, match=r"do not start with 'env\.'"):
        check("env", ids=("http.health",))(lambda t: [])

    def environment(t: object) -> list[CheckResult]:  # a name the catalogue gives other ids
        return []

    with pytest.raises(ValueError, match="CHECK_IDS"):
        check("env", ids=("env.other",))(environment)
    assert id_matches("env.var.JWT_SECRET", "env.var.*")
    assert not id_matches("env.schema", "env.var.*")
    assert not id_matches("env.var_x", "env.var")


def test_the_catalogue_is_every_check_with_its_ids() -> None:
    registered: dict[str, dict[str, tuple[str, ...]]] = {}
    for group, fn in all_checks():
        registered.setdefault(group, {})[fn.__name__] = declared_ids(fn)
    assert registered == CHECK_IDS
    assert {d for d in DECLARED if "*" not in d} == catalogue_ids()


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack() as s:
        yield s


@pytest.mark.pg
@pytest.mark.slow
def test_declared_ids_are_exactly_the_ids_returned(stack: Stack) -> None:
    healthy = Target(chain_margin_s=5.0, load=LoadPlan(vus=2, duration_s=1)).use_stack(stack)
    healthy.log_texts = [("api.log", "INFO started\nINFO GET /api/health 200\n")]
    bare = Target()  # no input at all: every check skips, and still yields its ids
    for target, want in ((healthy, Status.PASS), (bare, Status.SKIP)):
        try:
            for group, fn in all_checks():
                results = run_check(target, group, fn)
                if not results and fn.__name__ in PROFILE_ONLY:
                    continue  # the reference profile declares nothing for it
                declared = declared_ids(fn)
                got = [r.id for r in results]
                assert all(any(id_matches(i, d) for d in declared) for i in got), (got, declared)
                for d in declared:
                    assert any(id_matches(i, d) for i in got), (d, got)
                assert len(got) == len(set(got)), got
                expect = Status.SKIP if fn.__name__ == "monitor" else want  # no monitor runs
                assert [r for r in results if r.status is not expect] == [], (fn.__name__, results)
        finally:
            target.close()


@pytest.mark.pg
@pytest.mark.slow
def test_flow_runner_fixture(stack: Stack, tmp_path: Path) -> None:
    (tmp_path / "test_mine.py").write_text(
        "SPEC = {'name': 'health', 'steps': [{'name': 'health', 'request': {'path': "
        "'/api/health'}, 'assert': {'status': 200, 'json': {'/status': '{{want}}'}}}]}\n"
        "\n"
        "def test_ok(flow_runner):\n"
        "    report = flow_runner(SPEC, variables={'want': 'ok'}, iterations=3)\n"
        "    assert (report.iterations, report.failed_iterations) == (3, 0)\n"
        "\n"
        "def test_variables_reach_the_spec(flow_runner):\n"
        "    report = flow_runner(SPEC, variables={'want': 'down'})\n"
        "    assert (report.iterations, report.failed_iterations) == (1, 1)\n"
        "    assert report.failures[0].step == 'health'\n"
    )
    proc = _pytest(tmp_path, "-q", "test_mine.py", "--blocktrust-url", stack.base_url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout


@pytest.mark.pg
@pytest.mark.slow
def test_flow_runner_takes_files_dicts_and_specs(stack: Stack, tmp_path: Path) -> None:
    spec = tmp_path / "ready.yaml"
    spec.write_text(
        "name: ready\nvars: {path: /api/nothing}\n"
        "steps:\n  - {name: ready, request: {path: '{{path}}'}, assert: {status: 200}}\n"
    )
    run = FlowRunner(stack.base_url)
    # A run-time variable replaces the declared one of the same name.
    assert run(spec, variables={"path": "/api/ready"}).failed_iterations == 0
    assert run(spec).failed_iterations == 1  # the declared /api/nothing answers 404
    built = spec_with_vars(spec, {"path": "/api/health"})
    assert run(built, vus=2, iterations=2).iterations == 4
    with pytest.raises(FlowSpecError, match="not a built FlowSpec"):
        run(built, variables={"path": "/x"})
