"""Profiles against deployments that do not look like the reference service (fix_deployments.py:
notary on Flask with hand-applied SQL, vault on FastAPI with Alembic, keysvc as a bare ASGI app
without migrations), each on a throwaway PostgreSQL database of its own.

For each: GO with its profile through the command; NO-GO naming the right check for an
unprotected endpoint, a duress path that does not trip the fail-safe, a dropped table, a stale
listener and a required monitor that is absent; init-profile writes a profile that needs at most
the documented manual answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fix_deployments import Deployment, env_of, start

from validate_all_flows.checks import CheckResult, Status, run_checks
from validate_all_flows.cli import main
from validate_all_flows.profile import load_profile
from validate_all_flows.report import GoNoGo, decide
from validate_all_flows.target import Target

pytestmark = [pytest.mark.pg, pytest.mark.slow]

NAMES = ["notary", "vault", "keysvc"]

#: A table each deployment cannot run without (dropped in the "dropped table" case).
VITAL_TABLE = {"notary": "identities", "vault": "badges", "keysvc": "duress_events"}


@pytest.fixture
def deploy(fresh_pg_dsn: str, tmp_path: Path) -> Iterator[object]:
    """``deploy(name, *faults)`` starts a deployment on a fresh database (stopped afterwards)."""
    started = []

    def run(name: str, *faults: str) -> Deployment:
        cm = start(name, fresh_pg_dsn, tmp_path, set(faults))
        started.append(cm)
        return cm.__enter__()

    yield run
    for cm in reversed(started):
        cm.__exit__(None, None, None)


def _validate(
    dep: Deployment, groups: set[str] | None = None
) -> tuple[GoNoGo, dict[str, CheckResult]]:
    """The command's verdict through the library, with a short fail-safe margin (the duress
    fault would otherwise wait out FAILSAFE_DELAY_MAX + 60 s)."""
    profile = load_profile(dep.profile)
    t = Target(base_url=dep.base_url, database_url=dep.dsn, chain_margin_s=3.0)
    t.env = env_of(dep)
    t.use_profile(profile)
    try:
        results = run_checks(t, groups)
    finally:
        t.close()
    required = [r for r in profile.require if groups is None or r.split(".")[0] in groups]
    return decide(results, required), {r.id: r for r in results}


@pytest.mark.parametrize("name", NAMES)
def test_each_deployment_is_go_with_its_profile(
    name: str, deploy, capsys: pytest.CaptureFixture[str]
) -> None:
    dep = deploy(name)
    rc = main(["--quiet", "--profile", str(dep.profile), "--base-url", dep.base_url,
               "--database-url", dep.dsn, "--env-file", str(dep.env_file)])  # fmt: skip
    out, err = capsys.readouterr()
    assert rc == 0, out + err
    assert "GO  —  all" in out
    # Every PASS names what it saw; nothing that could not be observed passed.
    for line in out.splitlines():
        if line.startswith("  PASS"):
            assert len(line.split(None, 2)) == 3, line
    # What makes each deployment itself was judged, not skipped.
    for cid in ("http.health", "database.schema", "security.auth_required", "workers.listener",
                "workers.monitor", "flows.register", "flows.sign_duress"):  # fmt: skip
        assert f"  PASS  {cid}" in out, (cid, out)
    assert "PASS  database.migrations" in out or name == "keysvc", out
    if name == "vault":
        assert "PASS  flows.template_upload" in out
        assert "alembic_version at b2e1d1ce0002" in out
    if name == "keysvc":
        assert "PASS  http.metrics" in out
        assert "PASS  security.login_rate_limit" in out
    if name == "notary":
        assert "3 SQL files applied" in out


@pytest.mark.parametrize("name", NAMES)
def test_an_unprotected_endpoint_is_no_go_naming_security(name: str, deploy) -> None:
    verdict, by_id = _validate(deploy(name, "unprotected"), {"security"})
    assert not verdict.go
    auth = by_id["security.auth_required"]
    assert auth.status is Status.FAIL, auth
    assert "not protected" in auth.found
    assert all(e.endswith(": 200") for e in auth.evidence), auth.evidence


@pytest.mark.parametrize("name", NAMES)
def test_a_duress_path_that_does_not_trip_the_fail_safe_is_no_go(name: str, deploy) -> None:
    dep = deploy(name, "duress_noop")
    verdict, by_id = _validate(dep, {"flows"})
    assert not verdict.go
    duress = by_id["flows.sign_duress"]
    assert duress.status is Status.FAIL, duress
    assert duress.found.startswith("the identity was not cancelled within"), duress.found
    # The queued fail-safe row is there: it alone is not a PASS.
    assert by_id["flows.register"].status is Status.PASS


@pytest.mark.parametrize("name", NAMES)
def test_a_dropped_table_is_no_go_naming_the_schema(name: str, deploy) -> None:
    dep = deploy(name)
    dep.domain.db(f"DROP TABLE {VITAL_TABLE[name]} CASCADE")
    verdict, by_id = _validate(dep, {"database"})
    assert not verdict.go
    schema = by_id["database.schema"]
    assert schema.status is Status.FAIL
    assert f"table {VITAL_TABLE[name]}" in schema.evidence
    if name == "notary":  # the SQL files' objects say the same
        assert "table identities" in by_id["database.migrations"].evidence


@pytest.mark.parametrize("name", NAMES)
def test_a_stale_listener_is_no_go_naming_it(name: str, deploy) -> None:
    verdict, by_id = _validate(deploy(name, "stale_listener"), {"workers"})
    assert not verdict.go
    listener = by_id["workers.listener"]
    assert listener.status is Status.FAIL, listener
    assert "without progress for over" in listener.found
    assert listener.measures["lag_s"] > 3000


@pytest.mark.parametrize("name", NAMES)
def test_a_required_monitor_that_is_absent_is_no_go_with_the_reason(name: str, deploy) -> None:
    verdict, by_id = _validate(deploy(name, "no_monitor"), {"workers"})
    monitor = by_id["workers.monitor"]
    assert monitor.status is Status.SKIP
    assert monitor.found.startswith("no monitor progress found")
    assert not verdict.go
    assert verdict.reason == f"required but not run: workers.monitor: {monitor.found}"


#: (the job queue's table, a failed row's values) for the deployments that declare a job queue.
FAILED_JOB = {
    "vault": "INSERT INTO emergency_events (member_id, phase) "
    "SELECT id, 'failed' FROM members LIMIT 1",
    "keysvc": "INSERT INTO duress_events (principal, outcome) VALUES (0, 'failed')",
}


@pytest.mark.parametrize("name", sorted(FAILED_JOB))
def test_a_failed_or_late_job_is_no_go_naming_the_queue(name: str, deploy) -> None:
    dep = deploy(name)
    verdict, by_id = _validate(dep, {"workers"})
    assert verdict.go, verdict
    assert by_id["workers.jobs"].found == "0 pending (oldest 0 s), 0 failed"
    if name == "vault":  # a member to hang the job on
        dep.domain.register("jobs@validate.example", "pw-1", "pw-2")
    dep.domain.db(FAILED_JOB[name])
    verdict, by_id = _validate(dep, {"workers"})
    jobs = by_id["workers.jobs"]
    assert not verdict.go
    assert (jobs.status, jobs.found) == (Status.FAIL, "0 pending (oldest 0 s), 1 failed")
    assert jobs.evidence == ["1 failed job(s) (at most 0)"]


#: What the operator answers by hand after init-profile, per deployment (docs/profiles.md): the
#: flows spec and the evidence queries, the webhook's scheme and secret, the migrations folder,
#: the workers init-profile could not recognise, what is required, and their own flows checks.
ANSWERS = {
    "notary": ["flows", "security.webhook", "database.migrations"],
    "vault": ["flows", "security.webhook", "database.migrations", "workers.monitor", "require",
              "auth"],
    # No OpenAPI document and unusual route names: its protected routes are answers too.
    "keysvc": ["flows", "security", "auth", "database.migrations", "workers", "require"],
}  # fmt: skip

#: (users, identities) tables: init-profile must leave both empty.
WRITTEN_BY_FLOWS = {
    "notary": ("accounts", "identities"),
    "vault": ("members", "badges"),
    "keysvc": ("principals", "ident"),
}


def _answers(dep: Deployment, written: Path) -> Path:
    """A profile that extends the written one with only the documented manual answers, taken
    from the deployment's own profile."""
    own = yaml.safe_load(dep.profile.read_text())
    doc: dict = {"schema": "blocktrust.profile/1", "extends": str(written), "name": "answered"}
    for key in ANSWERS[dep.name]:
        group, _, sub = key.partition(".")
        if group not in own:
            continue
        if sub:
            doc.setdefault(group, {})[sub] = own[group][sub]
        else:
            doc[group] = own[group]
    # The built-in the deployment extends may hold the flows evidence and checks too.
    out = written.parent / "answered.yaml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_init_profile_needs_only_the_documented_answers(
    name: str, deploy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dep = deploy(name)
    written = tmp_path / "written.yaml"
    assert main(["init-profile", "--base-url", dep.base_url, "--database-url", dep.dsn,
                 "--output", str(written), "--name", name]) == 0  # fmt: skip
    text = written.read_text()
    capsys.readouterr()
    # No side effects: no user registered, no webhook posted, no login (every request a GET).
    for table in WRITTEN_BY_FLOWS[name]:
        assert dep.domain.db(f"SELECT count(*) FROM {table}") == [(0,)], table
    assert dep.domain.tokens == {}
    profile = load_profile(written)
    assert profile.health, text
    assert profile.tables.columns, text
    answered = _answers(dep, written)
    rc = main(["--quiet", "--profile", str(answered), "--base-url", dep.base_url,
               "--database-url", dep.dsn, "--env-file", str(dep.env_file)])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0, text + out
