"""Database checks: reachable, every migration applied and unmodified, the expected tables there."""

from __future__ import annotations

from validate_all_flows.checks import CheckResult, Status, check
from validate_all_flows.embedded.migrate import MigrationState, migration_status
from validate_all_flows.target import Target, redact_url

# The tables and columns the reference service cannot run without.
EXPECTED_COLUMNS = {
    "users": ["email", "password_hash", "duress_password_hash", "wallet_address", "kyc_status"],
    "identity_nfts": ["user_id", "token_id", "status"],
    "signatures": ["user_id", "document_sha256"],
    "proofs": ["signature_id", "status", "tx_hash"],
    "failsafe_events": ["user_id", "status", "execute_after"],
    "chain_events": ["chain_id", "tx_hash", "log_index"],
    "listener_checkpoints": ["listener", "next_block", "lag_seconds"],
    "monitor_metrics": ["name", "value"],
    "monitor_heartbeats": ["instance", "beat_at", "stopped_at"],  # read by workers.monitor
    # the chain worker's record of what it sent, its nonces and heartbeat (migration 011)
    "chain_txs": ["job_kind", "job_id", "nonce", "tx_hash", "raw_tx", "status"],
    "chain_nonces": ["chain_id", "address", "next_nonce"],
    "chain_workers": ["worker", "sender", "beat_at", "stopped_at"],  # read by workers.chain
}

# The lookups the listener makes for every batch of chain events (migration 010): an index that
# starts with the column, whatever its name, or ingest scans the table and slows as it grows.
EXPECTED_INDEXES = [
    ("proofs", "tx_hash"),
    ("failsafe_events", "tx_hash"),
    ("identity_nfts", "token_id"),
]


@check("database", ids=("database.reachable", "database.migrations", "database.schema"))
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
    states = migration_status(t.pool())
    bad = [s for s in states if s.state is not MigrationState.APPLIED]
    title = "every migration applied and unmodified"
    if bad:
        out.append(
            CheckResult(
                "database.migrations",
                title,
                Status.FAIL,
                f"{len(bad)} of {len(states)} migrations not as shipped",
                evidence=[f"{s.version}: {s.state.value}" for s in bad],
                fix="apply pending migrations: python -m validate_all_flows.embedded.migrate "
                "$DATABASE_URL; never edit an applied migration, add a new one",
            )
        )
    else:
        out.append(CheckResult("database.migrations", title, Status.PASS, f"{len(states)} applied"))
    rows = t.pool().execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema()"
    )
    have: dict[str, set[str]] = {}
    for table, column in rows:
        have.setdefault(table, set()).add(column)
    missing = [
        f"{table}.{col}" if table in have else f"table {table}"
        for table, cols in EXPECTED_COLUMNS.items()
        for col in (cols if table in have else cols[:1])
        if table not in have or col not in have[table]
    ]
    indexed = {
        (table, column)
        for table, column in t.pool().execute(
            "SELECT c.relname::text, a.attname::text FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indrelid "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0] "
            "WHERE c.relnamespace = current_schema()::regnamespace"
        )
    }
    missing += [
        f"index on {table} ({col})"
        for table, col in EXPECTED_INDEXES
        if table in have and (table, col) not in indexed
    ]
    title = "expected tables, columns and indexes present"
    if missing:
        out.append(
            CheckResult(
                "database.schema",
                title,
                Status.FAIL,
                f"{len(missing)} missing",
                evidence=missing,
                fix="apply the migrations; restore dropped tables and indexes from them",
            )
        )
    else:
        n = sum(len(c) for c in EXPECTED_COLUMNS.values())
        found = f"{n} columns and {len(EXPECTED_INDEXES)} lookup indexes present"
        out.append(CheckResult("database.schema", title, Status.PASS, found))
    return out
