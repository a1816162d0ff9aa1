"""The throwaway cluster starts on loopback, serves SQL, and leaves nothing behind."""

from __future__ import annotations

import pytest

from validate_all_flows.embedded.postgres import PostgresError, TempPostgres

pytestmark = pytest.mark.pg


def test_cluster_serves_sql_on_loopback_and_cleans_up() -> None:
    with TempPostgres() as pg:
        assert pg.dsn().startswith(f"postgresql://postgres@127.0.0.1:{pg.port}/")
        dsn = pg.create_database("demo_db")
        assert dsn.endswith("/demo_db")
        assert pg.psql("SELECT 40 + 2", "demo_db").strip() == "42"
        root = pg.root
        assert root is not None
        assert root.exists()
    assert not root.exists()
    assert repr(pg) == "TempPostgres(stopped)"


def test_two_clusters_do_not_collide() -> None:
    with TempPostgres() as a, TempPostgres() as b:
        assert a.port != b.port
        a.psql("CREATE TABLE only_in_a (x int)")
        assert b.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").strip() == "0"


def test_errors_name_the_failing_step(pg_cluster: TempPostgres | None) -> None:
    if pg_cluster is None:
        pytest.skip("external cluster")
    with pytest.raises(PostgresError, match=r"psql failed: .*syntax error"):
        pg_cluster.psql("SELEC 1")
    with pytest.raises(PostgresError, match="invalid database name"):
        pg_cluster.create_database("x; DROP")
