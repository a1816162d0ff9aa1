"""Several listeners on one database: one leads (a session advisory lock), the others stand by;
an ex-leader that lost its lock while paused writes nothing; SIGKILL of the leading process hands
over to a standby within two poll intervals, with every chain log stored exactly once."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from eth_account import Account
from fix_listener import drain, listener_env, migrated_pool, start_listener
from fix_wait import wait_until

from blocktrust_native.errors import LeadershipLost
from blocktrust_native.listener import Listener
from blocktrust_native.listener.contracts import ContractsConfig
from blocktrust_native.pool import Pool
from validate_all_flows.embedded.anvil import Anvil
from validate_all_flows.embedded.chain import BlocktrustContracts

pytestmark = [pytest.mark.pg, pytest.mark.slow]

pool = migrated_pool  # the fixture the tests take


def _stored(pool: Pool) -> list[tuple[str, int]]:
    return [
        (str(tx), int(i))
        for tx, i in pool.execute(
            "SELECT tx_hash, log_index FROM chain_events ORDER BY block_number, log_index"
        )
    ]


def _chain_logs(anvil: Anvil, deployed: ContractsConfig) -> list[tuple[str, int]]:
    """Every log of the three contracts, as the chain has them."""
    addresses = [
        deployed.identity_nft.address,
        deployed.proof_registry.address,
        deployed.fail_safe.address,
    ]
    logs = anvil.rpc(
        "eth_getLogs", [{"fromBlock": "0x0", "toBlock": "latest", "address": addresses}]
    )
    return [(log["transactionHash"].lower(), int(log["logIndex"], 16)) for log in logs]


def _next_block(pool: Pool) -> int:
    rows = pool.execute("SELECT next_block FROM listener_checkpoints")
    return int(rows[0][0]) if rows else -1


def test_one_leads_a_standby_writes_nothing_and_a_fenced_ex_leader_cannot_write(
    anvil: Anvil, deployed: ContractsConfig, bt: BlocktrustContracts, pool: Pool
) -> None:
    a = Listener(pool, anvil.rpc_url, deployed, finality="confirmations", max_range=5)
    b = Listener(pool, anvil.rpc_url, deployed, finality="confirmations", max_range=5)
    bt.mint_identity(Account.create().address)
    assert a.leader is not None
    assert b.leader is not None
    a.poll()
    assert a.leader.leading
    before = _next_block(pool)
    assert b.poll() is False  # a standby: no transaction, no write
    assert not b.leader.leading
    assert _next_block(pool) == before
    drain(a)
    caught_up = _next_block(pool)
    # A "pauses" (we stop calling it); meanwhile its lock session is ended (a partition, an
    # operator, a keepalive timeout), B takes over and follows new events.
    pool.execute("SELECT pg_terminate_backend($1)", [a.leader.pid])
    wait_until(b.leader.ensure, timeout=60, what="B to take the lock")
    bt.mint_identity(Account.create().address)
    drain(b)
    after_b = _next_block(pool)
    assert after_b > caught_up
    stored = _stored(pool)
    # A wakes up mid-poll, still believing it leads: the fence before its write refuses.
    assert a.leader.leading
    with pool.connection() as conn, conn.transaction(), pytest.raises(LeadershipLost):
        a.leader.fence(conn)
    assert a.poll() is False  # and its next poll finds B leading: it stands by
    assert _next_block(pool) == after_b
    assert _stored(pool) == stored
    assert sorted(_stored(pool)) == sorted(_chain_logs(anvil, deployed))
    a.stop()
    b.stop()


def test_sigkill_of_the_leader_hands_over_within_two_poll_intervals_with_no_log_lost(
    anvil: Anvil,
    deployed: ContractsConfig,
    bt: BlocktrustContracts,
    pool: Pool,
    fresh_pg_dsn: str,
    tmp_path: Path,
) -> None:
    interval = 1.0
    config = deployed.write(tmp_path / "contracts_config.json")
    env = listener_env(fresh_pg_dsn, anvil.rpc_url, config, interval)
    logs = [tmp_path / f"listener-{i}.log" for i in range(3)]
    procs = [start_listener(env, log) for log in logs]
    try:
        for _ in range(3):
            bt.mint_identity(Account.create().address)
        head = int(anvil.rpc("eth_blockNumber"), 16)
        wait_until(
            lambda: _next_block(pool) > head, timeout=60, what="the checkpoint to pass the head"
        )
        leaders = [i for i, log in enumerate(logs) if "leading (lock session" in log.read_text()]
        assert len(leaders) == 1, [log.read_text() for log in logs]
        (old,) = leaders
        old_pid = int(re.search(r"lock session (\d+)", logs[old].read_text()).group(1))
        procs[old].send_signal(signal.SIGKILL)
        procs[old].wait(30)
        killed_at = time.monotonic()

        def new_leader() -> list[tuple[int]]:
            return pool.execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> $1",
                [old_pid],
            )

        wait_until(new_leader, timeout=30, what="a standby to take the lock")
        took_over = time.monotonic() - killed_at
        assert took_over <= 2 * interval, f"took {took_over:.2f} s"
        for _ in range(3):
            bt.mint_identity(Account.create().address)
        head = int(anvil.rpc("eth_blockNumber"), 16)
        wait_until(
            lambda: _next_block(pool) > head, timeout=60, what="the new leader to pass the head"
        )
        leaders = [
            i
            for i, log in enumerate(logs)
            if i != old and "leading (lock session" in log.read_text()
        ]
        assert len(leaders) == 1  # exactly one standby took over
        stored = _stored(pool)
        assert len(stored) == len(set(stored))
        assert sorted(stored) == sorted(_chain_logs(anvil, deployed))
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
