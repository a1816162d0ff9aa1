"""The embedded stack's SQL migrations apply in order to a real cluster and enforce their rules.

The runner (checksums, advisory lock, migrations table) is tested with the runner; here each
migration (the folder's files and the library's DDL it applies) is applied in its own
transaction, as the runner does, with psycopg.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from blocktrust_native.listener.schema import SCHEMA_SQL
from validate_all_flows.checks.workers import CHAIN_JOBS
from validate_all_flows.embedded import migrations_dir
from validate_all_flows.embedded.migrate import LIBRARY_MIGRATIONS, load_migrations

pytestmark = pytest.mark.pg

EXPECTED = [
    "001_initial_schema",
    "002_add_wallet_fields",
    "003_add_nft_tables",
    "004_add_signature_tables",
    "005_failsafe_password",
    "006_failsafe_events",
    "007_chain_events",  # the listener's tables: the library's DDL, not a file here
    "008_monitor",
    "009_monitor_heartbeats",
    "010_listener_indexes",
    "011_chain_jobs",
    "012_chain_job_indexes",
]
ARGON = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"
H64 = "0x" + "ab" * 32
ADDR = "0x" + "12" * 20


def _files() -> list[Path]:
    return sorted(migrations_dir().glob("*.sql"))


def _migrations() -> list[str]:
    """The SQL of each migration, in order."""
    return [m.sql for m in load_migrations()]


def _apply(conn: psycopg.Connection, migrations: list[str]) -> None:
    for sql in migrations:
        with conn.transaction():
            conn.execute(sql)  # type: ignore[call-overload]


@pytest.fixture
def db(fresh_pg_dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fresh_pg_dsn, autocommit=True) as conn:
        yield conn


def test_files_are_the_expected_plain_sql_in_order() -> None:
    assert [m.version for m in load_migrations()] == EXPECTED
    assert [f.stem for f in _files()] == [v for v in EXPECTED if v not in LIBRARY_MIGRATIONS]
    assert LIBRARY_MIGRATIONS == {"007_chain_events": SCHEMA_SQL}
    for f in _files():
        text = f.read_text()
        assert text.startswith(f"-- {f.name[:3]} "), f.name
    for text in _migrations():
        # The runner owns the transaction: no transaction control inside a migration.
        assert not re.search(r"^\s*(BEGIN|COMMIT|ROLLBACK|START TRANSACTION)\b", text, re.I | re.M)


def test_all_apply_in_order_and_create_the_tables(db: psycopg.Connection) -> None:
    _apply(db, _migrations())
    tables = {
        r[0] for r in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    assert tables == {
        "users",
        "kyc_webhook_deliveries",
        "identity_nfts",
        "proof_batches",
        "signatures",
        "proofs",
        "failsafe_events",
        "chain_events",
        "chain_blocks",
        "chain_reorgs",
        "listener_checkpoints",
        "monitor_metrics",
        "monitor_alerts",
        "monitor_heartbeats",
        "chain_nonces",
        "chain_txs",
        "chain_workers",
    }
    # Applying a file twice is an error (the runner records what it applied and skips it).
    with pytest.raises(psycopg.errors.DuplicateTable):
        _apply(db, _migrations()[:1])


def test_duress_constraint_binds_new_rows_but_not_older_ones(db: psycopg.Connection) -> None:
    files = _migrations()
    _apply(db, files[:4])
    db.execute("INSERT INTO users (email, password_hash) VALUES ('old@x.io', %s)", (ARGON,))
    _apply(db, files[4:])  # an existing account without a duress hash does not block 005
    with pytest.raises(psycopg.errors.CheckViolation, match="users_duress_present"):
        db.execute("INSERT INTO users (email, password_hash) VALUES ('new@x.io', %s)", (ARGON,))
    db.execute(
        "INSERT INTO users (email, password_hash, duress_password_hash) VALUES ('n@x.io', %s, %s)",
        (ARGON, ARGON),
    )
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(
            "INSERT INTO users (email, password_hash, duress_password_hash) "
            "VALUES ('N@X.io', %s, %s)",
            (ARGON, ARGON),
        )


def test_constraints_reject_malformed_chain_values(db: psycopg.Connection) -> None:
    _apply(db, _migrations())
    uid = db.execute(
        "INSERT INTO users (email, password_hash, duress_password_hash, wallet_address, "
        "wallet_linked_at) VALUES ('a@x.io', %s, %s, %s, now()) RETURNING id",
        (ARGON, ARGON, ADDR),
    ).fetchone()[0]  # type: ignore[index]
    bad = [
        ("UPDATE users SET wallet_address = %s WHERE id = %s", (ADDR.upper(), uid)),
        (
            "INSERT INTO identity_nfts (user_id, chain_id, contract_address, wallet_address, "
            "status) VALUES (%s, 31337, %s, %s, 'active')",  # active needs a token id
            (uid, ADDR, ADDR),
        ),
        (
            "INSERT INTO failsafe_events (user_id, source, reason_hash, execute_after) "
            "VALUES (%s, 'login', 'not-a-hash', now())",
            (uid,),
        ),
        (
            "INSERT INTO monitor_alerts (check_name, fingerprint, severity, message, status) "
            "VALUES ('lag', 'f', 'critical', 'm', 'resolved')",  # resolved needs resolved_at
            (),
        ),
    ]
    for sql, args in bad:
        with pytest.raises(psycopg.errors.CheckViolation):
            db.execute(sql, args)  # type: ignore[arg-type]


def test_chain_events_are_idempotent_and_alerts_deduplicated(db: psycopg.Connection) -> None:
    _apply(db, _migrations())
    insert = (
        "INSERT INTO chain_events (chain_id, tx_hash, log_index, block_number, block_hash, "
        "contract_address, topics, data) VALUES (31337, %s, 0, 5, %s, %s, ARRAY[%s], '0x') "
        "ON CONFLICT (chain_id, tx_hash, log_index) DO NOTHING"
    )
    for _ in range(3):
        db.execute(insert, (H64, H64, ADDR, H64))
    assert db.execute("SELECT count(*) FROM chain_events").fetchone() == (1,)
    db.execute(
        "INSERT INTO listener_checkpoints (chain_id, listener, next_block, lag_blocks) "
        "VALUES (31337, 'main', 6, 0)"
    )
    alert = (
        "INSERT INTO monitor_alerts (check_name, fingerprint, severity, message) "
        "VALUES ('lag', 'lag:main', 'warning', 'behind')"
    )
    db.execute(alert)
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(alert)
    db.execute("UPDATE monitor_alerts SET status = 'resolved', resolved_at = now()")
    db.execute(alert)  # a new occurrence after the old one resolved


def test_what_watches_the_chain_worker_counts_through_indexes(db: psycopg.Connection) -> None:
    # workers.chain and the monitor's backlog gauges count, every cycle, each kind's pending and
    # failed jobs (checks/workers.py: chain_backlog, chain_worker): with the planner told to
    # avoid it, no count scans its table (012_chain_job_indexes for the failed ones and the
    # pending fail-safes; the worker's own indexes for the other pending ones).
    _apply(db, _migrations())
    db.execute("SET enable_seqscan = off")
    counts = []
    for _kind, table, pending, failed in CHAIN_JOBS:
        for states in (pending, failed):
            listed = ", ".join(f"'{s}'" for s in states)
            counts.append(
                f"SELECT count(*), min(created_at) FROM {table} WHERE status IN ({listed})"
            )
    counts.append(
        "SELECT id FROM failsafe_events WHERE status IN ('queued', 'submitted') "
        "AND execute_after < now() - make_interval(secs => 60)"
    )
    for sql in counts:
        plan = "\n".join(str(r[0]) for r in db.execute("EXPLAIN " + sql))  # type: ignore[call-overload]
        assert "Seq Scan" not in plan, f"{sql}\n{plan}"
