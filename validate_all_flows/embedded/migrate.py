"""Applies the SQL migrations in ``migrations/`` in order, once each, through the native pool.

Tables a library capability owns are not defined here: their migration applies the DDL the
library ships (:data:`LIBRARY_MIGRATIONS`: ``007_chain_events`` is the listener's
``blocktrust_native/listener/schema.sql``), at its place in the order, like a file.

A ``schema_migrations`` table records each applied file with the SHA-256 of its text, so an edited
migration that was already applied is an error rather than silently ignored. A session-level
advisory lock makes concurrent starters (two replicas booting at once) apply each file exactly once.
Each file runs in its own transaction together with its bookkeeping row: it is applied completely or
not at all.

    python -m validate_all_flows.embedded.migrate postgresql://.../blocktrust
"""

from __future__ import annotations

import enum
import hashlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blocktrust_native.listener.schema import SCHEMA_SQL as LISTENER_SCHEMA_SQL
from validate_all_flows.embedded import migrations_dir

__all__ = [
    "LIBRARY_MIGRATIONS",
    "MIGRATIONS_DIR",
    "Migration",
    "MigrationError",
    "MigrationState",
    "MigrationStatus",
    "apply_migrations",
    "load_migrations",
    "migration_status",
]

MIGRATIONS_DIR = migrations_dir()

#: Migrations of :data:`MIGRATIONS_DIR` whose SQL the library ships (it owns those tables):
#: version -> SQL text, applied and checksummed like a file of that name.
LIBRARY_MIGRATIONS: dict[str, str] = {"007_chain_events": LISTENER_SCHEMA_SQL}

# Checksums of earlier texts of a migration that made the same objects: a database that applied
# one of them has the migration applied. 007 was a file of this folder (the same tables, created
# without IF NOT EXISTS) until the listener's DDL moved into the library.
_FORMER_CHECKSUMS = {
    "007_chain_events": frozenset(
        {"2fc709c0f712a00e7659533bdff3dc633dc0fb37ce017a42f6dc132c4df3b9b8"}
    ),
}

# pg_advisory_lock key: a fixed 64-bit number derived from the text "blocktrust.migrations".
_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"blocktrust.migrations").digest()[:8], "big", signed=True
)

_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


class MigrationError(RuntimeError):
    """Raised when migrations cannot be applied: bad file name, edited applied file, failed SQL."""


@dataclass(frozen=True)
class Migration:
    """One migration: its version (the file name without .sql), SQL text and checksum, and the
    checksums of earlier texts of it that made the same objects (``former``)."""

    version: str
    sql: str
    checksum: str
    former: frozenset[str] = frozenset()

    def recorded_as(self, checksum: str) -> bool:
        """Whether a database that recorded ``checksum`` for this version has it applied."""
        return checksum == self.checksum or checksum in self.former


def _migration(version: str, text: str) -> Migration:
    checksum = hashlib.sha256(text.encode()).hexdigest()
    return Migration(version, text, checksum, _FORMER_CHECKSUMS.get(version, frozenset()))


class MigrationState(enum.Enum):
    """Where one migration stands in a database."""

    APPLIED = "applied"
    PENDING = "pending"
    MODIFIED = "modified"  # applied, but the file changed since
    UNKNOWN = "unknown"  # recorded in the database, no such file here


@dataclass(frozen=True)
class MigrationStatus:
    """The state of one migration version in a database."""

    version: str
    state: MigrationState


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Reads ``NNN_name.sql`` files in version order (with :data:`LIBRARY_MIGRATIONS` for the
    shipped folder); a file not named so is an error."""
    out = []
    for path in sorted(directory.glob("*.sql")):
        stem = path.stem
        prefix = stem.split("_", 1)[0]
        if not (prefix.isdigit() and len(prefix) == 3 and "_" in stem):
            raise MigrationError(f"{path.name}: migration files must be named NNN_description.sql")
        out.append(_migration(stem, path.read_text(encoding="utf-8")))
    if directory.resolve() == MIGRATIONS_DIR.resolve():
        out += [_migration(version, text) for version, text in LIBRARY_MIGRATIONS.items()]
        out.sort(key=lambda m: m.version)
    numbers = [m.version[:3] for m in out]
    dupes = sorted({n for n in numbers if numbers.count(n) > 1})
    if dupes:
        raise MigrationError(f"two migration files share the number {', '.join(dupes)}")
    return out


def _applied(conn: Any) -> dict[str, str]:
    rows = conn.execute("SELECT version, checksum FROM schema_migrations")
    return {str(v): str(c) for v, c in rows}


def _table_exists(conn: Any) -> bool:
    rows = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    return bool(rows[0][0])


def migration_status(pool: Any, directory: Path = MIGRATIONS_DIR) -> list[MigrationStatus]:
    """Compares the files with what the database recorded, without changing anything."""
    files = load_migrations(directory)
    with pool.connection() as conn:
        applied = _applied(conn) if _table_exists(conn) else {}
    out = []
    for m in files:
        if m.version not in applied:
            out.append(MigrationStatus(m.version, MigrationState.PENDING))
        elif not m.recorded_as(applied[m.version]):
            out.append(MigrationStatus(m.version, MigrationState.MODIFIED))
        else:
            out.append(MigrationStatus(m.version, MigrationState.APPLIED))
    known = {m.version for m in files}
    out += [MigrationStatus(v, MigrationState.UNKNOWN) for v in sorted(applied) if v not in known]
    return out


def apply_migrations(
    pool: Any,
    directory: Path = MIGRATIONS_DIR,
    *,
    skip: Sequence[str] = (),
    log: Callable[[str], None] | None = None,
) -> list[str]:
    """Applies every pending migration in order and returns the versions applied.

    ``skip`` names versions to leave out (the embedded stack's fault switch uses it). Raises
    ``MigrationError`` if an applied file was edited, naming it, before applying anything.
    """
    say = log or (lambda _m: None)
    files = load_migrations(directory)
    done: list[str] = []
    with pool.connection() as conn:
        conn.execute("SELECT pg_advisory_lock($1)", [_LOCK_KEY])
        try:
            conn.execute(_TABLE)
            applied = _applied(conn)
            edited = [
                m.version
                for m in files
                if m.version in applied and not m.recorded_as(applied[m.version])
            ]
            if edited:
                raise MigrationError(
                    f"applied migration(s) changed since they ran: {', '.join(edited)}; "
                    "write a new migration instead of editing an applied one"
                )
            for m in files:
                if m.version in applied or m.version in skip:
                    continue
                say(f"applying {m.version}")
                try:
                    with conn.transaction():
                        conn.execute(m.sql)
                        conn.execute(
                            "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                            [m.version, m.checksum],
                        )
                except Exception as exc:
                    raise MigrationError(f"{m.version}.sql failed: {exc}") from exc
                done.append(m.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock($1)", [_LOCK_KEY])
    return done


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m validate_all_flows.embedded.migrate DATABASE_URL`` applies pending migrations."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m validate_all_flows.embedded.migrate DATABASE_URL", file=sys.stderr)
        return 2
    from blocktrust_native.pool import Pool

    with Pool(args[0], min_size=1, max_size=1) as pool:
        applied = apply_migrations(pool, log=print)
    print(f"{len(applied)} migration(s) applied")
    return 0


if __name__ == "__main__":
    sys.exit(main())
