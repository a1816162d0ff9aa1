"""Deployment profiles: the built-ins load, a bad profile exits 2 naming the place before anything
runs, required checks that skip are NO-GO, and the migration sources read what they should."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from validate_all_flows.checks import CheckResult, Status
from validate_all_flows.cli import main
from validate_all_flows.migration_sources import alembic_heads, sql_dir_objects
from validate_all_flows.profile import BUILTIN_PROFILES, ProfileError, load_profile
from validate_all_flows.report import decide

HEAD = "schema: blocktrust.profile/1\nname: t\n"


def test_every_built_in_profile_loads_and_reference_is_the_default() -> None:
    for name in BUILTIN_PROFILES:
        assert load_profile(name).name == name
    ref = load_profile("reference")
    assert [h.path for h in ref.health] == ["/api/health"]
    assert ref.ready is not None
    assert ref.ready.path == "/api/ready"
    assert load_profile("blocktrust-v1.4").require == ("workers.listener", "workers.monitor")
    assert load_profile("blocktrust-v1.4").ready is None


# (profile text after the header, the place the error must name)
BAD = [
    ("http: {health: [api/health]}", "http.health[0]: must be a path starting with '/'"),
    ("http: {helth: /x}", "http: unknown key 'helth'"),
    (
        "http: {health: [{path: /h, expect: {status: ok}}]}",
        "http.health[0].expect.status: not a JSON pointer",
    ),
    ("security: {bearer: [FETCH /x]}", "security.bearer[0]: not 'METHOD /path'"),
    ("security: {bearer: []}", "security.bearer: must be a non-empty list"),
    ("security: {webhook: {path: /h, scheme: paypal}}", "security.webhook.scheme: must be one of"),
    (
        "security: {webhook: {path: /h, algorithm: MD5}}",
        "security.webhook.algorithm: must be one of",
    ),
    ("security: {login_rate_limit: {json: {}}}", "security.login_rate_limit: missing 'path'"),
    (
        "security: {login_rate_limit: {path: /l, attempts: 0}}",
        "security.login_rate_limit.attempts: must be an integer >= 1",
    ),
    ("security: {cors: {path: /x, origins: [ftp://a]}}", "security.cors.origins: must be 'env'"),
    ("database: {migrations: {source: liquibase}}", "database.migrations.source: must be one of"),
    (
        "database: {migrations: {source: sql-dir, directory: /nonexistent-dir}}",
        "database.migrations.directory: not a directory",
    ),
    (
        "database: {migrations: {source: ledger, revision: abc}}",
        "database.migrations.revision: only for source alembic",
    ),
    ("database: {tables: {users: [e-mail]}}", "database.tables.users[0]: not a column name"),
    ("database: {indexes: [proofs.tx_hash]}", "database.indexes[0]: not 'table(column)'"),
    ("workers: {listener: {table: t, sql: 'SELECT 1'}}", "workers.listener: give exactly one of"),
    (
        "workers: {monitor: {sql: 'DELETE FROM metrics'}}",
        "workers.monitor.sql: must be a read-only query",
    ),
    (
        "workers: {monitor: {sql: 'SELECT 1; DROP TABLE x'}}",
        "workers.monitor.sql: must be one statement",
    ),
    (
        "workers: {listener: {table: t, max_age_s: -1}}",
        "workers.listener.max_age_s: must be a number >= 1",
    ),
    ("workers: {jobs: {table: jobs, backlog_sql: 'SELECT 1'}}", "workers.jobs: give table"),
    ("workers: {jobs: {backlog_sql: 'SELECT 1, 2'}}", "workers.jobs: missing 'failed_sql'"),
    ("workers: {jobs: {table: jobs, pending: []}}", "workers.jobs.pending: must be a non-empty"),
    ("workers: {jobs: {table: jobs, max_failed: -1}}", "workers.jobs.max_failed: must be an"),
    (
        "chain: {contracts: {variables: {IdentityNFT: X}}}",
        "chain.contracts.variables: must map each of",
    ),
    (
        "chain: {contracts: config, identity: {contract: Nope, function: f(uint256)}}",
        "chain.identity.contract: not one of",
    ),
    (
        "chain: {contracts: config, identity: {contract: IdentityNFT, function: statusOf}}",
        "chain.identity.function: not a signature",
    ),
    ("flows: {spec: /nonexistent.yaml}", "flows.spec: no such file"),
    (
        "flows: {checks: {register: {steps: [{request: {path: /x}, assert: {status: 200}}]}}}",
        "flows.checks.register: 'register' is one of the Blocktrust flows",
    ),
    (
        "flows: {checks: {up: {steps: [{name: a, request: {path: /x}}]}}}",
        "flows.checks.up.steps: no step asserts anything",
    ),
    (
        "flows: {checks: {up: {steps: [{name: a, request: {path: /x, verb: GET},"
        " assert: {status: 200}}]}}}",
        "flows.checks.up: steps[0].request: unknown key 'verb'",
    ),
    ("flows: {evidence: {api: {path: /me}}}", "flows.evidence.api: missing 'json'"),
    (
        "auth: {steps: [{name: a, request: {path: /x}, assert: {status: 200}}]}",
        "auth.steps: no step captures 'token'",
    ),
    ("require: [workers.monitr]", "require[0]: no check 'workers.monitr'"),
    ("require: [wrokers]", "require[0]: 'wrokers' is not a check id or group"),
    ("extends: nonexistent-profile", "extends: nonexistent-profile: no such profile file"),
]


@pytest.mark.parametrize(("body", "place"), BAD, ids=[p.split(":")[0] for _, p in BAD])
def test_a_bad_profile_exits_2_naming_the_place(
    body: str, place: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(HEAD + body + "\n")
    # --base-url names a port nothing listens on: exit 2 proves nothing was tried first.
    assert main(["--quiet", "--profile", str(f), "--base-url", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert f"--profile {f}: {place}" in err, err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: t\n", "schema: must be 'blocktrust.profile/1'"),
        ("schema: blocktrust.profile/1\n", "profile: missing 'name'"),
        ("schema: blocktrust.profile/1\nname: t\nhttp: [\n", "not valid YAML"),
        ("- a list\n", "must be a mapping"),
    ],
)
def test_a_profile_that_is_not_a_profile_is_refused(
    text: str, message: str, tmp_path: Path
) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(text)
    with pytest.raises(ProfileError, match=message):
        load_profile(f)


def test_json_profiles_extends_and_cycles(tmp_path: Path) -> None:
    child = tmp_path / "child.json"
    child.write_text(json.dumps({"schema": "blocktrust.profile/1", "extends": "blocktrust-v1.4",
                                 "name": "mine", "http": {"ready": "/ready"}}))  # fmt: skip
    p = load_profile(child)
    assert (p.name, p.ready and p.ready.path, p.health[0].path) == ("mine", "/ready", "/api/health")
    assert p.require == ("workers.listener", "workers.monitor")  # kept from the built-in
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(HEAD + "extends: b.yaml\n")
    b.write_text(HEAD + "extends: a.yaml\n")
    with pytest.raises(ProfileError, match="a cycle"):
        load_profile(a)


def test_require_on_the_command_line_is_checked_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quiet", "--require", "workers.nope", "--base-url", "http://127.0.0.1:9"]) == 2
    assert "--require[0]: no check 'workers.nope'" in capsys.readouterr().err


def test_a_required_check_that_skipped_is_no_go_with_the_reason() -> None:
    ok = CheckResult("http.health", "t", Status.PASS, "status 200")
    monitor = CheckResult(
        "workers.monitor", "t", Status.SKIP, "no monitor progress found (no table metrics)"
    )
    assert decide([ok, monitor]).go
    verdict = decide([ok, monitor], ["workers.monitor"])
    assert not verdict.go
    assert verdict.reason == (
        "required but not run: workers.monitor: no monitor progress found (no table metrics)"
    )
    # A required group: every check of it must have run; one that is absent is named too.
    assert not decide([ok], ["chain"]).go
    assert decide([ok], ["chain"]).reason == "required but not run: chain: not among the checks run"
    assert decide([ok, monitor], ["http"]).go


def test_alembic_heads_are_the_revisions_nothing_builds_on(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('revision = "aaa"\ndown_revision = None\n')
    (tmp_path / "b.py").write_text('revision: str = "bbb"\ndown_revision = "aaa"\n')
    (tmp_path / "c.py").write_text('revision = "ccc"\ndown_revision = "aaa"\n')  # a branch
    (tmp_path / "helpers.py").write_text("X = 1\n")
    assert alembic_heads(tmp_path) == ({"bbb", "ccc"}, 3)
    (tmp_path / "d.py").write_text('revision = "ddd"\ndown_revision = ("bbb", "ccc")\n')  # merge
    assert alembic_heads(tmp_path) == ({"ddd"}, 4)


def test_sql_files_are_judged_by_what_they_leave_behind(tmp_path: Path) -> None:
    (tmp_path / "001_init.sql").write_text(
        "-- users first\nCREATE TABLE IF NOT EXISTS public.users (\n  id serial PRIMARY KEY,\n"
        "  email text NOT NULL UNIQUE, pw numeric(10, 2),\n  CONSTRAINT pw_ok CHECK (pw > 0)\n);\n"
        "CREATE TABLE tmp (x int);\nCREATE UNIQUE INDEX users_email_idx ON users (email);\n"
        "CREATE FUNCTION f() RETURNS trigger AS $$ BEGIN CREATE TABLE nope (y int); END $$ "
        "LANGUAGE plpgsql;\n"
    )
    (tmp_path / "002_more.sql").write_text(
        "ALTER TABLE users ADD COLUMN wallet text, ADD COLUMN IF NOT EXISTS kyc text, "
        "ADD CONSTRAINT c UNIQUE (wallet);\nDROP TABLE tmp;\nALTER TABLE users DROP COLUMN pw;\n"
    )
    objs = sql_dir_objects(tmp_path)
    assert objs.files == ["001_init.sql", "002_more.sql"]
    assert objs.tables == {"users"}
    assert objs.columns == {("users", c) for c in ("id", "email", "wallet", "kyc")}
    assert objs.indexes == {"users_email_idx"}
