"""PostgreSQL fixtures: a throwaway cluster per session, or the one in BLOCKTRUST_TEST_DSN."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from validate_all_flows.embedded.postgres import TempPostgres


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[TempPostgres | None]:
    """The session's private cluster; None when BLOCKTRUST_TEST_DSN names an external one."""
    if os.environ.get("BLOCKTRUST_TEST_DSN"):
        yield None
        return
    with TempPostgres() as pg:
        yield pg


@pytest.fixture(scope="session")
def pg_dsn(pg_cluster: TempPostgres | None) -> str:
    """A DSN for a database the tests may freely write to (shared by the whole session)."""
    if pg_cluster is None:
        return os.environ["BLOCKTRUST_TEST_DSN"]
    return pg_cluster.create_database("blocktrust_test")


@pytest.fixture
def fresh_pg_dsn(pg_cluster: TempPostgres | None) -> str:
    """A DSN for a new, empty database of its own (skipped on an external cluster)."""
    if pg_cluster is None:
        pytest.skip("BLOCKTRUST_TEST_DSN names an external cluster; fresh databases need our own")
    return pg_cluster.create_database(f"t_{uuid.uuid4().hex[:12]}")
