"""The embedded Blocktrust stack that ``validate_all_flows`` brings up when given no target."""

from __future__ import annotations

from pathlib import Path

__all__ = ["migrations_dir"]


def migrations_dir() -> Path:
    """The directory of the numbered SQL migrations (``NNN_name.sql``, applied in name order;
    007, the listener's tables, is the library's DDL: ``migrate.LIBRARY_MIGRATIONS``)."""
    return Path(__file__).resolve().parent / "migrations"
