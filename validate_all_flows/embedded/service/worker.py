"""The chain worker: one queue for all chain work (mints, proofs, fail-safes), in due order.

The fail-safe deliberately goes through the same queue as normal work, after its randomised delay,
so that a coercer watching the public chain sees an ordinary transaction at an unrelated moment.
Rows are claimed with ``FOR UPDATE SKIP LOCKED``, so several workers may run side by side.
"""

from __future__ import annotations

import logging
from typing import Any

from blocktrust_native._polling import PollingThread
from blocktrust_native.digest import MerkleTree
from blocktrust_native.errors import Error as NativeError
from blocktrust_native.pool import Pool
from validate_all_flows.embedded.chain import BlocktrustContracts

__all__ = ["ChainWorker"]

log = logging.getLogger("blocktrust.service.worker")

MAX_ATTEMPTS = 5


class ChainWorker:
    """Runs chain jobs from the database on a background thread until ``stop()``."""

    def __init__(
        self,
        pool: Pool,
        contracts: BlocktrustContracts,
        interval: float = 0.5,
        *,
        batch_max: int = 256,
        batch_wait: float = 2.0,
    ) -> None:
        self.pool = pool
        self.batch_max, self.batch_wait = batch_max, batch_wait
        self.contracts = contracts
        self.interval = interval
        self.jobs_done = 0
        self._mint_attempts: dict[int, int] = {}
        # Errors are logged with their traceback: a failing job is a bug or a chain problem.
        self._poller = PollingThread(
            self.run_once, interval, name="chain-worker", log=log, tracebacks=True
        )

    def start(self) -> ChainWorker:
        """Starts the background thread."""
        self._poller.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stops after the job in progress."""
        self._poller.stop(timeout)

    def run_once(self) -> bool:
        """Runs at most one job of each kind; True when any job ran."""
        ran = [self._mint(), self._proof(), self._batch(), self._failsafe()]
        self.jobs_done += sum(ran)
        return any(ran)

    # Each job claims one row, does its chain call while holding the row, then records the result
    # in the same transaction; a chain error is recorded on the row and retried a few times.

    def _failed(self, conn: Any, table: str, row_id: int, attempts: int, exc: Exception) -> None:
        give_up = attempts + 1 >= MAX_ATTEMPTS
        if table == "identity_nfts":  # no attempts column: counted in memory
            conn.execute(
                "UPDATE identity_nfts SET status = CASE WHEN $2 THEN 'failed' ELSE status END, "
                "updated_at = now() WHERE id = $1",
                (row_id, give_up),
            )
        else:
            conn.execute(
                f"UPDATE {table} SET attempts = attempts + 1, last_error = $2, "
                "status = CASE WHEN $3 THEN 'failed' ELSE status END WHERE id = $1",
                (row_id, str(exc)[:500], give_up),
            )
        log.warning("%s %d: chain call failed (attempt %d): %s", table, row_id, attempts + 1, exc)

    def _mint(self) -> bool:
        with self.pool.connection() as conn, conn.transaction():
            rows = conn.execute(
                "SELECT id, wallet_address FROM identity_nfts WHERE status = 'pending' "
                "ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
            )
            if not rows:
                return False
            nft_id, wallet = rows[0]
            try:
                minted = self.contracts.mint_identity(wallet)
            except (NativeError, ValueError) as exc:
                tries = self._mint_attempts.get(nft_id, 0)
                self._mint_attempts[nft_id] = tries + 1
                self._failed(conn, "identity_nfts", nft_id, tries, exc)
                return True
            conn.execute(
                "UPDATE identity_nfts SET status = 'active', token_id = $2, mint_tx_hash = $3, "
                "minted_block = $4, updated_at = now() WHERE id = $1",
                (
                    nft_id,
                    minted.token_id,
                    minted.receipt.tx_hash.lower(),
                    minted.receipt.block_number,
                ),
            )
            return True

    def _proof(self) -> bool:
        with self.pool.connection() as conn, conn.transaction():
            rows = conn.execute(
                "SELECT p.id, p.attempts, s.document_sha256, u.wallet_address FROM proofs p "
                "JOIN signatures s ON s.id = p.signature_id JOIN users u ON u.id = s.user_id "
                "JOIN identity_nfts n ON n.user_id = u.id "
                "WHERE p.status = 'pending' AND p.mode = 'single' AND n.status <> 'pending' "
                "ORDER BY p.id LIMIT 1 FOR UPDATE OF p SKIP LOCKED"
            )
            if not rows:
                return False
            proof_id, attempts, doc, wallet = rows[0]
            doc_hash = "0x" + doc
            try:
                existing = self.contracts.get_proof(doc_hash)
                tx_hash, block = None, None
                if existing is None:
                    receipt = self.contracts.register_proof(doc_hash, signer=wallet)
                    tx_hash, block = receipt.tx_hash.lower(), receipt.block_number
                else:
                    block = existing.block_number
            except (NativeError, ValueError) as exc:
                self._failed(conn, "proofs", proof_id, attempts, exc)
                return True
            conn.execute(
                "UPDATE proofs SET status = 'confirmed', tx_hash = $2, block_number = $3, "
                "attempts = attempts + 1, confirmed_at = now() WHERE id = $1",
                (proof_id, tx_hash, block),
            )
            return True

    def _batch(self) -> bool:
        """Anchors pending batch-mode proofs: one Merkle root on chain for up to ``batch_max``
        documents, once the oldest has waited ``batch_wait`` seconds (or the batch is full);
        each proof row gets its leaf index and RFC 6962 audit path."""
        with self.pool.connection() as conn, conn.transaction():
            rows = conn.execute(
                "SELECT p.id, s.document_sha256, extract(epoch FROM now() - p.created_at) "
                "FROM proofs p JOIN signatures s ON s.id = p.signature_id "
                "JOIN identity_nfts n ON n.user_id = s.user_id "
                "WHERE p.status = 'pending' AND p.mode = 'batch' AND n.status <> 'pending' "
                "ORDER BY p.id LIMIT $1 FOR UPDATE OF p SKIP LOCKED",
                (self.batch_max,),
            )
            if not rows or (
                len(rows) < self.batch_max and max(r[2] for r in rows) < self.batch_wait
            ):
                return False
            leaves = [bytes.fromhex(r[1]) for r in rows]
            tree = MerkleTree(leaves)
            try:
                onchain_id, receipt = self.contracts.anchor_batch(tree.root, tree.size)
            except (NativeError, ValueError) as exc:
                for r in rows:
                    self._failed(conn, "proofs", r[0], MAX_ATTEMPTS - 1, exc)
                return True
            cfg = self.contracts.config.entry("ProofRegistry")
            batch_id = conn.execute(
                "INSERT INTO proof_batches (chain_id, contract_address, merkle_root, tree_size, "
                "onchain_batch_id, status, tx_hash, block_number, anchored_at) "
                "VALUES ($1, $2, $3, $4, $5, 'anchored', $6, $7, now()) RETURNING id",
                (
                    self.contracts.client.chain_id,
                    cfg.address.lower(),
                    "0x" + tree.root.hex(),
                    tree.size,
                    onchain_id,
                    receipt.tx_hash.lower(),
                    receipt.block_number,
                ),
            )[0][0]
            for i, r in enumerate(rows):
                path = ["0x" + h.hex() for h in tree.proof(i).hashes]
                conn.execute(
                    "UPDATE proofs SET status = 'confirmed', batch_id = $2, leaf_index = $3, "
                    "inclusion_path = ARRAY(SELECT jsonb_array_elements_text($4)), "
                    "tx_hash = $5, block_number = $6, attempts = attempts + 1, "
                    "confirmed_at = now() WHERE id = $1",
                    (r[0], batch_id, i, path, receipt.tx_hash.lower(), receipt.block_number),
                )
            return True

    def _failsafe(self) -> bool:
        with self.pool.connection() as conn, conn.transaction():
            rows = conn.execute(
                "SELECT f.id, f.attempts, f.reason_hash, n.id, n.token_id, n.status "
                "FROM failsafe_events f LEFT JOIN identity_nfts n ON n.user_id = f.user_id "
                "WHERE f.status = 'queued' AND f.execute_after <= now() "
                "AND (n.status IS NULL OR n.status <> 'pending') "
                "ORDER BY f.execute_after LIMIT 1 FOR UPDATE OF f SKIP LOCKED"
            )
            if not rows:
                return False
            event_id, attempts, reason, nft_id, token_id, nft_status = rows[0]
            if nft_id is None or nft_status != "active":
                # Nothing to cancel (no identity, minting failed, or already cancelled).
                conn.execute(
                    "UPDATE failsafe_events SET status = 'skipped', identity_nft_id = $2 "
                    "WHERE id = $1",
                    (event_id, nft_id),
                )
                return True
            try:
                receipt = self.contracts.trigger_failsafe(int(token_id), reason)
            except (NativeError, ValueError) as exc:
                self._failed(conn, "failsafe_events", event_id, attempts, exc)
                return True
            tx = receipt.tx_hash.lower()
            conn.execute(
                "UPDATE failsafe_events SET status = 'confirmed', identity_nft_id = $2, "
                "chain_id = $3, tx_hash = $4, block_number = $5, attempts = attempts + 1, "
                "confirmed_at = now() WHERE id = $1",
                (event_id, nft_id, self.contracts.client.chain_id, tx, receipt.block_number),
            )
            conn.execute(
                "UPDATE identity_nfts SET status = 'cancelled', cancel_tx_hash = $2, "
                "cancelled_at = now(), updated_at = now() WHERE id = $1",
                (nft_id, tx),
            )
            return True
