"""The listener follows real anvil logs into a real cluster: decoded, idempotent, reorg-safe."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account import Account

from blocktrust_native.pool import Pool
from validate_all_flows.embedded.anvil import Anvil
from validate_all_flows.embedded.chain import BlocktrustContracts, ContractsConfig
from validate_all_flows.embedded.listener import Listener
from validate_all_flows.embedded.migrate import apply_migrations

pytestmark = [pytest.mark.pg, pytest.mark.slow]


@pytest.fixture
def pool(fresh_pg_dsn: str) -> Iterator[Pool]:
    with Pool(fresh_pg_dsn, min_size=0, max_size=4) as p:
        apply_migrations(p)
        yield p


def _drain(listener: Listener) -> None:
    for _ in range(1000):
        if listener.poll():
            return
    raise AssertionError("the listener never caught up")


def _events(pool: Pool) -> list[tuple[str, int]]:
    return [
        (str(name), int(block))
        for name, block in pool.execute(
            "SELECT event_name, block_number FROM chain_events "
            "WHERE event_name IN ('IdentityMinted', 'ProofRegistered', 'FailSafeTriggered', "
            "'IdentityCancelled') ORDER BY block_number, log_index"
        )
    ]


def test_follows_decodes_resumes_and_applies_events(
    anvil: Anvil, deployed: ContractsConfig, bt: BlocktrustContracts, pool: Pool
) -> None:
    wallet = Account.create().address
    minted = bt.mint_identity(wallet)
    bt.register_proof("0x" + "ab" * 32, signer=wallet)
    bt.trigger_failsafe(minted.token_id, "0x" + "cd" * 32)
    listener = Listener(pool, anvil.rpc_url, deployed, max_range=3)  # small: many ranges
    _drain(listener)
    names = [n for n, _ in _events(pool)]
    # FailSafe.trigger cancels first (IdentityNFT emits), then emits its own event.
    assert names == ["IdentityMinted", "ProofRegistered", "IdentityCancelled", "FailSafeTriggered"]
    args = pool.execute("SELECT args FROM chain_events WHERE event_name = 'IdentityMinted'")[0][0]
    assert args["wallet"] == wallet.lower()
    assert int(args["tokenId"]) == minted.token_id
    head = int(anvil.rpc("eth_blockNumber"), 16)
    cp = pool.execute(
        "SELECT next_block, lag_blocks, lag_seconds FROM listener_checkpoints "
        "WHERE listener = 'blocktrust'"
    )
    assert cp == [(head + 1, 0, 0.0)]
    before = pool.execute("SELECT count(*) FROM chain_events")[0][0]
    # A restarted listener resumes at the checkpoint and stores nothing twice.
    again = Listener(pool, anvil.rpc_url, deployed)
    pool.execute("UPDATE listener_checkpoints SET next_block = next_block - 5")
    pool.execute(
        "UPDATE listener_checkpoints SET last_block_hash = (SELECT block_hash FROM chain_blocks "
        "WHERE block_number = (SELECT next_block - 1 FROM listener_checkpoints))"
    )
    _drain(again)
    assert pool.execute("SELECT count(*) FROM chain_events")[0][0] == before


def test_a_reorganisation_is_rewound(
    anvil: Anvil, deployed: ContractsConfig, bt: BlocktrustContracts, pool: Pool
) -> None:
    listener = Listener(pool, anvil.rpc_url, deployed, max_range=1)
    _drain(listener)
    snap = anvil.snapshot()
    doomed = Account.create().address
    bt.mint_identity(doomed)  # lives only on the branch that will be dropped
    _drain(listener)
    assert any(
        r[0] == doomed.lower()
        for r in pool.execute(
            "SELECT args->>'wallet' FROM chain_events WHERE event_name = 'IdentityMinted'"
        )
    )
    anvil.revert(snap)
    anvil.mine(3)  # the new branch is longer, without the mint
    _drain(listener)
    assert listener.reorgs >= 1
    wallets = [
        r[0]
        for r in pool.execute(
            "SELECT args->>'wallet' FROM chain_events WHERE event_name = 'IdentityMinted'"
        )
    ]
    assert doomed.lower() not in wallets
    assert pool.execute("SELECT count(*) FROM chain_reorgs")[0][0] >= 1
