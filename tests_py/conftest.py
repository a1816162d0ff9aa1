"""Shared fixtures; each family lives in its own fix_*.py module."""

from fix_anvil import anvil, as_account, bt, deployed, deployer
from fix_blackhole import blackhole_link
from fix_pg import fresh_pg_dsn, pg_cluster, pg_dsn
from fix_redis import own_redis, redis_sentinel, redis_server

__all__ = [
    "anvil",
    "as_account",
    "blackhole_link",
    "bt",
    "deployed",
    "deployer",
    "fresh_pg_dsn",
    "own_redis",
    "pg_cluster",
    "pg_dsn",
    "redis_sentinel",
    "redis_server",
]
