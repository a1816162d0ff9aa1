"""The listener follows real anvil logs into a real cluster: decoded, idempotent, reorg-safe,
through picky providers (a loopback proxy in front of anvil), and as its own process."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from eth_account import Account
from fix_listener import drain, listener_env, migrated_pool, start_listener
from fix_proxy import RpcProxy
from fix_wait import wait_until

from blocktrust_native.errors import ChainError, ChainIdMismatch, ConfigError
from blocktrust_native.jsonrpc import JsonRpcClient
from blocktrust_native.listener import Listener, ListenerSettings, Projection, Subscription
from blocktrust_native.listener.contracts import ContractsConfig
from blocktrust_native.listener.schema import TABLES, missing_tables
from blocktrust_native.pool import Pool
from validate_all_flows.embedded.anvil import Anvil
from validate_all_flows.embedded.chain import BlocktrustContracts
from validate_all_flows.embedded.migrate import apply_migrations

pytestmark = [pytest.mark.pg, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]

pool = migrated_pool  # the fixture the tests take


def _events(pool: Pool) -> list[str]:
    return [
        str(name)
        for (name,) in pool.execute(
            "SELECT event_name FROM chain_events "
            "WHERE event_name IN ('IdentityMinted', 'ProofRegistered', 'FailSafeTriggered', "
            "'IdentityCancelled') ORDER BY block_number, log_index"
        )
    ]


def _minted_wallets(pool: Pool) -> list[str]:
    return [
        str(r[0])
        for r in pool.execute(
            "SELECT args->>'wallet' FROM chain_events WHERE event_name = 'IdentityMinted'"
        )
    ]


def _checkpoint(pool: Pool) -> tuple[int, int, float, int]:
    (row,) = pool.execute(
        "SELECT next_block, lag_blocks, lag_seconds, range_size FROM listener_checkpoints "
        "WHERE listener = 'blocktrust'"
    )
    return int(row[0]), int(row[1]), float(row[2]), int(row[3])


def _head(anvil: Anvil) -> int:
    return int(anvil.rpc("eth_blockNumber"), 16)


def _user(pool: Pool, wallet: str) -> int:
    return int(
        pool.execute(
            "INSERT INTO users (email, password_hash, duress_password_hash) "
            "VALUES ($1, '$argon2id$normal', '$argon2id$duress') RETURNING id",
            (f"{wallet.lower()}@example.org",),
        )[0][0]
    )


def test_follows_decodes_applies_and_replays_nothing(
    anvil: Anvil, deployed: ContractsConfig, bt: BlocktrustContracts, pool: Pool
) -> None:
    wallet = Account.create().address
    # The backend's rows waiting for the chain: a pending identity, a submitted proof and a
    # submitted fail-safe (their tx hashes come from the transactions below).
    uid = _user(pool, wallet)
    pool.execute(
        "INSERT INTO identity_nfts (user_id, chain_id, contract_address, wallet_address) "
        "VALUES ($1, $2, $3, $4)",
        (uid, anvil.chain_id, deployed.identity_nft.address.lower(), wallet.lower()),
    )
    minted = bt.mint_identity(wallet)
    proof = bt.register_proof("0x" + "ab" * 32, signer=wallet)
    trigger = bt.trigger_failsafe(minted.token_id, "0x" + "cd" * 32)
    sig = pool.execute(
        "INSERT INTO signatures (user_id, document_sha256, media_type, size_bytes) "
        "VALUES ($1, $2, 'application/pdf', 10) RETURNING id",
        (uid, "ab" * 32),
    )[0][0]
    pool.execute(
        "INSERT INTO proofs (signature_id, mode, chain_id, contract_address, status, tx_hash) "
        "VALUES ($1, 'single', $2, $3, 'submitted', $4)",
        (sig, anvil.chain_id, deployed.proof_registry.address.lower(), proof.tx_hash.lower()),
    )
    pool.execute(
        "INSERT INTO failsafe_events (user_id, source, reason_hash, status, execute_after, "
        "chain_id, tx_hash) VALUES ($1, 'signature', $2, 'submitted', now(), $3, $4)",
        (uid, "0x" + "cd" * 32, anvil.chain_id, trigger.tx_hash.lower()),
    )

    listener = Listener(
        pool, anvil.rpc_url, deployed, max_range=3, finality="confirmations"
    )  # small: many ranges
    drain(listener)
    # FailSafe.trigger cancels first (IdentityNFT emits), then emits its own event.
    assert _events(pool) == [
        "IdentityMinted",
        "ProofRegistered",
        "IdentityCancelled",
        "FailSafeTriggered",
    ]
    args = pool.execute("SELECT args FROM chain_events WHERE event_name = 'ProofRegistered'")[0][0]
    assert args == {
        "documentHash": "0x" + "ab" * 32,
        "signer": wallet.lower(),
        "tokenId": str(minted.token_id),
    }
    # Every log of the three contracts is stored, the ones without domain meaning too.
    names = {r[0] for r in pool.execute("SELECT DISTINCT event_name FROM chain_events")}
    assert {"Transfer", "Locked", "RoleGranted"} <= names

    # The domain tables follow the chain.
    nft = pool.execute(
        "SELECT status, token_id, mint_tx_hash, cancel_tx_hash FROM identity_nfts "
        "WHERE user_id = $1",
        (uid,),
    )[0]
    assert nft[0] == "cancelled"
    assert int(nft[1]) == minted.token_id
    assert nft[2] == minted.receipt.tx_hash.lower()
    assert nft[3] == trigger.tx_hash.lower()
    proof_row = pool.execute("SELECT block_number, log_index FROM proofs")[0]
    assert proof_row[0] == proof.block_number
    assert proof_row[1] is not None
    fs = pool.execute("SELECT status, block_number, log_index FROM failsafe_events")[0]
    assert fs[0] == "confirmed"
    assert fs[1] == trigger.block_number

    head = _head(anvil)
    assert _checkpoint(pool)[:3] == (head + 1, 0, 0.0)
    assert listener.inserted == pool.execute("SELECT count(*) FROM chain_events")[0][0]

    # A restarted listener resumes at the checkpoint. Replaying blocks stores nothing twice and
    # applies nothing twice: the identity set back to pending stays pending.
    before = pool.execute("SELECT count(*) FROM chain_events")[0][0]
    pool.execute(
        "UPDATE identity_nfts SET status = 'pending', token_id = NULL, cancelled_at = NULL"
    )
    pool.execute(
        "UPDATE listener_checkpoints SET next_block = $1, last_block_hash = NULL",
        (deployed.identity_nft.deploy_block,),
    )
    listener.stop()  # gives the leader lock up, as a stopped process does
    again = Listener(pool, anvil.rpc_url, deployed, finality="confirmations")
    drain(again)
    assert again.inserted == 0
    assert pool.execute("SELECT count(*) FROM chain_events")[0][0] == before
    assert pool.execute("SELECT status FROM identity_nfts")[0][0] == "pending"


def test_a_generic_subscription_gets_its_tables_from_the_library(
    anvil: Anvil, deployed: ContractsConfig, bt: BlocktrustContracts, fresh_pg_dsn: str
) -> None:
    # No migrations: the listener creates its own tables; the application's projection (one
    # CTE and one statement after the insert) fills a table of its own from one contract's logs.
    with Pool(fresh_pg_dsn, min_size=0, max_size=4) as pool:
        pool.execute("CREATE TABLE seen (tx_hash text PRIMARY KEY, signer text, after boolean)")
        sub = Subscription(
            {"Registry": deployed.proof_registry},
            chain_id=anvil.chain_id,
            projection=Projection(
                ctes=(
                    "seen_rows AS (INSERT INTO seen SELECT i.tx_hash, i.args->>'signer', false "
                    "FROM ins i WHERE i.event_name = 'ProofRegistered' RETURNING 1)",
                ),
                after=(
                    (
                        "ProofRegistered",
                        "UPDATE seen SET after = $1::bigint > 0 FROM json_array_elements($2::json)"
                        " AS c WHERE seen.tx_hash = c->>0 AND seen.signer = c->1->>'signer'",
                    ),
                ),
            ),
        )
        assert missing_tables(pool) == list(TABLES)
        wallet = Account.create().address
        bt.mint_identity(wallet)
        proof = bt.register_proof("0x" + "ef" * 32, signer=wallet)
        listener = Listener(pool, anvil.rpc_url, sub, finality="confirmations", leader=False)
        assert missing_tables(pool) == []
        drain(listener)
        stored = {r[0] for r in pool.execute("SELECT DISTINCT contract_address FROM chain_events")}
        assert stored == {deployed.proof_registry.address.lower()}
        proofs = pool.execute(
            "SELECT tx_hash, args->>'signer' FROM chain_events "
            "WHERE event_name = 'ProofRegistered' ORDER BY 1"
        )
        assert (proof.tx_hash.lower(), wallet.lower()) in proofs  # the module's chain has more
        seen = pool.execute("SELECT tx_hash, signer, after FROM seen ORDER BY 1")
        assert seen == [(tx, signer, True) for tx, signer in proofs]


def test_a_restarted_listener_resumes_exactly_at_its_checkpoint(
    anvil: Anvil, deployed: ContractsConfig, bt: BlocktrustContracts, pool: Pool
) -> None:
    bt.mint_identity(Account.create().address)
    first = Listener(pool, anvil.rpc_url, deployed, max_range=2, finality="confirmations")
    for _ in range(3):
        assert not first.poll()  # stopped midway
    next_block = _checkpoint(pool)[0]
    assert next_block > first.start_block
    stored = pool.execute("SELECT count(*) FROM chain_events")[0][0]
    first.stop()  # gives the leader lock up, as a stopped process does
    with RpcProxy(anvil.rpc_url) as proxy:
        second = Listener(pool, proxy.url, deployed, max_range=2, finality="confirmations")
        drain(second)
        assert min(first_block for first_block, _ in proxy.ranges) == next_block
    assert second.inserted + stored == pool.execute("SELECT count(*) FROM chain_events")[0][0]
    assert _checkpoint(pool)[0] == _head(anvil) + 1


def test_a_reorganisation_is_rewound(
    anvil: Anvil, deployed: ContractsConfig, bt: BlocktrustContracts, pool: Pool
) -> None:
    listener = Listener(pool, anvil.rpc_url, deployed, max_range=1, finality="confirmations")
    drain(listener)
    snap = anvil.snapshot()
    doomed = Account.create().address
    bt.mint_identity(doomed)  # lives only on the branch that will be dropped
    drain(listener)
    assert doomed.lower() in _minted_wallets(pool)
    anvil.revert(snap)
    anvil.mine(3)  # the new branch is longer, without the mint
    kept = Account.create().address
    bt.mint_identity(kept)
    drain(listener)
    assert listener.reorgs >= 1
    wallets = _minted_wallets(pool)
    assert doomed.lower() not in wallets
    assert kept.lower() in wallets
    depth, old, new = pool.execute("SELECT depth, old_hash, new_hash FROM chain_reorgs")[0]
    assert depth >= 1
    assert old != new
    # Everything stored now matches the node's chain.
    for number, block_hash in pool.execute("SELECT block_number, block_hash FROM chain_blocks"):
        assert anvil.rpc("eth_getBlockByNumber", [hex(number), False])["hash"] == block_hash


@pytest.mark.parametrize("refuse_as", ["rpc", "http"])
def test_a_refused_range_shrinks_and_grows_back(
    anvil: Anvil, deployed: ContractsConfig, bt: BlocktrustContracts, pool: Pool, refuse_as: str
) -> None:
    bt.mint_identity(Account.create().address)
    anvil.mine(40)
    with RpcProxy(anvil.rpc_url, max_range=4, refuse_as=refuse_as) as proxy:
        listener = Listener(pool, proxy.url, deployed, max_range=64, finality="confirmations")
        drain(listener)
        assert proxy.refused >= 2  # the first wide range, then every time it grew past 4 again
        assert all(last - first + 1 <= 4 for first, last in proxy.ranges)
        # Blocks are contiguous: every block from the deployment to the head was read once.
        covered = sorted(proxy.ranges)
        assert covered[0][0] == listener.start_block
        assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(covered))
        assert covered[-1][1] == _head(anvil)
        # It grew back after succeeding: refused again after its first accepted range, and never
        # shrank below half the provider's limit.
        first_ok = [kind for kind, _ in proxy.get_logs].index("ok")
        assert "refused" in [kind for kind, _ in proxy.get_logs[first_ok:]], proxy.get_logs
        assert min(n for kind, n in proxy.get_logs[:-1] if kind == "ok") >= 2, proxy.get_logs
    # It stored exactly the logs one direct eth_getLogs over the whole span returns.
    every = JsonRpcClient(anvil.rpc_url).call(
        "eth_getLogs",
        [
            {
                "address": listener.decoder.addresses,
                "fromBlock": hex(listener.start_block),
                "toBlock": hex(covered[-1][1]),
            }
        ],
    )
    assert listener.inserted == len(every) > 0
    stored = pool.execute("SELECT count(*) FROM chain_events")[0][0]
    assert stored == len(every)


def test_the_finalized_tag_is_the_safe_block_where_the_chain_has_one(
    anvil: Anvil, deployed: ContractsConfig, bt: BlocktrustContracts, pool: Pool
) -> None:
    # anvil finalizes the block 64 below its head.
    listener = Listener(pool, anvil.rpc_url, deployed, confirmations=0)  # finality="auto"
    wallet = Account.create().address
    minted = bt.mint_identity(wallet)
    drain(listener)
    assert listener.safe_source == "finalized"
    final = int(anvil.rpc("eth_getBlockByNumber", ["finalized", False])["number"], 16)
    assert final < minted.receipt.block_number
    assert _checkpoint(pool)[0] == final + 1
    assert wallet.lower() not in _minted_wallets(pool)
    anvil.mine(64)
    drain(listener)
    assert wallet.lower() in _minted_wallets(pool)
    final = int(anvil.rpc("eth_getBlockByNumber", ["finalized", False])["number"], 16)
    assert _checkpoint(pool)[0] == final + 1


@pytest.mark.parametrize("answer", ["null", "error"])
def test_without_a_finalized_block_auto_falls_back_to_confirmations(
    anvil: Anvil, deployed: ContractsConfig, bt: BlocktrustContracts, pool: Pool, answer: str
) -> None:
    wallet = Account.create().address
    bt.mint_identity(wallet)
    anvil.mine(2)
    with RpcProxy(anvil.rpc_url, finalized=answer, batches=False) as proxy:
        listener = Listener(pool, proxy.url, deployed, confirmations=2)
        drain(listener)
        assert listener.safe_source == "confirmations"
        assert wallet.lower() in _minted_wallets(pool)
        assert _checkpoint(pool)[0] == _head(anvil) - 2 + 1
        strict = Listener(pool, proxy.url, deployed, finality="finalized", name="strict")
        with pytest.raises(ChainError, match="no finalized block"):
            strict.poll()


def test_settings_and_refusals(
    anvil: Anvil, deployed: ContractsConfig, pool: Pool, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": "postgresql://x@127.0.0.1/db", "POLYGON_RPC_URL": "http://n:1/k"}
    s = ListenerSettings.from_env(env)
    assert s.rpc_url == "http://n:1/k"  # the users' deploy docs name it POLYGON_RPC_URL
    assert ListenerSettings.from_env({**env, "RPC_URL": "http://m:2"}).rpc_url == "http://m:2"
    assert "http://n:1/k" not in repr(s)
    assert (s.finality, s.confirmations, s.poll_interval) == ("auto", 2, 15.0)
    with pytest.raises(ConfigError) as e:
        ListenerSettings.from_env(
            {"LISTENER_POLL_INTERVAL": "0", "LISTENER_FINALITY": "soon", "LISTENER_MAX_RANGE": "x"}
        )
    for part in ("DATABASE_URL", "POLYGON_RPC_URL", "LISTENER_POLL_INTERVAL", "LISTENER_FINALITY"):
        assert part in str(e.value)
    assert "LISTENER_MAX_RANGE" in str(e.value)
    with pytest.raises(ConfigError, match="finality"):
        Listener(pool, anvil.rpc_url, deployed, finality="latest")
    other = ContractsConfig(
        deployed.identity_nft, deployed.proof_registry, deployed.fail_safe, chain_id=80002
    )
    with pytest.raises(ChainIdMismatch, match="80002"):
        Listener(pool, anvil.rpc_url, other)


def _wait_for(
    what: str, fn: Callable[[], object], proc: subprocess.Popen[bytes], log: Path, deadline: float
) -> None:
    """Waits until ``fn()`` holds, by ``deadline`` (monotonic), failing at once with the listener's
    log if the process exits first."""

    def done() -> bool:
        if fn():
            return True
        if proc.poll() is not None:
            out = log.read_text()
            raise AssertionError(f"the listener exited ({proc.returncode}) before {what}:\n{out}")
        return False

    wait_until(done, timeout=deadline - time.monotonic(), what=what)


def test_runs_as_a_process_and_follows_new_events(
    anvil: Anvil,
    deployed: ContractsConfig,
    bt: BlocktrustContracts,
    fresh_pg_dsn: str,
    tmp_path: Path,
) -> None:
    with Pool(fresh_pg_dsn, min_size=0, max_size=2) as pool:
        apply_migrations(pool)
        config = deployed.write(tmp_path / "contracts_config.json")
        secret = "k3y" + os.urandom(8).hex()
        with RpcProxy(anvil.rpc_url) as proxy:
            # the path carries an API key that must never be printed
            env = listener_env(fresh_pg_dsn, f"{proxy.url}/v2/{secret}", config, 0.2)
            log_path = tmp_path / "listener.log"
            proc = start_listener(env, log_path)
            try:
                deadline = time.monotonic() + 60
                head = _head(anvil)
                _wait_for(
                    "the checkpoint to reach the head",
                    lambda: pool.execute(
                        "SELECT 1 FROM listener_checkpoints WHERE next_block > $1", (head,)
                    ),
                    proc,
                    log_path,
                    deadline,
                )
                wallet = Account.create().address
                bt.mint_identity(wallet)
                _wait_for(
                    "the new mint to be stored",
                    lambda: wallet.lower() in _minted_wallets(pool),
                    proc,
                    log_path,
                    deadline,
                )
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=30) == 0
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            assert proxy.paths
            assert all(p == f"/v2/{secret}" for p in proxy.paths)
        output = log_path.read_text()
        assert secret not in output
        assert f"{proxy.url}/…" in output  # the endpoint is named, redacted


def _run_listener(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "blocktrust_native.listener"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_the_process_refuses_an_incomplete_environment(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "RPC_URL", "POLYGON_RPC_URL")
    }
    env["PYTHONPATH"] = f"{ROOT / 'python'}{os.pathsep}{ROOT}"
    env["LISTENER_CONFIRMATIONS"] = "-1"
    done = _run_listener(env, tmp_path)
    assert done.returncode == 2
    for part in ("DATABASE_URL", "RPC_URL", "LISTENER_CONFIRMATIONS"):
        assert part in done.stderr
    missing = json.dumps({"RPC_URL": "http://127.0.0.1:9", "DATABASE_URL": "postgresql://x@y/z"})
    env.update(json.loads(missing))
    env.pop("LISTENER_CONFIRMATIONS")
    done = _run_listener(env, tmp_path)
    assert done.returncode == 2
    assert "contracts_config.json" in done.stderr
