"""The validator catches real faults: each fault switch of the embedded stack, and faults made from
outside, turn the verdict to NO-GO and name the failing check; the healthy stack is GO."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from validate_all_flows.checks import Status, run_checks
from validate_all_flows.cli import main
from validate_all_flows.embedded.stack import Stack
from validate_all_flows.flow_contract import BUILTIN_FLOWS, PARTS
from validate_all_flows.report import decide
from validate_all_flows.target import Target

pytestmark = [pytest.mark.pg, pytest.mark.slow]


def _target(stack: Stack) -> Target:
    return Target(chain_margin_s=5.0).use_stack(stack)


def _failed(t: Target, groups: set[str]) -> set[str]:
    try:
        results = run_checks(t, groups)
    finally:
        t.close()
    assert not decide(results).go or not any(r.status is Status.FAIL for r in results)
    return {r.id for r in results if r.status in (Status.FAIL, Status.ERROR)}


@pytest.mark.parametrize(
    ("fault", "groups", "expected"),
    [
        ("duress_noop", {"flows"}, {"flows.sign_duress"}),
        ("duress_visible", {"flows"}, {"flows.sign_duress"}),
        ("unsigned_webhooks", {"security"}, {"security.webhook_signature"}),
        ("no_rate_limits", {"security"}, {"security.login_rate_limit"}),
        ("no_listener", {"workers"}, {"workers.listener"}),
        # The last migration (012) adds indexes only: the schema's tables and columns are there.
        ("skip_migration", {"database"}, {"database.migrations"}),
        ("slow_health", {"http"}, {"http.health"}),
        ("debug", {"http"}, {"http.debug_off"}),
    ],
)
def test_each_fault_switch_is_caught(fault: str, groups: set[str], expected: set[str]) -> None:
    with Stack(env={"BLOCKTRUST_FAULTS": fault}) as stack:
        assert _failed(_target(stack), groups) == expected


@pytest.fixture(scope="module")
def healthy() -> Iterator[Stack]:
    with Stack() as stack:
        yield stack


def test_the_healthy_stack_is_go(healthy: Stack) -> None:
    t = _target(healthy)
    try:
        results = run_checks(t, {"env", "database", "http", "chain", "workers"})
    finally:
        t.close()
    assert decide(results).go, [(r.id, r.found) for r in results if r.status is not Status.PASS]


#: Today's report on the embedded stack, before profiles existed (numbers as \d+): the reference
#: profile must give the same checks, statuses and findings. (The flows' PASS lines, once "ok",
#: now say what they observed: test_the_flows_pass_and_an_override_spec_is_used.)
TODAYS_REPORT = [
    ("env.schema", "PASS", r"\d+ variables checked, no problem"),
    ("database.reachable", "PASS", r"PostgreSQL .* at postgresql://postgres@127\.0\.0\.1:\d+/\w+"),
    ("database.migrations", "PASS", r"\d+ applied"),  # 10 then; 011 (chain jobs) since
    ("database.schema", "PASS", r"\d+ columns and 3 lookup indexes present"),
    ("http.health", "PASS", r"status 200 in \d+ ms"),
    ("http.ready", "PASS", r"status 200 in \d+ ms"),
    ("http.debug_off", "PASS", r"no debug flag, error answers are plain"),
    ("chain.contracts", "PASS", r"chain 31337"),
    ("security.login_rate_limit", "PASS", r"429 after \d+ attempts, Retry-After \d+ s"),
    ("security.auth_required", "PASS", r"3 endpoints refuse missing and forged tokens, "
     r"/api/admin/overview missing and forged API keys"),
    ("security.webhook_signature", "PASS", r"unsigned and forged webhooks refused"),
    ("security.cors", "PASS", r"1 origin\(s\) allowed"),
    ("workers.listener", "PASS", r"1 listener\(s\) current"),
    ("workers.monitor", "SKIP", r"no monitor runs"),
    # added since (issue 14): the chain worker's heartbeat and its jobs
    ("workers.chain", "PASS",
     r"\d+ chain worker\(s\) beating, \d+ job\(s\) in progress, none late"),
]  # fmt: skip


@pytest.mark.parametrize("profile", [None, "reference"])
def test_the_reference_profile_reproduces_todays_report(
    healthy: Stack, profile: str | None
) -> None:
    from validate_all_flows.profile import load_profile

    t = _target(healthy)
    if profile is not None:
        t.use_profile(load_profile(profile)).use_stack(healthy)
    try:
        results = run_checks(t, {"env", "database", "http", "chain", "security", "workers"})
    finally:
        t.close()
    got = [(r.id, r.status.name, r.found) for r in results]
    assert [g[:2] for g in got] == [e[:2] for e in TODAYS_REPORT], got
    for (cid, _, found), (_, _, pattern) in zip(got, TODAYS_REPORT, strict=True):
        assert re.fullmatch(pattern, found), (cid, found)


def test_the_flows_pass_and_an_override_spec_is_used(
    healthy: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t = _target(healthy)
    try:
        results = run_checks(t, {"flows"})
    finally:
        t.close()
    assert [(r.id, r.status) for r in results] == [(f"flows.{p}", Status.PASS) for p in PARTS], [
        (r.id, r.found, r.evidence) for r in results
    ]
    duress = results[-1].evidence
    assert duress[0].startswith("duress answer has the normal shape")
    assert "chain: IdentityNFT.statusOf = Cancelled" in duress
    assert "database: fail-safe event row (confirmed)" in duress
    # The reference spec with one path changed: flows.register fails naming the step and status.
    spec = BUILTIN_FLOWS.read_text()
    override = tmp_path / "flows.yaml"
    override.write_text(spec.replace("path: /api/auth/register", "path: /api/v2/auth/register"))
    argv = ["--quiet", "--base-url", healthy.base_url, "--flows", str(override)]
    assert main([*argv, "--only", "flows", "--format", "json"]) == 1
    by_id = {c["id"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    register = by_id["flows.register"]
    assert register["status"] == "fail"
    assert register["found"] == (
        "step register/register (POST /api/v2/auth/register): assert status 201 failed: got 404"
    )
    assert register["evidence"][0].startswith("HTTP 404")
    assert register["fix"] == "see the service log for POST /api/v2/auth/register"
    assert [by_id[f"flows.{p}"]["status"] for p in PARTS[1:]] == ["skip"] * 3
    # A duress answer that gives itself away (here: a wrong password, answered 403) is caught.
    giveaway = spec.replace('value: "{{duress_password}}"', "value: not-the-password")
    giveaway = giveaway.replace(
        "assert: {status: 201}\n        capture: {duress_status",
        "assert: {status: 403}\n        capture: {duress_status",
    )
    override.write_text(giveaway)
    t = _target(healthy)
    t.flows_spec = override
    try:
        duress = run_checks(t, {"flows"})[-1]
    finally:
        t.close()
    assert (duress.id, duress.status) == ("flows.sign_duress", Status.FAIL)
    assert duress.found == "the duress answer differs from a normal one"
    normal, answer = duress.evidence
    assert normal.startswith("normal: 201 ['document_sha256', 'proof_status', 'signature_id'] [")
    assert answer.startswith("duress: 403 ['detail'] [")


def test_outside_faults_are_caught(healthy: Stack, tmp_path: Path) -> None:
    # A contract address wrong in the config.
    config = json.loads(Path(healthy.contracts_config).read_text())
    config["FailSafe"]["address"] = "0x" + "11" * 20
    wrong = tmp_path / "contracts_config.json"
    wrong.write_text(json.dumps(config))
    t = _target(healthy)
    t.contracts = str(wrong)
    assert _failed(t, {"chain"}) == {"chain.contracts"}
    # A weak JWT_SECRET in the environment.
    t = _target(healthy)
    assert t.env is not None
    t.env["JWT_SECRET"] = "secret"
    assert _failed(t, {"env"}) == {"env.schema"}
    # A lookup index of the listener dropped: the schema check names it (the migrations table
    # still says 010 is applied).
    assert healthy.pool is not None
    healthy.pool.execute("DROP INDEX proofs_tx_idx")
    t = _target(healthy)
    try:
        by_id = {r.id: r for r in run_checks(t, {"database"})}
    finally:
        t.close()
    assert by_id["database.migrations"].status is Status.PASS
    assert by_id["database.schema"].status is Status.FAIL
    assert by_id["database.schema"].evidence == ["index on proofs (tx_hash)"]
    # A table dropped (last: it breaks the stack for good).
    healthy.pool.execute("DROP TABLE monitor_metrics")
    assert _failed(_target(healthy), {"database"}) == {"database.schema"}


def test_a_spent_rate_limit_is_named_and_not_blamed_on_the_flow() -> None:
    # One registration per hour: the first validation spends it, the second is refused with 429.
    with Stack(env={"RATE_LIMIT_REGISTER": "1/hour"}) as stack:
        runs = []
        for _ in range(2):
            t = _target(stack)
            try:
                runs.append(run_checks(t, {"flows"}))
            finally:
                t.close()
    first, second = runs
    assert [r.status for r in first] == [Status.PASS] * 4, [(r.id, r.found) for r in first]
    register = second[0]
    assert (register.id, register.status) == ("flows.register", Status.ERROR)
    assert register.found.startswith("rate-limited at step register/register (HTTP 429)")
    assert re.search(r"retry after \d+ s$", register.found), register.found
    assert register.evidence[1].startswith("HTTP 429")
    assert "RATE_LIMIT_REGISTER" in register.fix
    assert [r.status for r in second[1:]] == [Status.SKIP] * 3
    assert not decide(second).go


def test_a_deployment_is_validated_without_the_chain_libraries(tmp_path: Path) -> None:
    # An operator's `pip install blocktrust-native` has no extras: the validating process here
    # cannot import web3, eth-*, pycryptodome or the web framework, yet checks chain and flows.
    blocked = ("web3", "eth_abi", "eth_account", "eth_hash", "eth_utils", "Crypto", "fastapi")
    code = (
        f"import sys\nfor m in {blocked!r}: sys.modules[m] = None\n"
        "from validate_all_flows.cli import main\nsys.exit(main(sys.argv[1:]))"
    )
    with Stack() as stack:
        env_file = tmp_path / "service.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in stack.service_env.items()))
        args = [
            *("--base-url", str(stack.base_url), "--database-url", str(stack.database_url)),
            *("--rpc-url", str(stack.rpc_url), "--contracts", str(stack.contracts_config)),
            *("--env-file", str(env_file), "--only", "database,chain,flows"),
            *("--format", "json", "--quiet"),
        ]
        proc = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300
        )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    checks = {c["id"]: c["status"] for c in json.loads(proc.stdout)["checks"]}
    assert checks == {
        **{f"database.{n}": "pass" for n in ("reachable", "migrations", "schema")},
        "chain.contracts": "pass",
        **{f"flows.{p}": "pass" for p in PARTS},
    }


def test_every_check_is_go_run_after_run() -> None:
    # Two full validations of one fresh stack: no check is flaky or spoils the next run (the
    # register limit of 3 per hour allows both runs' probe users).
    with Stack() as stack:
        for run in (1, 2):
            t = _target(stack)
            try:
                results = run_checks(t)
            finally:
                t.close()
            bad = [(r.id, r.found) for r in results if r.status is not Status.PASS]
            assert decide(results).go, (run, bad)
            assert not [r for r in results if r.status in (Status.FAIL, Status.ERROR)], bad


def test_the_service_killed_mid_run_is_no_go() -> None:
    with Stack() as stack:
        t = _target(stack)

        def progress(message: str) -> None:
            # The service dies once the HTTP checks have passed, before the flows.
            if message.startswith("checking flows") and stack.server is not None:
                stack.server.should_exit = True
                assert stack._server_thread is not None
                stack._server_thread.join(10)

        try:
            results = run_checks(t, {"http", "flows", "security"}, progress=progress)
        finally:
            t.close()
        status = {r.id: r.status for r in results}
        assert status["http.health"] is Status.PASS
        assert status["flows.register"] is Status.FAIL
        # No answer is no evidence of a missing defence: the security checks cannot judge.
        by_id = {r.id: r for r in results}
        for cid in ("security.login_rate_limit", "security.auth_required"):
            assert status[cid] is Status.ERROR, (cid, by_id[cid].found)
            assert by_id[cid].found == "the service did not answer, so this cannot be judged"
        assert not decide(results).go
