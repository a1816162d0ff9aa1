"""The migration runner applies each file once, in order, atomically, and refuses edited history."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from blocktrust_native.listener.schema import SCHEMA_SQL
from blocktrust_native.pool import Pool
from validate_all_flows.embedded.migrate import (
    LIBRARY_MIGRATIONS,
    MigrationError,
    MigrationState,
    apply_migrations,
    load_migrations,
    migration_status,
)

pytestmark = pytest.mark.pg


@pytest.fixture
def pool(fresh_pg_dsn: str):
    with Pool(fresh_pg_dsn, min_size=0, max_size=4) as p:
        yield p


def _copy(tmp_path: Path, names: list[str]) -> Path:
    d = tmp_path / "migrations"
    d.mkdir()
    for n, sql in names:
        (d / n).write_text(sql)
    return d


def test_the_shipped_migrations_apply_once_in_order(pool: Pool) -> None:
    versions = [m.version for m in load_migrations()]
    assert versions == sorted(versions)
    assert apply_migrations(pool) == versions
    assert apply_migrations(pool) == []  # idempotent
    states = migration_status(pool)
    assert [s.state for s in states] == [MigrationState.APPLIED] * len(versions)
    tables = {
        r[0] for r in pool.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")
    }
    assert {"users", "failsafe_events", "schema_migrations"} <= tables


def test_an_edited_applied_migration_is_an_error(pool: Pool, tmp_path: Path) -> None:
    d = _copy(
        tmp_path,
        [("001_a.sql", "CREATE TABLE a (x int);"), ("002_b.sql", "CREATE TABLE b (x int);")],
    )
    assert apply_migrations(pool, d) == ["001_a", "002_b"]
    (d / "001_a.sql").write_text("CREATE TABLE a (x bigint);")
    (d / "003_c.sql").write_text("CREATE TABLE c (x int);")
    with pytest.raises(MigrationError, match="001_a"):
        apply_migrations(pool, d)
    # nothing after the check ran: 003 is still pending
    states = {s.version: s.state for s in migration_status(pool, d)}
    assert states == {
        "001_a": MigrationState.MODIFIED,
        "002_b": MigrationState.APPLIED,
        "003_c": MigrationState.PENDING,
    }


def test_a_failing_migration_leaves_nothing_half_applied(pool: Pool, tmp_path: Path) -> None:
    d = _copy(
        tmp_path,
        [
            ("001_ok.sql", "CREATE TABLE ok (x int);"),
            ("002_bad.sql", "CREATE TABLE half (x int); INSERT INTO nowhere VALUES (1);"),
        ],
    )
    with pytest.raises(MigrationError, match=r"002_bad\.sql failed"):
        apply_migrations(pool, d)
    assert pool.execute("SELECT to_regclass('half') IS NULL")[0][0] is True
    assert [r[0] for r in pool.execute("SELECT version FROM schema_migrations")] == ["001_ok"]


def test_skip_leaves_a_migration_pending(pool: Pool, tmp_path: Path) -> None:
    d = _copy(tmp_path, [("001_a.sql", "SELECT 1;"), ("002_b.sql", "SELECT 2;")])
    assert apply_migrations(pool, d, skip=["002_b"]) == ["001_a"]
    assert migration_status(pool, d)[1].state is MigrationState.PENDING


def test_bad_file_names_are_refused(tmp_path: Path) -> None:
    d = _copy(tmp_path, [("first.sql", "SELECT 1;")])
    with pytest.raises(MigrationError, match=r"first\.sql"):
        load_migrations(d)
    shutil.rmtree(d)
    d = _copy(tmp_path, [("001_a.sql", "SELECT 1;"), ("001_b.sql", "SELECT 1;")])
    with pytest.raises(MigrationError, match="001"):
        load_migrations(d)


def test_concurrent_starters_apply_each_file_once(pool: Pool, tmp_path: Path) -> None:
    # Each file fails if run twice (CREATE TABLE without IF NOT EXISTS).
    d = _copy(tmp_path, [(f"{i:03d}_t.sql", f"CREATE TABLE t{i} (x int);") for i in range(1, 9)])
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            results.append(apply_migrations(pool, d))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    applied = sorted(v for r in results for v in r)
    assert applied == [f"{i:03d}_t" for i in range(1, 9)]


def test_a_database_migrated_before_the_listener_owned_its_tables_stays_applied(
    pool: Pool,
) -> None:
    # 007 was a file of the folder (checksum below) until the listener's DDL moved into the
    # library; databases that recorded it have the same tables and stay migrated.
    assert LIBRARY_MIGRATIONS["007_chain_events"] == SCHEMA_SQL
    apply_migrations(pool)
    former = "2fc709c0f712a00e7659533bdff3dc633dc0fb37ce017a42f6dc132c4df3b9b8"
    set_007 = "UPDATE schema_migrations SET checksum = $1 WHERE version = '007_chain_events'"
    pool.execute(set_007, (former,))
    assert {s.state for s in migration_status(pool)} == {MigrationState.APPLIED}
    assert apply_migrations(pool) == []
    pool.execute(set_007, ("0" * 64,))  # any other text is an edit
    states = {s.version: s.state for s in migration_status(pool)}
    assert states["007_chain_events"] is MigrationState.MODIFIED
    with pytest.raises(MigrationError, match="007_chain_events"):
        apply_migrations(pool)
