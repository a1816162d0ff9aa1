"""Shared fixtures; each family lives in its own fix_*.py module."""

from fix_pg import fresh_pg_dsn, pg_cluster, pg_dsn

__all__ = ["fresh_pg_dsn", "pg_cluster", "pg_dsn"]
