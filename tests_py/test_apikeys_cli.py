"""python -m blocktrust_native.apikeys against a real PostgreSQL cluster: every command, its exit
codes, and that no secret reaches argv, stderr or an error message."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from blocktrust_native.apikeys import KeyRing
from blocktrust_native.apikeys.store import PgKeyStore
from blocktrust_native.pool import Pool

pytestmark = pytest.mark.pg

ROOT = Path(__file__).resolve().parents[1]
SALT = "cli-test-server-secret-0123456789abcdef"
OLD_SALT = "cli-test-previous-secret-abcdef0123456789"


def _cli(*args: str, dsn: str | None, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "API_KEY_SALT", "API_KEY_SALT_PREVIOUS", "ENVIRONMENT")
    }
    base["PYTHONPATH"] = os.pathsep.join([str(ROOT / "python"), str(ROOT)])
    if dsn is not None:
        base["DATABASE_URL"] = dsn
    p = subprocess.run(
        [sys.executable, "-m", "blocktrust_native.apikeys", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**base, **env},
        check=False,
    )
    for secret in (SALT, OLD_SALT, env.get("API_KEY_SALT", SALT)):
        assert secret not in p.stdout + p.stderr
    return p


def _store(dsn: str, *secrets: str):
    pool = Pool(dsn, min_size=0, max_size=2)
    return pool, PgKeyStore(pool, KeyRing("btk_live", *secrets), cache=False)


def _token(p: subprocess.CompletedProcess[str]) -> str:
    (line,) = p.stdout.splitlines()
    assert line.startswith("btk_live_")
    assert len(line) == len("btk_live_") + 46
    return line


def test_issue_list_rotate_revoke(fresh_pg_dsn: str) -> None:
    p = _cli(
        "issue",
        "--role",
        "admin",
        "--owner",
        "ops",
        "--expires",
        "90d",
        dsn=fresh_pg_dsn,
        API_KEY_SALT=SALT,
    )
    assert p.returncode == 0, p.stderr
    token = _token(p)  # stdout holds the token alone; stderr says what it is, without it
    key_id = token[len("btk_live_") : len("btk_live_") + 12]
    assert token not in p.stderr
    assert f"issued {key_id} (role admin, owner ops, expires " in p.stderr
    pool, store = _store(fresh_pg_dsn, SALT)
    try:
        info = store.authenticate(token)
        assert info is not None
        assert (info.role, info.owner) == ("admin", "ops")
        assert info.expires_at is not None
        left = info.expires_at - dt.datetime.now(dt.timezone.utc)
        assert dt.timedelta(days=89) < left <= dt.timedelta(days=90)

        p = _cli("list", "--json", dsn=fresh_pg_dsn, API_KEY_SALT=SALT)
        assert p.returncode == 0, p.stderr
        (row,) = [json.loads(line) for line in p.stdout.splitlines()]
        assert (row["key_id"], row["role"], row["active"]) == (key_id, "admin", True)
        assert token not in p.stdout
        table = _cli("list", dsn=fresh_pg_dsn, API_KEY_SALT=SALT).stdout
        assert key_id in table
        assert "active" in table

        p = _cli("rotate", key_id, "--overlap", "1h", dsn=fresh_pg_dsn, API_KEY_SALT=SALT)
        assert p.returncode == 0, p.stderr
        successor = _token(p)
        assert successor != token
        assert store.authenticate(successor).role == "admin"
        old = store.authenticate(token)  # still works for the overlap, then expires
        assert old is not None
        assert old.expires_at - dt.datetime.now(dt.timezone.utc) <= dt.timedelta(hours=1)

        p = _cli("revoke", key_id, dsn=fresh_pg_dsn, API_KEY_SALT=SALT)
        assert p.returncode == 0, p.stderr
        assert store.authenticate(token) is None
        again = _cli("revoke", key_id, dsn=fresh_pg_dsn, API_KEY_SALT=SALT)
        assert again.returncode == 1
        assert "already revoked" in again.stderr
        p = _cli("rotate", key_id, dsn=fresh_pg_dsn, API_KEY_SALT=SALT)
        assert p.returncode == 1
        assert "revoked or expired" in p.stderr
        assert p.stdout == ""
        p = _cli("list", "--all", "--json", dsn=fresh_pg_dsn, API_KEY_SALT=SALT)
        states = {json.loads(x)["key_id"]: json.loads(x)["active"] for x in p.stdout.splitlines()}
        assert states == {key_id: False, successor[9:21]: True}
    finally:
        store.close()
        pool.close()


def test_rotate_secret_keeps_old_keys_working_through_the_overlap(fresh_pg_dsn: str) -> None:
    token = _token(_cli("issue", "--role", "client", dsn=fresh_pg_dsn, API_KEY_SALT=OLD_SALT))
    p = _cli("rotate-secret", dsn=None, API_KEY_SALT=OLD_SALT)
    assert p.returncode == 0, p.stderr
    (new_salt,) = p.stdout.splitlines()
    assert len(new_salt.encode()) >= 32
    assert new_salt != OLD_SALT
    assert "API_KEY_SALT_PREVIOUS" in p.stderr
    # During the overlap: the ring of new and old accepts the old key and re-digests it.
    pool, store = _store(fresh_pg_dsn, new_salt, OLD_SALT)
    try:
        assert store.authenticate(token) is not None
    finally:
        store.close()
        pool.close()
    # After it, the new secret alone accepts the key (its digest was upgraded on first use).
    pool, store = _store(fresh_pg_dsn, new_salt)
    try:
        assert store.authenticate(token) is not None
    finally:
        store.close()
        pool.close()
    # Keys issued by the CLI during the overlap use the new secret.
    t2 = _token(
        _cli(
            "issue",
            "--role",
            "client",
            dsn=fresh_pg_dsn,
            API_KEY_SALT=new_salt,
            API_KEY_SALT_PREVIOUS=OLD_SALT,
        )
    )
    pool, store = _store(fresh_pg_dsn, new_salt)
    try:
        assert store.authenticate(t2) is not None
    finally:
        store.close()
        pool.close()


def test_seed_is_idempotent_and_refused_in_production(fresh_pg_dsn: str, tmp_path: Path) -> None:
    f = tmp_path / "dev-keys.yaml"
    f.write_text(
        "keys:\n"
        "  - {role: admin, owner: dev-admin}\n"
        "  - {role: client, owner: dev-app, expires: 7d, scopes: [read]}\n"
    )
    p = _cli("seed", str(f), dsn=fresh_pg_dsn, API_KEY_SALT=SALT)
    assert p.returncode == 0, p.stderr
    rows = [line.split("\t") for line in p.stdout.splitlines()]
    assert [(o, r) for o, r, _ in rows] == [("dev-admin", "admin"), ("dev-app", "client")]
    pool, store = _store(fresh_pg_dsn, SALT)
    try:
        for owner, role, token in rows:
            info = store.authenticate(token)
            assert info is not None
            assert (info.owner, info.role) == (owner, role)
    finally:
        store.close()
        pool.close()
    again = _cli("seed", str(f), dsn=fresh_pg_dsn, API_KEY_SALT=SALT)
    assert again.returncode == 0
    assert again.stdout == ""
    assert "0 key(s) issued, 2 kept" in again.stderr
    prod = _cli("seed", str(f), dsn=fresh_pg_dsn, API_KEY_SALT=SALT, ENVIRONMENT="production")
    assert prod.returncode == 2
    assert "ENVIRONMENT is production" in prod.stderr


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["issue", "--role", "client"], {}, "API_KEY_SALT is not set"),
        (["issue", "--role", "client"], {"API_KEY_SALT": "short"}, "API_KEY_SALT is 5 bytes"),
        (["issue", "--role", "root"], {"API_KEY_SALT": SALT}, "invalid choice: 'root'"),
        (
            ["issue", "--role", "client", "--expires", "soon"],
            {"API_KEY_SALT": SALT},
            "not a duration: 'soon'",
        ),
        (["rotate", "abc", "--overlap=-1h"], {"API_KEY_SALT": SALT}, "not a duration"),
        (["seed", "/nonexistent/keys.yaml"], {"API_KEY_SALT": SALT}, "No such file"),
        ([], {}, "the following arguments are required"),
    ],
)
def test_bad_usage_exits_2(
    args: list[str], env: dict[str, str], message: str, fresh_pg_dsn: str
) -> None:
    p = _cli(*args, dsn=fresh_pg_dsn, **env)
    assert p.returncode == 2, p.stderr
    assert message in p.stderr
    assert p.stdout == ""


def test_missing_database_and_unreachable_database(fresh_pg_dsn: str) -> None:
    p = _cli("list", dsn=None, API_KEY_SALT=SALT)
    assert p.returncode == 2
    assert "DATABASE_URL is not set" in p.stderr
    from validate_all_flows.embedded.postgres import free_port

    dead = f"postgresql://keys:hunter2-db-password@127.0.0.1:{free_port()}/keys"
    p = _cli("list", dsn=dead, API_KEY_SALT=SALT)
    assert p.returncode == 1
    assert p.stderr.startswith("failed: ")
    assert "hunter2-db-password" not in p.stderr
    # unknown key ids are refused, not errors
    p = _cli("revoke", "AAAAAAAAAAAA", dsn=fresh_pg_dsn, API_KEY_SALT=SALT)
    assert p.returncode == 1
