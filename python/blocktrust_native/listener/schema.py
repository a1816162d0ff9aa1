"""The listener's tables, installed by the library (as ``PgKeyStore`` and ``PgRateLimiter`` do).

    from blocktrust_native.listener.schema import create_schema
    create_schema(pool)   # what Listener(..., create=True), the default, does when one is missing

The DDL is ``schema.sql`` beside this module (:data:`SCHEMA_SQL`): ``chain_events``,
``chain_blocks``, ``chain_reorgs`` and ``listener_checkpoints``. It is idempotent and safe from
several processes at once; an application that migrates its database itself applies the same
text from its migrations (the embedded stack's migration ``007_chain_events`` does), and it is
never edited once released (migrations record its checksum). The tables an application updates
from the logs (:class:`~blocktrust_native.listener.Projection`) are the application's own.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

__all__ = ["SCHEMA_SQL", "TABLES", "create_schema", "missing_tables"]

#: The DDL of the listener's tables (``schema.sql``).
SCHEMA_SQL = (
    resources.files("blocktrust_native.listener").joinpath("schema.sql").read_text(encoding="utf-8")
)

#: The tables :data:`SCHEMA_SQL` creates.
TABLES = ("chain_events", "chain_blocks", "chain_reorgs", "listener_checkpoints")


def missing_tables(pool: Any) -> list[str]:
    """The listener's tables that the database behind ``pool`` (a ``Pool`` or a ``Connection``)
    lacks in its search path; reads the catalogue only."""
    rows = pool.execute(
        "SELECT t FROM unnest($1::text[]) AS t WHERE to_regclass(t) IS NULL",
        ("{" + ",".join(TABLES) + "}",),
    )
    return [str(r[0]) for r in rows]


def create_schema(pool: Any) -> None:
    """Creates the listener's tables and indexes that are missing (``pool``: a ``Pool``); safe to
    repeat and to run from several processes at once."""
    with pool.connection() as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", ("blocktrust.listener.schema",))
        conn.execute(SCHEMA_SQL)
