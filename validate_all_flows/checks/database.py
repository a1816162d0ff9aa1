"""Database checks: reachable, every migration applied and unmodified, the expected tables there."""

from __future__ import annotations

from validate_all_flows.check_model import CheckResult, Status, check
from validate_all_flows.embedded.migrate import MIGRATIONS_DIR, MigrationState, migration_status
from validate_all_flows.migration_sources import alembic_heads, sql_dir_objects
from validate_all_flows.profile import Migrations
from validate_all_flows.redact import redact_url
from validate_all_flows.target import Target


@check("database")
def database(t: Target) -> list[CheckResult]:
    """The database is reachable, migrated and has the expected schema."""
    if not t.database_url:
        why = "no database given (--database-url)"
        return [
            CheckResult(f"database.{n}", title, Status.SKIP, why)
            for n, title in (
                ("reachable", "database reachable"),
                ("migrations", "every migration applied and unmodified"),
                ("schema", "expected tables, columns and indexes present"),
            )
        ]
    where = redact_url(t.database_url)
    try:
        version = t.pool().execute("SHOW server_version")[0][0]
    except Exception as exc:
        return [
            CheckResult(
                "database.reachable",
                "database reachable",
                Status.FAIL,
                t.redact(f"cannot query {where}: {exc}"),
                fix="check DATABASE_URL, the network path and that PostgreSQL is running",
            )
        ]
    out = [
        CheckResult(
            "database.reachable",
            "database reachable",
            Status.PASS,
            f"PostgreSQL {version} at {where}",
        )
    ]
    out.append(migrations(t))
    out.append(schema(t))
    return out


def migrations(t: Target) -> CheckResult:
    """database.migrations for the profile's migration source."""
    m = t.profile.migrations
    title = "every migration applied and unmodified"
    cid = "database.migrations"
    if m.source == "none":
        why = f"the profile ({t.profile.name}) declares no migration source"
        return CheckResult(cid, title, Status.SKIP, why)
    if m.source == "alembic":
        return _alembic(t, m)
    if m.source == "flyway":
        return _flyway(t, m)
    if m.source == "sql-dir":
        return _sql_dir(t, m)
    states = migration_status(t.pool(), m.directory or MIGRATIONS_DIR)
    bad = [s for s in states if s.state is not MigrationState.APPLIED]
    if bad:
        return CheckResult(
            cid,
            title,
            Status.FAIL,
            f"{len(bad)} of {len(states)} migrations not as shipped",
            evidence=[f"{s.version}: {s.state.value}" for s in bad],
            fix="apply pending migrations: python -m validate_all_flows.embedded.migrate "
            "$DATABASE_URL; never edit an applied migration, add a new one",
        )
    return CheckResult(cid, title, Status.PASS, f"{len(states)} applied")


def _exists(t: Target, table: str) -> bool:
    return bool(t.pool().execute("SELECT to_regclass($1) IS NOT NULL", (table,))[0][0])


def _alembic(t: Target, m: Migrations) -> CheckResult:
    cid, title = "database.migrations", "alembic_version at the head revision"
    table = m.table or "alembic_version"
    if m.directory is not None:
        try:
            heads, n = alembic_heads(m.directory)
        except ValueError as exc:
            return CheckResult(cid, title, Status.ERROR, str(exc), fix="fix the versions folder")
        if not heads:
            why = f"no Alembic revision files in {m.directory}"
            return CheckResult(cid, title, Status.ERROR, why, fix="point directory at versions/")
        expected, where = heads, f"the head(s) of {n} revisions in {m.directory}"
    elif m.revision:
        expected, where = {m.revision}, "the profile's revision"
    else:
        expected, where = set(), ""
    if not _exists(t, table):
        return CheckResult(
            cid,
            title,
            Status.FAIL,
            f"no {table} table: the migrations were never applied",
            fix="run `alembic upgrade head` against this database",
        )
    rows = {str(r[0]) for r in t.pool().execute(f'SELECT version_num FROM "{table}"')}
    if not expected:
        at = ", ".join(sorted(rows)) or "no revision"
        why = (
            f"{table} at {at}; the head is not known here: give database.migrations.directory "
            "(the versions folder) or revision to judge it"
        )
        return CheckResult(cid, title, Status.FAIL if not rows else Status.SKIP, why)
    if rows != expected:
        return CheckResult(
            cid,
            title,
            Status.FAIL,
            f"{table} at {', '.join(sorted(rows)) or 'nothing'}, expected {where}",
            [f"expected: {', '.join(sorted(expected))}"],
            "run `alembic upgrade head` (and deploy the code whose versions/ matches)",
        )
    return CheckResult(cid, title, Status.PASS, f"{table} at {', '.join(sorted(rows))}, {where}")


def _flyway(t: Target, m: Migrations) -> CheckResult:
    cid, title = "database.migrations", "every Flyway migration applied successfully"
    table = m.table or "flyway_schema_history"
    if not _exists(t, table):
        return CheckResult(
            cid,
            title,
            Status.FAIL,
            f"no {table} table: Flyway never ran here",
            fix="run `flyway migrate` against this database",
        )
    rows = t.pool().execute(
        f"SELECT coalesce(version, '(repeatable)'), description, success FROM \"{table}\" "
        "ORDER BY installed_rank"
    )
    failed = [f"{v} {d}: failed" for v, d, ok in rows if not ok]
    if not rows or failed:
        found = f"{len(failed)} failed migration(s)" if failed else f"{table} is empty"
        return CheckResult(
            cid,
            title,
            Status.FAIL,
            found,
            failed,
            "repair and rerun: `flyway repair; flyway migrate`",
        )
    latest = [v for v, _, _ in rows if v != "(repeatable)"]
    found = f"{len(rows)} applied, latest version {latest[-1] if latest else '-'}"
    return CheckResult(cid, title, Status.PASS, found)


def _sql_dir(t: Target, m: Migrations) -> CheckResult:
    cid, title = "database.migrations", "every hand-applied SQL file's objects present"
    if m.directory is None:
        why = "the SQL files' folder is not given (database.migrations.directory)"
        return CheckResult(cid, title, Status.SKIP, why + "; database.schema judges the tables")
    objs = sql_dir_objects(m.directory)
    if not objs.files:
        why = f"no *.sql files in {m.directory}"
        return CheckResult(cid, title, Status.ERROR, why, fix="point directory at the SQL files")
    have, indexed_names = _columns(t), _index_names(t)
    missing = sorted(f"table {x}" for x in objs.tables if x not in have)
    missing += sorted(
        f"column {tb}.{c}" for tb, c in objs.columns if tb in have and c not in have[tb]
    )
    missing += sorted(f"index {i}" for i in objs.indexes if i not in indexed_names)
    counts = f"{len(objs.tables)} tables, {len(objs.columns)} columns, {len(objs.indexes)} indexes"
    if missing:
        return CheckResult(
            cid,
            title,
            Status.FAIL,
            f"{len(missing)} object(s) of {len(objs.files)} SQL files missing",
            missing[:30],
            f'apply the files in order: for f in {m.directory}/*.sql; do psql "$DATABASE_URL" '
            '-v ON_ERROR_STOP=1 -f "$f"; done (after checking which ran)',
        )
    found = f"{len(objs.files)} SQL files applied: the {counts} they create are present"
    return CheckResult(cid, title, Status.PASS, found)


def _columns(t: Target) -> dict[str, set[str]]:
    rows = t.pool().execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema()"
    )
    have: dict[str, set[str]] = {}
    for table, column in rows:
        have.setdefault(table, set()).add(column)
    return have


def _index_names(t: Target) -> set[str]:
    rows = t.pool().execute(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema()"
    )
    return {str(r[0]) for r in rows}


def schema(t: Target) -> CheckResult:
    """database.schema: the profile's tables, columns and indexes."""
    cid, title = "database.schema", "expected tables, columns and indexes present"
    expected = dict(t.profile.tables.columns)
    expected_indexes = list(t.profile.tables.indexes)
    if not expected and not expected_indexes:
        why = f"the profile ({t.profile.name}) declares no tables (database.tables)"
        return CheckResult(cid, title, Status.SKIP, why)
    have = _columns(t)
    missing = [f"table {table}" for table in expected if table not in have]
    missing += [
        f"{table}.{col}"
        for table, cols in expected.items()
        if table in have
        for col in cols
        if col not in have[table]
    ]
    # Only an index PostgreSQL can use for the lookup counts: a failed CREATE INDEX CONCURRENTLY
    # leaves one INVALID (never used by the planner), and a partial one serves the lookup only
    # when its predicate is implied by it (``col IS NOT NULL``, as migration 010 writes them).
    usable: set[tuple[str, str]] = set()
    unusable: dict[tuple[str, str], list[str]] = {}
    for table, column, name, valid, ready, predicate in t.pool().execute(
        "SELECT c.relname::text, a.attname::text, ic.relname::text, i.indisvalid, "
        "i.indisready AND i.indislive, pg_get_expr(i.indpred, i.indrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indrelid "
        "JOIN pg_class ic ON ic.oid = i.indexrelid "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0] "
        "WHERE c.relnamespace = current_schema()::regnamespace"
    ):
        partial = predicate is not None and predicate.strip("() ") != f"{column} IS NOT NULL"
        faults = [
            w
            for w, bad in (
                ("INVALID", not valid),
                ("not ready", not ready),
                (f"partial (WHERE {predicate})", partial),
            )
            if bad
        ]
        if faults:
            unusable.setdefault((table, column), []).append(f"{name} is {' and '.join(faults)}")
        else:
            usable.add((table, column))
    for table, col in expected_indexes:
        if table not in have or (table, col) in usable:
            continue
        broken = unusable.get((table, col))
        missing.append(
            f"index on {table} ({col})"
            + (f": {'; '.join(broken)} (drop it and CREATE INDEX it again)" if broken else "")
        )
    if missing:
        return CheckResult(
            cid,
            title,
            Status.FAIL,
            f"{len(missing)} missing",
            evidence=missing,
            fix="apply the migrations; restore dropped tables and indexes from them",
        )
    n = sum(len(c) for c in expected.values())
    if n or not expected:
        found = f"{n} columns and {len(expected_indexes)} lookup indexes present"
    else:
        found = f"{len(expected)} tables and {len(expected_indexes)} lookup indexes present"
    return CheckResult(cid, title, Status.PASS, found, [f"tables: {', '.join(expected)}"])
