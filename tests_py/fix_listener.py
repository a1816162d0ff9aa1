"""Listener fixtures: a migrated database, draining a listener, and the listener as a process
(``python -m blocktrust_native.listener``) with its environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from blocktrust_native.listener import Listener
from blocktrust_native.pool import Pool
from validate_all_flows.embedded.migrate import apply_migrations

__all__ = ["drain", "listener_env", "migrated_pool", "start_listener"]

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def migrated_pool(fresh_pg_dsn: str) -> Iterator[Pool]:
    """A pool on a fresh database with the embedded stack's migrations applied (the listener
    tests take it as ``pool = migrated_pool``)."""
    with Pool(fresh_pg_dsn, min_size=0, max_size=6) as p:
        apply_migrations(p)
        yield p


def drain(listener: Listener) -> None:
    """Polls until the listener has reached the safe block (AssertionError after 1000 polls)."""
    for _ in range(1000):
        if listener.poll():
            return
    raise AssertionError("the listener never caught up")


def listener_env(dsn: str, rpc_url: str, config: Path, poll_interval: float) -> dict[str, str]:
    """The environment of a listener process following ``rpc_url`` (as POLYGON_RPC_URL, the
    deploy docs' name) from the head, with no confirmations."""
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'python'}{os.pathsep}{ROOT}",
        "DATABASE_URL": dsn,
        "POLYGON_RPC_URL": rpc_url,
        "CONTRACTS_CONFIG": str(config),
        "LISTENER_POLL_INTERVAL": str(poll_interval),
        "LISTENER_FINALITY": "confirmations",
        "LISTENER_CONFIRMATIONS": "0",
    }
    env.pop("RPC_URL", None)  # it would win over POLYGON_RPC_URL
    return env


def start_listener(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``python -m blocktrust_native.listener`` with ``env``, its output in ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "blocktrust_native.listener"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
