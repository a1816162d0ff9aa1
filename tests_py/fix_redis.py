"""Redis fixtures: a private redis-server per session (never the one that may run on 6379)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from validate_all_flows.embedded.redis import TempRedis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[TempRedis]:
    """The session's redis-server on a free loopback port (tests keep to their own keys)."""
    with TempRedis() as server:
        yield server


@pytest.fixture
def own_redis() -> Iterator[TempRedis]:
    """A redis-server of the test's own, which it may kill and restart."""
    with TempRedis() as server:
        yield server
