"""The chain worker's transaction log: one nonce allocator per signing key, and every transaction
recorded (hash, nonce, raw bytes, fees) before it is sent.

A nonce is taken from the key's ``chain_nonces`` row under ``FOR UPDATE``, in the same database
transaction that records the signed transaction and marks its job ``submitted``: threads and
processes sharing a key never sign two transactions with one nonce, and a worker that dies after
that commit finds the transaction again (and can send its raw bytes again) instead of sending a
second one. No chain call happens while that transaction is open: the node is asked for its nonce
before, and the transaction is sent after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from blocktrust_native.pool import Pool
from validate_all_flows.embedded.web3_client import ChainClient, Fees, SignedTx

__all__ = ["RecordedTx", "TxLog"]


@dataclass(frozen=True)
class RecordedTx:
    """A transaction signed for a job, as ``chain_txs`` holds it."""

    id: int
    nonce: int
    tx_hash: str
    raw: str
    fees: Fees
    gas: int
    status: str
    age_s: float

    def signed(self) -> SignedTx:
        """The transaction as the client sends it."""
        return SignedTx(self.tx_hash, self.raw, self.nonce, self.gas, self.fees)


class TxLog:
    """Records and looks up the transactions of chain jobs for one client's key."""

    def __init__(self, pool: Pool, client: ChainClient) -> None:
        self.pool = pool
        self.client = client
        self.sender = client.address.lower()

    def sign_and_record(
        self,
        kind: str,
        job_id: int,
        call: Any,
        *,
        gas: int,
        fees: Fees,
        label: str,
        mark_submitted: tuple[str, tuple[Any, ...]],
        nonce: int | None = None,
    ) -> SignedTx:
        """Signs ``call`` with the key's next nonce (or ``nonce``, for a replacement), records it
        and runs ``mark_submitted`` (SQL and parameters; ``$1`` more is the transaction hash) in one
        database transaction; returns the signed transaction, not yet sent."""
        chain_nonce = None if nonce is not None else self.client.nonce(pending=True)
        with self.pool.connection() as conn, conn.transaction():
            if nonce is None:
                conn.execute(
                    "INSERT INTO chain_nonces (chain_id, address, next_nonce) VALUES ($1, $2, $3) "
                    "ON CONFLICT (chain_id, address) DO NOTHING",
                    (self.client.chain_id, self.sender, chain_nonce),
                )
                row = conn.execute(
                    "SELECT next_nonce FROM chain_nonces WHERE chain_id = $1 AND address = $2 "
                    "FOR UPDATE",
                    (self.client.chain_id, self.sender),
                )
                # The chain is ahead when the key was used elsewhere: its count wins then.
                nonce = max(int(row[0][0]), int(chain_nonce or 0))
                conn.execute(
                    "UPDATE chain_nonces SET next_nonce = $3, updated_at = now() "
                    "WHERE chain_id = $1 AND address = $2",
                    (self.client.chain_id, self.sender, nonce + 1),
                )
            tx = self.client.sign(call, nonce=nonce, gas=gas, fees=fees, label=label)
            conn.execute(
                "INSERT INTO chain_txs (job_kind, job_id, chain_id, sender, nonce, tx_hash, "
                "raw_tx, gas, max_fee, tip, gas_price) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                (
                    kind,
                    job_id,
                    self.client.chain_id,
                    self.sender,
                    nonce,
                    tx.tx_hash,
                    tx.raw,
                    gas,
                    fees.max_fee if fees.gas_price is None else None,
                    fees.tip if fees.gas_price is None else None,
                    fees.gas_price,
                ),
            )
            sql, params = mark_submitted
            conn.execute(sql, (*params, tx.tx_hash))
        return tx

    def open_txs(self, kind: str, job_id: int) -> list[RecordedTx]:
        """The job's transactions still ``sent`` (no receipt seen), newest first."""
        rows = self.pool.execute(
            "SELECT id, nonce, tx_hash, raw_tx, gas, max_fee, tip, gas_price, status, "
            "extract(epoch FROM now() - sent_at) FROM chain_txs "
            "WHERE job_kind = $1 AND job_id = $2 AND status = 'sent' ORDER BY id DESC",
            (kind, job_id),
        )
        out = []
        for rid, nonce, h, raw, gas, max_fee, tip, gas_price, status, age in rows:
            fees = (
                Fees(gas_price=int(gas_price))
                if gas_price is not None
                else Fees(int(max_fee), int(tip))
            )
            out.append(RecordedTx(int(rid), int(nonce), h, raw, fees, int(gas), status, float(age)))
        return out

    def mined_txs(self, kind: str, job_id: int) -> list[str]:
        """The hashes of the job's transactions already seen mined with success, newest first."""
        rows = self.pool.execute(
            "SELECT tx_hash FROM chain_txs "
            "WHERE job_kind = $1 AND job_id = $2 AND status = 'mined' ORDER BY id DESC",
            (kind, job_id),
        )
        return [str(r[0]) for r in rows]

    def settle(self, tx_hash: str, status: str, block: int | None = None) -> None:
        """Marks a recorded transaction mined, reverted or dropped."""
        self.pool.execute(
            "UPDATE chain_txs SET status = $2, block_number = $3, settled_at = now() "
            "WHERE tx_hash = $1",
            (tx_hash.lower(), status, block),
        )

    def drop_unmined(self, kind: str, job_id: int) -> None:
        """Marks the job's transactions still ``sent`` dropped (the job is finished: the nonce
        they share with the mined one is spent)."""
        self.pool.execute(
            "UPDATE chain_txs SET status = 'dropped', settled_at = now() "
            "WHERE job_kind = $1 AND job_id = $2 AND status = 'sent'",
            (kind, job_id),
        )
