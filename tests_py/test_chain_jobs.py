"""The chain worker under faults, run as its own process (``python -m ...service.worker``) against a
real PostgreSQL and a real anvil: a stopped node, a killed worker, a faulty RPC endpoint, two
workers on one key, a document someone else registered, a PoA chain's blocks.

Every job must end with exactly one on-chain effect: counted from the chain's logs, never from
the worker's own rows.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fix_anvil import anvil  # noqa: F401
from fix_proxy import BOR_EXTRA_DATA, FaultProxy, JsonRpcProxy
from fix_wait import wait_until
from web3 import Web3
from web3.exceptions import ExtraDataLengthError

from blocktrust_native.pool import Pool
from validate_all_flows.checks import Status, run_checks
from validate_all_flows.embedded.anvil import Anvil
from validate_all_flows.embedded.chain import (
    BlocktrustContracts,
    ContractsConfig,
    IdentityStatus,
    deploy_contracts,
)
from validate_all_flows.embedded.migrate import apply_migrations
from validate_all_flows.embedded.service.store import Store
from validate_all_flows.embedded.web3_client import READ_ATTEMPTS, ChainClient
from validate_all_flows.target import Target

pytestmark = [pytest.mark.pg, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhh"
HOT_KEY = 1  # the service's key: only the mint / register / trigger roles
TEST_REGISTRAR = 2  # the tests' own registrar, a third party registering documents


@pytest.fixture(scope="module")
def admin(anvil: Anvil) -> ChainClient:  # noqa: F811
    return ChainClient(anvil.rpc_url, anvil.private_key(0), chain_id=anvil.chain_id, timeout=30)


@pytest.fixture(scope="module")
def config(anvil: Anvil, admin: ChainClient, tmp_path_factory: Any) -> ContractsConfig:  # noqa: F811
    """Contracts whose admin is account 0 and whose hot key (the worker's) is account 1."""
    cfg = deploy_contracts(admin, operator=anvil.accounts[HOT_KEY])
    bt = BlocktrustContracts(admin, cfg)
    bt.grant_role("ProofRegistry", "REGISTRAR_ROLE", anvil.accounts[TEST_REGISTRAR])
    return cfg


@pytest.fixture
def setup(
    anvil: Anvil,  # noqa: F811
    config: ContractsConfig,
    fresh_pg_dsn: str,
    tmp_path: Path,
) -> Iterator[dict[str, Any]]:
    path = tmp_path / "contracts_config.json"
    config.write(str(path))
    with Pool(fresh_pg_dsn, min_size=1, max_size=4) as pool:
        apply_migrations(pool)
        yield {
            "dsn": fresh_pg_dsn,
            "config_path": str(path),
            "pool": pool,
            "config": config,
            "tmp": str(tmp_path),
        }


def _worker(
    setup: dict[str, Any],
    node: Anvil,
    rpc_url: str | None = None,
    *extra: str,
    key: str | None = None,
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "python"), str(ROOT)]),
        "DATABASE_URL": setup["dsn"],
        "RPC_URL": rpc_url or node.rpc_url,
        "CHAIN_ID": str(node.chain_id),
        "CHAIN_PRIVATE_KEY": key or node.private_key(HOT_KEY),
        "CONTRACTS_CONFIG": setup["config_path"],
        "CHAIN_TIMEOUT": "2",
    }
    args = ["--interval", "0.1", "--backoff-cap", "1", "--receipt-wait", "5", "--lease", "8"]
    log = Path(setup["tmp"]) / f"worker-{uuid.uuid4().hex[:8]}.log"
    with log.open("wb") as out:  # a file, not a pipe: a chatty worker never blocks on it
        proc = subprocess.Popen(
            [sys.executable, "-m", "validate_all_flows.embedded.service.worker", *args, *extra],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    proc.log_path = log  # type: ignore[attr-defined]
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return str(proc.log_path.read_text(errors="replace")[-3000:])  # type: ignore[attr-defined]


class _Running:
    """A worker process started by :func:`_running`; ``log`` holds its log's tail once stopped."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.log = ""


@contextlib.contextmanager
def _running(
    setup: dict[str, Any],
    node: Anvil,
    rpc_url: str | None = None,
    *extra: str,
    key: str | None = None,
) -> Iterator[_Running]:
    """A worker (see :func:`_worker`) for the ``with`` block, stopped after it however it ends."""
    running = _Running(_worker(setup, node, rpc_url, *extra, key=key))
    try:
        yield running
    finally:
        running.log = _stop(running.proc)


def _user(pool: Pool, config: ContractsConfig, *, mint: bool = True) -> tuple[int, str]:
    wallet = Account.create().address.lower()
    uid = Store(pool).create_user(f"u{uuid.uuid4().hex[:10]}@example.org", HASH, HASH, wallet)
    if mint:
        pool.execute(
            "INSERT INTO identity_nfts (user_id, chain_id, contract_address, wallet_address) "
            "VALUES ($1, $2, $3, $4)",
            (uid, config.chain_id, config.identity_nft.address.lower(), wallet),
        )
    return uid, wallet


def _sign(pool: Pool, config: ContractsConfig, uid: int, mode: str = "single") -> str:
    doc = uuid.uuid4().hex + uuid.uuid4().hex
    target = (int(config.chain_id or 0), config.proof_registry.address.lower())
    Store(pool).record_signature(uid, doc, None, "application/pdf", 10, mode, target, None)
    return doc


def _failsafe(pool: Pool, uid: int, delay: float = 0.0) -> None:
    Store(pool).queue_failsafe(uid, "signature", "0x" + uuid.uuid4().hex * 2, delay)


def _open_jobs(pool: Pool) -> int:
    return int(
        pool.execute(
            "SELECT (SELECT count(*) FROM identity_nfts WHERE status IN ('pending', 'submitted'))"
            " + (SELECT count(*) FROM proofs WHERE status IN ('pending', 'submitted'))"
            " + (SELECT count(*) FROM failsafe_events WHERE status IN ('queued', 'submitted'))"
        )[0][0]
    )


def _logs(client: ChainClient, config: ContractsConfig, contract: str, event: str) -> list[Any]:
    bt = BlocktrustContracts(client, config)
    ev = getattr(bt.contract(contract).events, event)()
    return list(ev.get_logs(from_block=config.identity_nft.deploy_block or 0))


def _assert_no_reverts(pool: Pool) -> None:
    bad = pool.execute("SELECT tx_hash, status FROM chain_txs WHERE status = 'reverted'")
    assert bad == [], bad


def test_jobs_finish_exactly_once_through_an_rpc_failing_30_percent_of_calls(
    setup: dict[str, Any],
    anvil: Anvil,  # noqa: F811
    admin: ChainClient,
    config: ContractsConfig,
) -> None:
    pool = setup["pool"]
    signers = [_user(pool, config) for _ in range(3)]
    coerced = [_user(pool, config) for _ in range(2)]
    docs = [(w, _sign(pool, config, u)) for u, w in signers for _ in range(2)]
    batch_docs = [(w, _sign(pool, config, u, "batch")) for u, w in signers[:2] for _ in range(2)]
    for uid, _ in coerced:
        _failsafe(pool, uid)
    with FaultProxy(anvil.rpc_url, fail_rate=0.3, hang_s=3, seed=7) as proxy:
        with _running(setup, anvil, proxy.url) as worker:
            wait_until(lambda: _open_jobs(pool) == 0, timeout=240, what="every job to finish")
        err = worker.log
        assert sum(proxy.failures.values()) >= 20, proxy.failures  # the faults really happened
    assert pool.execute("SELECT count(*) FROM identity_nfts WHERE status = 'failed'")[0][0] == 0
    assert pool.execute("SELECT count(*) FROM proofs WHERE status <> 'confirmed'")[0][0] == 0, err
    statuses = pool.execute("SELECT status FROM failsafe_events")
    assert statuses == [("confirmed",), ("confirmed",)]
    bt = BlocktrustContracts(admin, config)
    minted = _logs(admin, config, "IdentityNFT", "IdentityMinted")
    for _, wallet in signers + coerced:
        assert sum(1 for e in minted if e["args"]["wallet"].lower() == wallet) == 1
    for wallet, doc in docs:
        record = bt.get_proof("0x" + doc)
        assert record is not None
        assert record.signer.lower() == wallet
    triggered = _logs(admin, config, "FailSafe", "FailSafeTriggered")
    for _, wallet in coerced:
        assert bt.status_of(bt.token_of(wallet)) is IdentityStatus.CANCELLED
        assert sum(1 for e in triggered if e["args"]["wallet"].lower() == wallet) == 1
    for _, doc in batch_docs:  # each document provably in an anchored root
        ((batch, index, path),) = pool.execute(
            "SELECT b.onchain_batch_id, p.leaf_index, array_to_json(p.inclusion_path) "
            "FROM proofs p JOIN signatures s ON s.id = p.signature_id "
            "JOIN proof_batches b ON b.id = p.batch_id "
            "WHERE s.document_sha256 = $1 AND b.status = 'anchored'",
            (doc,),
        )
        assert bt.verify_anchored_inclusion(int(batch), "0x" + doc, index, list(path))
    _assert_no_reverts(pool)


class _LosesTheChainAfterAReceipt(JsonRpcProxy):
    """Forwards every call, except that once a receipt of a transaction to ``to`` has been
    answered, the next reads (every attempt the client makes) fail with a 503: the worker sees
    its transaction mined and loses the node before it can finish the job."""

    def __init__(self, upstream: str, to: str) -> None:
        super().__init__(upstream)
        self.to, self.armed, self.failed = to.lower(), False, 0

    def answer(self, body: bytes, connection: Any) -> tuple[int, bytes]:
        call = json.loads(body)
        method = call.get("method") if isinstance(call, dict) else None
        with self._lock:
            if method == "eth_call" and self.armed and self.failed < READ_ATTEMPTS:
                self.failed += 1
                return 503, b"Service Unavailable"
        data = self.forward(body)
        if method == "eth_getTransactionReceipt" and self.failed == 0:
            result = json.loads(data).get("result") or {}
            with self._lock:
                self.armed = self.armed or str(result.get("to") or "").lower() == self.to
        return 200, data


def test_a_failsafe_whose_receipt_was_seen_before_a_fault_is_confirmed_not_skipped(
    setup: dict[str, Any],
    anvil: Anvil,  # noqa: F811
    admin: ChainClient,
    config: ContractsConfig,
) -> None:
    pool = setup["pool"]
    uid, wallet = _user(pool, config)
    _failsafe(pool, uid)
    with _LosesTheChainAfterAReceipt(anvil.rpc_url, config.fail_safe.address) as proxy:
        with _running(setup, anvil, proxy.url) as worker:
            wait_until(lambda: _open_jobs(pool) == 0, timeout=120, what="the fail-safe to finish")
        assert proxy.failed == READ_ATTEMPTS, worker.log  # the fault really hit that moment
    # The trigger mined once; the pass after the fault must still own that transaction.
    triggered = _logs(admin, config, "FailSafe", "FailSafeTriggered")
    assert sum(1 for e in triggered if e["args"]["wallet"].lower() == wallet) == 1
    assert pool.execute("SELECT status FROM failsafe_events") == [("confirmed",)], worker.log
    assert pool.execute("SELECT status FROM identity_nfts WHERE user_id = $1", (uid,)) == [
        ("cancelled",)
    ]


def test_a_failsafe_due_while_the_node_is_stopped_fires_once_after_it_returns(
    setup: dict[str, Any],
    anvil: Anvil,  # noqa: F811
    admin: ChainClient,
    config: ContractsConfig,
) -> None:
    pool = setup["pool"]
    uid, wallet = _user(pool, config)
    with _running(setup, anvil):
        wait_until(lambda: _open_jobs(pool) == 0, timeout=60, what="the mint")
        assert anvil.pid is not None
        os.kill(anvil.pid, signal.SIGSTOP)
        try:
            _failsafe(pool, uid)
            stopped_at = time.monotonic()
            # The node stays away for 20 s; the fail-safe is due all along and keeps being tried.
            while time.monotonic() - stopped_at < 20:
                row = pool.execute("SELECT status, attempts FROM failsafe_events")[0]
                assert row[0] in ("queued", "submitted"), row
                time.sleep(0.5)
            assert pool.execute("SELECT attempts FROM failsafe_events")[0][0] >= 2
        finally:
            os.kill(anvil.pid, signal.SIGCONT)
        wait_until(
            lambda: pool.execute("SELECT status FROM failsafe_events") == [("confirmed",)],
            timeout=60,
            what="the fail-safe after the node returned",
        )
    bt = BlocktrustContracts(admin, config)
    assert bt.status_of(bt.token_of(wallet)) is IdentityStatus.CANCELLED
    triggered = _logs(admin, config, "FailSafe", "FailSafeTriggered")
    assert sum(1 for e in triggered if e["args"]["wallet"].lower() == wallet) == 1
    _assert_no_reverts(pool)


def test_a_worker_killed_after_sending_finishes_the_job_on_restart_with_one_mint(
    setup: dict[str, Any],
    anvil: Anvil,  # noqa: F811
    admin: ChainClient,
    config: ContractsConfig,
) -> None:
    pool = setup["pool"]
    _, wallet = _user(pool, config)
    hot = anvil.accounts[HOT_KEY]
    sent_before = admin.w3.eth.get_transaction_count(hot)
    anvil.rpc("evm_setAutomine", [False])  # the transaction waits in the pool: no receipt yet
    try:
        with _running(setup, anvil) as worker:
            tx_hash = wait_until(
                lambda: (
                    (rows := pool.execute("SELECT tx_hash FROM chain_txs"))
                    and anvil.rpc("eth_getTransactionByHash", [rows[0][0]])
                    and rows[0][0]
                ),
                timeout=60,
                what="the recorded and sent mint",
            )
            assert pool.execute("SELECT status FROM identity_nfts") == [("submitted",)]
            worker.proc.kill()  # SIGKILL: no cleanup, the row stays 'submitted'
            worker.proc.wait(10)
        anvil.rpc("evm_mine")
    finally:
        anvil.rpc("evm_setAutomine", [True])
    with _running(setup, anvil) as worker:
        wait_until(
            lambda: (
                pool.execute("SELECT status, mint_tx_hash FROM identity_nfts")
                == [("active", tx_hash)]
            ),
            timeout=60,
            what="the mint recorded after the restart",
        )
    minted = _logs(admin, config, "IdentityNFT", "IdentityMinted")
    assert sum(1 for e in minted if e["args"]["wallet"].lower() == wallet) == 1
    assert admin.w3.eth.get_transaction_count(hot) == sent_before + 1  # nothing sent twice
    assert pool.execute("SELECT status FROM chain_txs") == [("mined",)]


def test_a_stuck_transaction_is_replaced_with_higher_fees_at_the_same_nonce(
    setup: dict[str, Any],
    anvil: Anvil,  # noqa: F811
    admin: ChainClient,
    config: ContractsConfig,
) -> None:
    pool = setup["pool"]
    _, wallet = _user(pool, config)
    anvil.rpc("evm_setAutomine", [False])  # nothing is mined: the transaction looks stuck
    try:
        with _running(setup, anvil, None, "--stuck-after", "2", "--receipt-wait", "1"):
            txs = wait_until(
                lambda: (
                    (r := pool.execute("SELECT nonce, max_fee, tx_hash FROM chain_txs ORDER BY id"))
                    and len(r) >= 2
                    and r
                ),
                timeout=60,
                what="a replacement",
            )
            assert txs[0][0] == txs[1][0]  # the same nonce: at most one can ever be mined
            assert int(txs[1][1]) >= int(txs[0][1]) * 1.25
            anvil.rpc("evm_mine")
            wait_until(
                lambda: pool.execute("SELECT status FROM identity_nfts") == [("active",)],
                timeout=60,
                what="the mint",
            )
    finally:
        anvil.rpc("evm_setAutomine", [True])
    minted = _logs(admin, config, "IdentityNFT", "IdentityMinted")
    assert sum(1 for e in minted if e["args"]["wallet"].lower() == wallet) == 1
    rows = pool.execute("SELECT status, count(*) FROM chain_txs GROUP BY status ORDER BY 1")
    assert rows[-1] == ("mined", 1)
    assert all(status == "dropped" for status, _ in rows[:-1])
    mined = pool.execute("SELECT tx_hash FROM chain_txs WHERE status = 'mined'")[0][0]
    assert pool.execute("SELECT mint_tx_hash FROM identity_nfts") == [(mined,)]


def test_a_refused_batch_fails_none_of_its_documents(
    setup: dict[str, Any],
    anvil: Anvil,  # noqa: F811
    admin: ChainClient,
    config: ContractsConfig,
) -> None:
    pool = setup["pool"]
    uid, _ = _user(pool, config)
    bt = BlocktrustContracts(admin, config)
    hot = anvil.accounts[HOT_KEY]
    with _running(setup, anvil):
        wait_until(lambda: _open_jobs(pool) == 0, timeout=60, what="the mint")
        bt.client.transact(
            bt.contract("ProofRegistry").functions.revokeRole(
                bt.role_id("ProofRegistry", "REGISTRAR_ROLE"), hot
            ),
            "revoke REGISTRAR_ROLE",
        )
        try:
            docs = [_sign(pool, config, uid, "batch") for _ in range(3)]
            failed = wait_until(
                lambda: pool.execute(
                    "SELECT last_error FROM proof_batches WHERE status = 'failed'"
                ),
                timeout=60,
                what="the refused batch",
            )
            assert "caller is not a registrar" in failed[0][0]
            # Its documents are back in the queue, none failed.
            states = {r[0] for r in pool.execute("SELECT status FROM proofs")}
            assert "failed" not in states
        finally:
            bt.grant_role("ProofRegistry", "REGISTRAR_ROLE", hot)
        wait_until(
            lambda: pool.execute("SELECT DISTINCT status FROM proofs") == [("confirmed",)],
            timeout=60,
            what="the documents anchored once the role is back",
        )
    for doc in docs:
        ((batch, index, path),) = pool.execute(
            "SELECT b.onchain_batch_id, p.leaf_index, array_to_json(p.inclusion_path) "
            "FROM proofs p JOIN signatures s ON s.id = p.signature_id "
            "JOIN proof_batches b ON b.id = p.batch_id WHERE s.document_sha256 = $1",
            (doc,),
        )
        assert bt.verify_anchored_inclusion(int(batch), "0x" + doc, index, list(path))


def test_two_worker_processes_on_one_key_never_share_a_nonce(
    setup: dict[str, Any],
    anvil: Anvil,  # noqa: F811
    admin: ChainClient,
    config: ContractsConfig,
) -> None:
    pool = setup["pool"]
    users = [_user(pool, config) for _ in range(8)]
    docs = [(w, _sign(pool, config, u)) for u, w in users[:6]]
    for uid, _ in users[6:]:
        _failsafe(pool, uid)
    with (
        _running(setup, anvil, None, "--name", "w0") as w0,
        _running(setup, anvil, None, "--name", "w1") as w1,
    ):
        wait_until(lambda: _open_jobs(pool) == 0, timeout=180, what="every job to finish")
    errs = [w0.log, w1.log]
    assert pool.execute("SELECT count(*) FROM chain_txs WHERE status <> 'mined'")[0][0] == 0, errs
    nonces = [r[0] for r in pool.execute("SELECT nonce FROM chain_txs")]
    assert len(nonces) == len(set(nonces)) == 8 + 6 + 2
    assert sorted(r[0] for r in pool.execute("SELECT worker FROM chain_workers")) == ["w0", "w1"]
    bt = BlocktrustContracts(admin, config)
    minted = _logs(admin, config, "IdentityNFT", "IdentityMinted")
    for _, wallet in users:
        assert sum(1 for e in minted if e["args"]["wallet"].lower() == wallet) == 1
    for wallet, doc in docs:
        record = bt.get_proof("0x" + doc)
        assert record is not None
        assert record.signer.lower() == wallet
    assert pool.execute("SELECT count(*) FROM failsafe_events WHERE status = 'confirmed'") == [(2,)]


def test_a_document_registered_by_another_signer_is_a_conflict_not_a_confirmation(
    setup: dict[str, Any],
    anvil: Anvil,  # noqa: F811
    config: ContractsConfig,
) -> None:
    pool = setup["pool"]
    victim, _ = _user(pool, config)
    _, other_wallet = _user(pool, config)
    with _running(setup, anvil):
        wait_until(lambda: _open_jobs(pool) == 0, timeout=60, what="the mints")
        doc = uuid.uuid4().hex * 2
        third = ChainClient(anvil.rpc_url, anvil.private_key(TEST_REGISTRAR), timeout=30)
        BlocktrustContracts(third, config).register_proof("0x" + doc, signer=other_wallet)
        target = (int(config.chain_id or 0), config.proof_registry.address.lower())
        Store(pool).record_signature(
            victim, doc, None, "application/pdf", 1, "single", target, None
        )
        row = wait_until(
            lambda: (
                (r := pool.execute("SELECT status, last_error FROM proofs"))
                and r[0][0] not in ("pending", "submitted")
                and r[0]
            ),
            timeout=60,
            what="the proof's verdict",
        )
    assert row[0] == "conflict"
    assert other_wallet in row[1].lower()
    assert pool.execute("SELECT count(*) FROM chain_txs WHERE job_kind = 'proof'") == [(0,)]


def test_a_poa_chain_with_97_byte_extra_data_is_served(
    setup: dict[str, Any],
    anvil: Anvil,  # noqa: F811
    admin: ChainClient,
    config: ContractsConfig,
) -> None:
    pool = setup["pool"]
    with FaultProxy(anvil.rpc_url, poa=True) as proxy:
        plain = Web3(Web3.HTTPProvider(proxy.url))
        with pytest.raises(ExtraDataLengthError):  # what web3 does with Bor blocks by default
            plain.eth.get_block("latest")
        client = ChainClient(proxy.url, anvil.private_key(HOT_KEY), chain_id=anvil.chain_id)
        block = client.w3.eth.get_block("latest")
        assert "0x" + bytes(block["proofOfAuthorityData"]).hex() == BOR_EXTRA_DATA
        uid, wallet = _user(pool, config)
        doc = _sign(pool, config, uid)
        _failsafe(pool, uid, delay=1.0)
        with _running(setup, anvil, proxy.url):
            wait_until(
                lambda: _open_jobs(pool) == 0, timeout=60, what="the jobs through the PoA proxy"
            )
    bt = BlocktrustContracts(admin, config)
    record = bt.get_proof("0x" + doc)
    assert record is not None
    assert record.signer.lower() == wallet
    assert bt.status_of(bt.token_of(wallet)) is IdentityStatus.CANCELLED


def test_fees_are_eip1559_and_capped(anvil: Anvil) -> None:  # noqa: F811
    free = ChainClient(anvil.rpc_url, anvil.private_key(3))
    fees = free.fees()
    assert fees.gas_price is None
    assert fees.max_fee >= fees.tip > 0
    cap = fees.max_fee // 2
    capped = ChainClient(anvil.rpc_url, anvil.private_key(3), max_fee=cap).fees()
    assert capped.max_fee == cap
    assert capped.tip <= cap
    assert fees.bumped(1.25, cap).max_fee == cap
    assert fees.bumped(1.25, None).max_fee > fees.max_fee * 1.2


# -- workers.chain: the validator's read-only view of the worker


def _chain_check(setup: dict[str, Any], anvil: Anvil, **kw: Any) -> Any:  # noqa: F811
    t = Target(database_url=setup["dsn"], rpc_url=anvil.rpc_url, chain_margin_s=1.0, **kw)
    try:
        return next(r for r in run_checks(t, {"workers"}) if r.id == "workers.chain")
    finally:
        t.close()


def test_workers_chain_passes_for_a_live_funded_worker_and_fails_for_a_dead_one(
    setup: dict[str, Any],
    anvil: Anvil,  # noqa: F811
) -> None:
    pool = setup["pool"]
    _user(pool, setup["config"])
    with _running(setup, anvil, None, "--name", "alive") as worker:
        wait_until(lambda: _open_jobs(pool) == 0, timeout=60, what="the mint")
        result = _chain_check(setup, anvil, worker_stale_s=30)
        assert result.status is Status.PASS, (result.found, result.evidence)
        assert any("signer 0x" in e and "20 fail-safes" in e for e in result.evidence)
        short = _chain_check(setup, anvil, worker_stale_s=30, min_gas_balance_wei=10**30)
        assert short.status is Status.FAIL
        assert "is short of gas" in short.found
        worker.proc.kill()  # SIGKILL: the heartbeat row is never marked stopped
        worker.proc.wait(10)
        dead = wait_until(
            lambda: (r := _chain_check(setup, anvil, worker_stale_s=1)).status is Status.FAIL and r,
            timeout=60,
            what="workers.chain to see the dead worker",
        )
    assert "worker alive is dead: no heartbeat for" in dead.found


def test_workers_chain_fails_for_an_overdue_failsafe_and_names_it(
    setup: dict[str, Any],
    anvil: Anvil,  # noqa: F811
) -> None:
    pool = setup["pool"]
    uid, _ = _user(pool, setup["config"])
    _failsafe(pool, uid, delay=-120.0)  # due two minutes ago, and no worker runs
    fid = pool.execute("SELECT id FROM failsafe_events")[0][0]
    result = _chain_check(setup, anvil)
    assert result.status is Status.FAIL
    assert any(f"failsafe_events {fid} is 12" in p for p in result.evidence), result.evidence
    assert any("no chain worker runs and 2 job(s) wait" in p for p in result.evidence)


def test_workers_chain_fails_for_a_failed_job_with_its_reason(
    setup: dict[str, Any],
    anvil: Anvil,  # noqa: F811
) -> None:
    pool = setup["pool"]
    uid, _ = _user(pool, setup["config"])
    _failsafe(pool, uid)
    with _running(setup, anvil):
        wait_until(lambda: _open_jobs(pool) == 0, timeout=60, what="the fail-safe")
        # Signed after the identity was cancelled: the chain refuses the proof for good.
        _sign(pool, setup["config"], uid)
        wait_until(lambda: _open_jobs(pool) == 0, timeout=60, what="the proof's verdict")
        result = _chain_check(setup, anvil, worker_stale_s=30)
    pid = pool.execute("SELECT id FROM proofs")[0][0]
    assert result.status is Status.FAIL
    assert f"proofs {pid} failed: ProofRegistry: identity cancelled" in result.evidence


def test_workers_chain_fails_for_a_signer_without_gas(
    setup: dict[str, Any],
    anvil: Anvil,  # noqa: F811
) -> None:
    broke = Account.create()
    with _running(setup, anvil, None, "--name", "broke", key="0x" + bytes(broke.key).hex()):
        result = wait_until(
            lambda: (r := _chain_check(setup, anvil, worker_stale_s=30)).evidence and r,
            timeout=60,
            what="the broke worker's heartbeat and verdict",
        )
        result = wait_until(
            lambda: (
                (r := _chain_check(setup, anvil, worker_stale_s=30)).status is Status.FAIL and r
            ),
            timeout=60,
            what="the gas verdict",
        )
    assert f"signer {broke.address.lower()} is short of gas" in result.found


# -- real chains: confirmations, keys and roles


def test_a_receipt_counts_only_after_the_configured_confirmations(anvil: Anvil) -> None:  # noqa: F811
    client = ChainClient(anvil.rpc_url, anvil.private_key(4), confirmations=3)
    tx = client.w3.eth.send_transaction(
        {"from": anvil.accounts[4], "to": anvil.accounts[5], "value": 1}
    )
    assert client.w3.eth.get_transaction_receipt(tx)["status"] == 1  # mined ...
    assert client.receipt("0x" + bytes(tx).hex()) is None  # ... but 1 confirmation of 3
    anvil.mine(2)
    receipt = client.receipt("0x" + bytes(tx).hex())
    assert receipt is not None
    assert receipt.status == 1


def test_the_hot_key_holds_only_its_three_roles(
    anvil: Anvil,  # noqa: F811
    admin: ChainClient,
    config: ContractsConfig,
) -> None:
    bt = BlocktrustContracts(admin, config)
    hot = anvil.accounts[HOT_KEY]
    for contract in ("IdentityNFT", "ProofRegistry", "FailSafe"):
        assert not bt.has_role(contract, "ADMIN_ROLE", hot)
        assert bt.has_role(contract, "ADMIN_ROLE", admin.address)
    assert bt.has_role("IdentityNFT", "MINTER_ROLE", hot)
    assert bt.has_role("ProofRegistry", "REGISTRAR_ROLE", hot)
    assert bt.has_role("FailSafe", "TRIGGER_ROLE", hot)
    assert not bt.has_role("IdentityNFT", "MINTER_ROLE", admin.address)
    assert bt.has_role("IdentityNFT", "FAILSAFE_ROLE", config.fail_safe.address)


def test_deploy_prints_the_grants_a_multisig_admin_sends(anvil: Anvil, tmp_path: Path) -> None:  # noqa: F811
    deployer, multisig, hot = 6, 7, 8
    out = tmp_path / "contracts_config.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "python"), str(ROOT)]),
        "RPC_URL": anvil.rpc_url,
        "CHAIN_ID": str(anvil.chain_id),
        "CHAIN_PRIVATE_KEY": anvil.private_key(deployer),
    }
    args = ["--admin", anvil.accounts[multisig], "--operator", anvil.accounts[hot]]
    proc = subprocess.run(
        [sys.executable, "-m", "validate_all_flows.embedded.deploy", "--out", str(out), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    grants = [line.split() for line in proc.stdout.splitlines() if ".grantRole(" in line]
    assert len(grants) == 4
    from blocktrust_native.listener.contracts import load_contracts_config

    cfg = load_contracts_config(str(out))
    signer = ChainClient(anvil.rpc_url, anvil.private_key(multisig))
    bt = BlocktrustContracts(signer, cfg)
    assert not bt.has_role("IdentityNFT", "MINTER_ROLE", anvil.accounts[hot])
    for words in grants:  # "<Contract>.grantRole(...)" ... "to <address> data <calldata>"
        to, data = words[words.index("to") + 1], words[words.index("data") + 1]
        tx = signer.w3.eth.send_transaction({"from": signer.address, "to": to, "data": data})
        assert signer.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    assert bt.has_role("IdentityNFT", "MINTER_ROLE", anvil.accounts[hot])
    assert bt.has_role("FailSafe", "TRIGGER_ROLE", anvil.accounts[hot])
    assert bt.has_role("IdentityNFT", "FAILSAFE_ROLE", cfg.fail_safe.address)
    deployer_address = anvil.accounts[deployer]
    assert not bt.has_role("IdentityNFT", "ADMIN_ROLE", deployer_address)  # it kept nothing


def test_the_worker_refuses_a_node_of_another_chain_at_start(
    setup: dict[str, Any],
    anvil: Anvil,  # noqa: F811
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "python"), str(ROOT)]),
        "DATABASE_URL": setup["dsn"],
        "RPC_URL": anvil.rpc_url,
        "CHAIN_ID": "80002",  # Amoy configured, anvil answering
        "CHAIN_PRIVATE_KEY": anvil.private_key(HOT_KEY),
        "CONTRACTS_CONFIG": setup["config_path"],
    }
    proc = subprocess.run(
        [sys.executable, "-m", "validate_all_flows.embedded.service.worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert f"serves chain id {anvil.chain_id}, configured 80002" in proc.stderr
    assert anvil.private_key(HOT_KEY)[2:] not in proc.stderr + proc.stdout
