"""The four kinds of chain job (mint, single proof, batch anchor, fail-safe): how each is claimed,
what the chain says about it, what is sent for it, and how its rows are finished.

Every kind answers "is it done on chain already?" (:meth:`JobKind.settled`) from the chain's own
state: ``IdentityNFT.tokenOf`` for a mint, ``ProofRegistry.getProof`` and its signer for a proof,
``batchOfRoot`` for a batch, ``statusOf`` for a fail-safe. The worker asks before every send and
after every receipt, so a job finishes from what happened, never from what was attempted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from blocktrust_native.digest import MerkleTree
from blocktrust_native.pool import Pool
from validate_all_flows.embedded.chain import BlocktrustContracts, IdentityStatus
from validate_all_flows.embedded.web3_client import Receipt

__all__ = [
    "KINDS",
    "BatchJobs",
    "FailsafeJobs",
    "Job",
    "JobKind",
    "MintJobs",
    "Outcome",
    "ProofJobs",
    "form_batch",
]


@dataclass(frozen=True)
class Job:
    """A claimed job: its kind, row id, attempts so far and the columns its kind needs."""

    kind: str
    id: int
    attempts: int
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """How a job ended on chain: ``state`` is the row's final status, ``values`` what to record."""

    state: str
    values: dict[str, Any] = field(default_factory=dict)


class JobKind:
    """Common SQL of a job table: claim with a lease, back off, fail."""

    name = ""
    table = ""
    #: statuses a claimable row has
    open_states: tuple[str, ...] = ("pending", "submitted")
    #: fail-safes are never given up: a revert is retried at the longest interval
    gives_up = True
    #: the row's column for the hash of the job's transaction
    tx_column = "tx_hash"

    def __init__(self, pool: Pool, contracts: BlocktrustContracts) -> None:
        self.pool = pool
        self.contracts = contracts

    def claim(self, lease_s: float) -> Job | None:
        """Takes the next due job and leases it for ``lease_s`` seconds (its retry time moves
        past the lease, so other workers skip it; a worker that dies gives it up that way)."""
        raise NotImplementedError

    def _claim(self, select: str, params: tuple[Any, ...], lease_s: float) -> dict[str, Any] | None:
        rows = self.pool.execute(
            f"WITH c AS ({select} FOR UPDATE OF t SKIP LOCKED) "
            f"UPDATE {self.table} t SET next_attempt_at = now() + make_interval(secs => "
            f"${len(params) + 1}) FROM c WHERE t.id = c.id RETURNING c.*",
            (*params, lease_s),
            as_dict=True,
        )
        return dict(rows[0]) if rows else None

    def settled(self, job: Job, receipt: Receipt | None) -> Outcome | None:
        """The job's outcome when the chain shows its effect (``receipt``: our mined transaction,
        when one is known); None when it still has to be sent."""
        raise NotImplementedError

    def call(self, job: Job) -> tuple[Any, str]:
        """The contract call that does the job, and its label."""
        raise NotImplementedError

    def submitted(self, job: Job) -> tuple[str, tuple[Any, ...]]:
        """SQL (and parameters; the transaction hash comes last) marking the job submitted with
        the hash of its newest transaction."""
        return (
            f"UPDATE {self.table} SET status = 'submitted', {self.tx_column} = $2 "
            f"WHERE id = $1 AND status IN ({_open(self.open_states)})",
            (job.id,),
        )

    def finish(self, job: Job, outcome: Outcome) -> None:
        """Records ``outcome`` on the job's rows."""
        raise NotImplementedError

    def retry(self, job: Job, error: str, delay_s: float) -> None:
        """Counts a failed attempt and makes the job due again after ``delay_s``."""
        self.pool.execute(
            f"UPDATE {self.table} SET attempts = attempts + 1, last_error = $2, "
            "next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1",
            (job.id, error[:500], delay_s),
        )

    def fail(self, job: Job, reason: str) -> None:
        """Ends the job ``failed`` with ``reason`` (a revert reason: retrying cannot help)."""
        self.pool.execute(
            f"UPDATE {self.table} SET status = 'failed', attempts = attempts + 1, "
            "last_error = $2 WHERE id = $1",
            (job.id, reason[:500]),
        )


def _open(states: tuple[str, ...]) -> str:
    return ", ".join(f"'{s}'" for s in states)


class MintJobs(JobKind):
    """identity_nfts rows: mint the user's identity token."""

    name, table = "mint", "identity_nfts"
    tx_column = "mint_tx_hash"

    def claim(self, lease_s: float) -> Job | None:
        row = self._claim(
            "SELECT t.id, t.wallet_address, t.attempts FROM identity_nfts t "
            f"WHERE t.status IN ({_open(self.open_states)}) AND t.next_attempt_at <= now() "
            "ORDER BY t.next_attempt_at, t.id LIMIT 1",
            (),
            lease_s,
        )
        return None if row is None else Job(self.name, row["id"], row["attempts"], row)

    def settled(self, job: Job, receipt: Receipt | None) -> Outcome | None:
        token = self.contracts.token_of(job.data["wallet_address"])
        if not token:
            return None
        values: dict[str, Any] = {"token_id": token, "tx_hash": None, "block": None}
        if receipt is not None:
            values.update(tx_hash=receipt.tx_hash.lower(), block=receipt.block_number)
        return Outcome("active", values)

    def call(self, job: Job) -> tuple[Any, str]:
        fns = self.contracts.contract("IdentityNFT").functions
        wallet = self.contracts.client.w3.to_checksum_address(job.data["wallet_address"])
        return fns.mint(wallet), "IdentityNFT.mint"

    def finish(self, job: Job, outcome: Outcome) -> None:
        v = outcome.values
        # The listener may have recorded the mint first (status active): only fill the gaps.
        self.pool.execute(
            "UPDATE identity_nfts SET status = CASE WHEN status IN ('pending', 'submitted', "
            "'failed') THEN 'active' ELSE status END, token_id = $2, "
            "mint_tx_hash = coalesce($3, mint_tx_hash), minted_block = coalesce($4, minted_block), "
            "last_error = NULL, updated_at = now() WHERE id = $1",
            (job.id, v["token_id"], v["tx_hash"], v["block"]),
        )

    def fail(self, job: Job, reason: str) -> None:
        self.pool.execute(
            "UPDATE identity_nfts SET status = 'failed', attempts = attempts + 1, "
            "last_error = $2, updated_at = now() WHERE id = $1",
            (job.id, reason[:500]),
        )


class ProofJobs(JobKind):
    """proofs rows in single mode: register the document for the user's wallet."""

    name, table = "proof", "proofs"

    def claim(self, lease_s: float) -> Job | None:
        # Waits for the signer's identity: registering before the mint would revert.
        row = self._claim(
            "SELECT t.id, t.attempts, s.document_sha256, u.wallet_address FROM proofs t "
            "JOIN signatures s ON s.id = t.signature_id JOIN users u ON u.id = s.user_id "
            "JOIN identity_nfts n ON n.user_id = u.id "
            f"WHERE t.status IN ({_open(self.open_states)}) AND t.mode = 'single' "
            "AND n.status NOT IN ('pending', 'submitted') AND t.next_attempt_at <= now() "
            "ORDER BY t.next_attempt_at, t.id LIMIT 1",
            (),
            lease_s,
        )
        return None if row is None else Job(self.name, row["id"], row["attempts"], row)

    def settled(self, job: Job, receipt: Receipt | None) -> Outcome | None:
        record = self.contracts.get_proof("0x" + job.data["document_sha256"])
        if record is None:
            return None
        if record.signer.lower() != job.data["wallet_address"].lower():
            # Someone else registered this document first: reported, never confirmed.
            why = f"registered on chain by {record.signer} in block {record.block_number}"
            return Outcome("conflict", {"error": why, "block": record.block_number})
        tx = receipt.tx_hash.lower() if receipt is not None else None
        return Outcome("confirmed", {"tx_hash": tx, "block": record.block_number})

    def call(self, job: Job) -> tuple[Any, str]:
        fns = self.contracts.contract("ProofRegistry").functions
        wallet = self.contracts.client.w3.to_checksum_address(job.data["wallet_address"])
        doc = bytes.fromhex(job.data["document_sha256"])
        return fns.registerProofFor(wallet, doc), "ProofRegistry.registerProofFor"

    def finish(self, job: Job, outcome: Outcome) -> None:
        v = outcome.values
        if outcome.state == "conflict":
            self.pool.execute(
                "UPDATE proofs SET status = 'conflict', last_error = $2 WHERE id = $1",
                (job.id, v["error"]),
            )
            return
        self.pool.execute(
            "UPDATE proofs SET status = 'confirmed', tx_hash = coalesce($2, tx_hash), "
            "block_number = $3, last_error = NULL, confirmed_at = coalesce(confirmed_at, now()) "
            "WHERE id = $1",
            (job.id, v["tx_hash"], v["block"]),
        )


def form_batch(pool: Pool, chain_id: int, contract: str, batch_max: int, batch_wait: float) -> bool:
    """Groups pending batch-mode proofs into one ``proof_batches`` row (its Merkle root, each
    proof's leaf index and audit path) once the oldest has waited ``batch_wait`` seconds or
    ``batch_max`` are waiting; True when a batch was formed. No chain call: anchoring is a job."""
    with pool.connection() as conn, conn.transaction():
        rows = conn.execute(
            "SELECT p.id, s.document_sha256, extract(epoch FROM now() - p.created_at) "
            "FROM proofs p JOIN signatures s ON s.id = p.signature_id "
            "JOIN identity_nfts n ON n.user_id = s.user_id "
            "WHERE p.status = 'pending' AND p.mode = 'batch' AND p.batch_id IS NULL "
            "AND n.status NOT IN ('pending', 'submitted') "
            "ORDER BY p.id LIMIT $1 FOR UPDATE OF p SKIP LOCKED",
            (batch_max,),
        )
        if not rows or (len(rows) < batch_max and max(float(r[2]) for r in rows) < batch_wait):
            return False
        tree = MerkleTree([bytes.fromhex(r[1]) for r in rows])
        root = "0x" + tree.root.hex()
        existing = conn.execute(
            "SELECT id FROM proof_batches WHERE chain_id = $1 AND contract_address = $2 "
            "AND merkle_root = $3",
            (chain_id, contract, root),
        )
        if existing:
            batch_id = existing[0][0]  # the same documents again: reuse (and re-check) it
            conn.execute(
                "UPDATE proof_batches SET status = CASE WHEN status IN ('failed', 'anchored') "
                "THEN 'pending' ELSE status END, next_attempt_at = now() WHERE id = $1",
                (batch_id,),
            )
        else:
            batch_id = conn.execute(
                "INSERT INTO proof_batches (chain_id, contract_address, merkle_root, tree_size) "
                "VALUES ($1, $2, $3, $4) RETURNING id",
                (chain_id, contract, root, tree.size),
            )[0][0]
        for i, r in enumerate(rows):
            path = ["0x" + h.hex() for h in tree.proof(i).hashes]
            conn.execute(
                "UPDATE proofs SET status = 'submitted', batch_id = $2, leaf_index = $3, "
                "inclusion_path = ARRAY(SELECT jsonb_array_elements_text($4)) WHERE id = $1",
                (r[0], batch_id, i, path),
            )
        return True


class BatchJobs(JobKind):
    """proof_batches rows: anchor the batch's Merkle root."""

    name, table = "batch", "proof_batches"

    def claim(self, lease_s: float) -> Job | None:
        row = self._claim(
            "SELECT t.id, t.attempts, t.merkle_root, t.tree_size FROM proof_batches t "
            f"WHERE t.status IN ({_open(self.open_states)}) AND t.next_attempt_at <= now() "
            "ORDER BY t.next_attempt_at, t.id LIMIT 1",
            (),
            lease_s,
        )
        return None if row is None else Job(self.name, row["id"], row["attempts"], row)

    def settled(self, job: Job, receipt: Receipt | None) -> Outcome | None:
        fns = self.contracts.contract("ProofRegistry").functions
        root = bytes.fromhex(job.data["merkle_root"][2:])
        onchain = int(self.contracts.client.view(fns.batchOfRoot(root), "batchOfRoot"))
        if not onchain:
            return None
        record = self.contracts.get_batch(onchain)
        block = record.block_number if record is not None else None
        tx = receipt.tx_hash.lower() if receipt is not None else None
        return Outcome("anchored", {"batch": onchain, "tx_hash": tx, "block": block})

    def call(self, job: Job) -> tuple[Any, str]:
        fns = self.contracts.contract("ProofRegistry").functions
        root = bytes.fromhex(job.data["merkle_root"][2:])
        return fns.anchorBatch(root, int(job.data["tree_size"])), "ProofRegistry.anchorBatch"

    def finish(self, job: Job, outcome: Outcome) -> None:
        v = outcome.values
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(
                "UPDATE proof_batches SET status = 'anchored', onchain_batch_id = $2, "
                "tx_hash = coalesce($3, tx_hash), block_number = $4, last_error = NULL, "
                "anchored_at = coalesce(anchored_at, now()) WHERE id = $1",
                (job.id, v["batch"], v["tx_hash"], v["block"]),
            )
            conn.execute(
                "UPDATE proofs SET status = 'confirmed', tx_hash = coalesce($2, tx_hash), "
                "block_number = $3, confirmed_at = coalesce(confirmed_at, now()) "
                "WHERE batch_id = $1 AND status = 'submitted'",
                (job.id, v["tx_hash"], v["block"]),
            )

    def fail(self, job: Job, reason: str) -> None:
        # One bad batch fails no document: its proofs go back to the queue for the next batch.
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(
                "UPDATE proof_batches SET status = 'failed', attempts = attempts + 1, "
                "last_error = $2 WHERE id = $1",
                (job.id, reason[:500]),
            )
            conn.execute(
                "UPDATE proofs SET status = 'pending', batch_id = NULL, leaf_index = NULL, "
                "inclusion_path = NULL, attempts = attempts + 1, last_error = $2 "
                "WHERE batch_id = $1 AND status = 'submitted'",
                (job.id, reason[:500]),
            )


class FailsafeJobs(JobKind):
    """failsafe_events rows, once due: cancel the user's identity through FailSafe."""

    name, table = "failsafe", "failsafe_events"
    open_states = ("queued", "submitted")
    gives_up = False

    def claim(self, lease_s: float) -> Job | None:
        # Waits while the identity is being minted (cancelling needs its token id).
        row = self._claim(
            "SELECT t.id, t.attempts, t.reason_hash, n.id AS nft_id, n.token_id, "
            "n.status AS nft_status, extract(epoch FROM now() - t.execute_after) AS late_s "
            "FROM failsafe_events t LEFT JOIN identity_nfts n ON n.user_id = t.user_id "
            f"WHERE t.status IN ({_open(self.open_states)}) AND t.execute_after <= now() "
            "AND t.next_attempt_at <= now() "
            "AND (n.status IS NULL OR n.status NOT IN ('pending', 'submitted')) "
            "ORDER BY t.execute_after, t.id LIMIT 1",
            (),
            lease_s,
        )
        return None if row is None else Job(self.name, row["id"], row["attempts"], row)

    def settled(self, job: Job, receipt: Receipt | None) -> Outcome | None:
        token = job.data["token_id"]
        if job.data["nft_id"] is None or token is None:
            return Outcome("skipped", {"nft_id": job.data["nft_id"]})  # nothing to cancel
        status = self.contracts.status_of(int(token))
        if status is not IdentityStatus.CANCELLED:
            return None
        if receipt is None:
            # Cancelled, not by a transaction of this event: an earlier fail-safe did it.
            return Outcome("skipped", {"nft_id": job.data["nft_id"]})
        values = {
            "nft_id": job.data["nft_id"],
            "tx_hash": receipt.tx_hash.lower(),
            "block": receipt.block_number,
        }
        return Outcome("confirmed", values)

    def call(self, job: Job) -> tuple[Any, str]:
        fns = self.contracts.contract("FailSafe").functions
        reason = bytes.fromhex(job.data["reason_hash"][2:])
        return fns.trigger(int(job.data["token_id"]), reason), "FailSafe.trigger"

    def submitted(self, job: Job) -> tuple[str, tuple[Any, ...]]:
        # The hash goes on the row now, so the listener can confirm it from the chain's log.
        return (
            "UPDATE failsafe_events SET status = 'submitted', chain_id = $2, "
            "identity_nft_id = $3, tx_hash = $4 "
            "WHERE id = $1 AND status IN ('queued', 'submitted')",
            (job.id, self.contracts.client.chain_id, job.data["nft_id"]),
        )

    def finish(self, job: Job, outcome: Outcome) -> None:
        v = outcome.values
        with self.pool.connection() as conn, conn.transaction():
            if outcome.state == "skipped":
                conn.execute(
                    "UPDATE failsafe_events SET status = 'skipped', identity_nft_id = $2, "
                    "tx_hash = NULL WHERE id = $1 AND status IN ('queued', 'submitted')",
                    (job.id, v["nft_id"]),
                )
                return
            # The listener may have confirmed it first; confirmed_at keeps the first time.
            conn.execute(
                "UPDATE failsafe_events SET status = 'confirmed', identity_nft_id = $2, "
                "chain_id = $3, tx_hash = $4, block_number = coalesce(block_number, $5), "
                "last_error = NULL, confirmed_at = coalesce(confirmed_at, now()) WHERE id = $1",
                (job.id, v["nft_id"], self.contracts.client.chain_id, v["tx_hash"], v["block"]),
            )
            conn.execute(
                "UPDATE identity_nfts SET status = 'cancelled', cancel_tx_hash = $2, "
                "cancelled_at = coalesce(cancelled_at, now()), updated_at = now() "
                "WHERE id = $1 AND status = 'active'",
                (v["nft_id"], v["tx_hash"]),
            )

    def fail(self, job: Job, reason: str) -> None:
        raise AssertionError("a fail-safe is never given up")  # gives_up is False


#: The job kinds in the order a worker cycle visits them.
KINDS = (MintJobs, ProofJobs, BatchJobs, FailsafeJobs)
