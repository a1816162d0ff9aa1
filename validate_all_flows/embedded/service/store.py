"""The reference service's SQL, in one place, on the native pool (tables from the migrations)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from blocktrust_native.pool import IntegrityError, Pool

__all__ = ["EmailTaken", "Store", "UserRow"]


class EmailTaken(ValueError):
    """Raised when registering an e-mail address that already has an account."""


@dataclass(frozen=True)
class UserRow:
    """The columns of a user the service needs to authenticate them."""

    id: int
    email: str
    password_hash: str
    duress_password_hash: str
    wallet_address: str | None


class Store:
    """Queries of the reference service; every write that belongs together is one transaction."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    # -- users

    def create_user(self, email: str, password_hash: str, duress_hash: str, wallet: str) -> int:
        """Inserts a user with both hashes and a wallet; raises EmailTaken for a known e-mail."""
        try:
            rows = self.pool.execute(
                "INSERT INTO users (email, password_hash, duress_password_hash, "
                "duress_updated_at, wallet_address, wallet_linked_at) "
                "VALUES ($1, $2, $3, now(), $4, now()) RETURNING id",
                (email, password_hash, duress_hash, wallet),
            )
        except IntegrityError as exc:
            if "users_email_key" in str(exc) or exc.sqlstate == "23505":
                raise EmailTaken(email) from None
            raise
        return int(rows[0][0])

    def user_by_email(self, email: str) -> UserRow | None:
        """The user with this e-mail (case-insensitive), or None."""
        rows = self.pool.execute(
            "SELECT id, email, password_hash, duress_password_hash, wallet_address FROM users "
            "WHERE lower(email) = lower($1)",
            (email,),
        )
        return UserRow(*rows[0]) if rows else None

    def replace_hash(self, user_id: int, column: str, old: str, new: str) -> None:
        """Stores a re-made password hash (``column`` password_hash or duress_password_hash),
        only if the stored one is still ``old`` (a concurrent password change wins)."""
        if column not in ("password_hash", "duress_password_hash"):
            raise ValueError(f"not a password hash column: {column}")
        self.pool.execute(
            f"UPDATE users SET {column} = $3 WHERE id = $1 AND {column} = $2",
            (user_id, old, new),
        )

    def user_by_id(self, user_id: int) -> UserRow | None:
        """The user with this id, or None."""
        rows = self.pool.execute(
            "SELECT id, email, password_hash, duress_password_hash, wallet_address FROM users "
            "WHERE id = $1",
            (user_id,),
        )
        return UserRow(*rows[0]) if rows else None

    # -- KYC

    def kyc_start(self, user_id: int) -> str:
        """The user's KYC applicant id (created on first call); marks KYC pending."""
        applicant = "app_" + secrets.token_hex(12)
        rows = self.pool.execute(
            "UPDATE users SET kyc_applicant_id = coalesce(kyc_applicant_id, $2), "
            "kyc_status = CASE WHEN kyc_status = 'none' THEN 'pending' ELSE kyc_status END, "
            "updated_at = now() WHERE id = $1 RETURNING kyc_applicant_id",
            (user_id, applicant),
        )
        return str(rows[0][0])

    def apply_review(
        self,
        payload_sha256: str,
        applicant_id: str,
        answer: str,
        created_at_ms: int,
        chain: tuple[int, str] | None,
    ) -> str:
        """Applies a verified KYC review once; returns duplicate, unknown, stale or applied.

        A replayed body is recognised by its hash; a review older than the one applied already
        (``createdAtMs``) is recorded but changes nothing. GREEN queues the identity mint on
        ``chain`` = (chain id, IdentityNFT address).
        """
        with self.pool.connection() as conn, conn.transaction():
            user = conn.execute(
                "SELECT id, kyc_review_created_at_ms FROM users WHERE kyc_applicant_id = $1 "
                "FOR UPDATE",
                (applicant_id,),
            )
            newer = bool(user) and (user[0][1] is None or created_at_ms > user[0][1])
            inserted = conn.execute(
                "INSERT INTO kyc_webhook_deliveries (payload_sha256, applicant_id, review_answer, "
                "review_created_at_ms, applied) VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT (payload_sha256) DO NOTHING RETURNING 1",
                (payload_sha256, applicant_id, answer, created_at_ms, newer),
            )
            if not inserted:
                return "duplicate"
            if not user:
                return "unknown"
            if not newer:
                return "stale"
            status = {"GREEN": "approved", "RED": "rejected"}.get(answer, "pending")
            conn.execute(
                "UPDATE users SET kyc_status = $2, kyc_review_created_at_ms = $3, "
                "updated_at = now() WHERE id = $1",
                (user[0][0], status, created_at_ms),
            )
            if status == "approved" and chain is not None:
                conn.execute(
                    "INSERT INTO identity_nfts (user_id, chain_id, contract_address, "
                    "wallet_address) SELECT id, $2, $3, wallet_address FROM users "
                    "WHERE id = $1 AND wallet_address IS NOT NULL "
                    "ON CONFLICT (user_id) DO NOTHING",
                    (user[0][0], chain[0], chain[1]),
                )
            return "applied"

    def identity(self, user_id: int) -> dict[str, Any]:
        """KYC state, wallet and identity token of a user, as the API shows them."""
        rows = self.pool.execute(
            "SELECT u.kyc_status, u.wallet_address, n.status, n.token_id, n.mint_tx_hash "
            "FROM users u LEFT JOIN identity_nfts n ON n.user_id = u.id WHERE u.id = $1",
            (user_id,),
        )
        kyc, wallet, nft_status, token_id, tx = rows[0]
        nft = None
        if nft_status is not None:
            nft = {
                "status": nft_status,
                "token_id": None if token_id is None else int(token_id),
                "mint_tx_hash": tx,
            }
        return {"kyc_status": kyc, "wallet_address": wallet, "nft": nft}

    # -- documents and the fail-safe

    def record_signature(
        self,
        user_id: int,
        document_sha256: str,
        file_name: str | None,
        media_type: str,
        size: int,
        mode: str,
        chain: tuple[int, str] | None,
        failsafe: tuple[str, float] | None,
    ) -> int:
        """Records a signature and queues its proof (and, for ``failsafe`` = (reason hash, delay
        seconds), the fail-safe) in one transaction; returns the signature id."""
        with self.pool.connection() as conn, conn.transaction():
            sig = conn.execute(
                "INSERT INTO signatures (user_id, document_sha256, file_name, media_type, "
                "size_bytes) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                (user_id, document_sha256, file_name, media_type, size),
            )[0][0]
            if chain is not None:
                conn.execute(
                    "INSERT INTO proofs (signature_id, mode, chain_id, contract_address) "
                    "VALUES ($1, $2, $3, $4)",
                    (sig, mode, chain[0], chain[1]),
                )
            if failsafe is not None:
                self._queue_failsafe(conn, user_id, "signature", *failsafe)
            return int(sig)

    def queue_failsafe(self, user_id: int, source: str, reason_hash: str, delay: float) -> None:
        """Queues the fail-safe of a user after ``delay`` seconds."""
        with self.pool.connection() as conn:
            self._queue_failsafe(conn, user_id, source, reason_hash, delay)

    @staticmethod
    def _queue_failsafe(conn: Any, user_id: int, source: str, reason: str, delay: float) -> None:
        conn.execute(
            "INSERT INTO failsafe_events (user_id, source, reason_hash, identity_nft_id, "
            "execute_after) SELECT $1, $2, $3, (SELECT id FROM identity_nfts WHERE user_id = $1), "
            "now() + make_interval(secs => $4)",
            (user_id, source, reason, delay),
        )

    def signature(self, user_id: int, signature_id: int) -> dict[str, Any] | None:
        """A user's signature and where its proof stands, or None."""
        rows = self.pool.execute(
            "SELECT s.id, s.document_sha256, s.media_type, s.size_bytes, s.signed_at, p.mode, "
            "p.status, p.tx_hash, p.block_number, p.leaf_index, "
            "array_to_json(p.inclusion_path) AS inclusion_path, b.merkle_root, b.tree_size, "
            "b.onchain_batch_id FROM signatures s "
            "LEFT JOIN proofs p ON p.signature_id = s.id "
            "LEFT JOIN proof_batches b ON b.id = p.batch_id WHERE s.id = $1 AND s.user_id = $2",
            (signature_id, user_id),
            as_dict=True,
        )
        if not rows:
            return None
        row = dict(rows[0])
        row["signed_at"] = row["signed_at"].isoformat()
        if row["onchain_batch_id"] is not None:
            row["onchain_batch_id"] = int(row["onchain_batch_id"])
        return row

    def failsafe_status(self) -> dict[str, Any]:
        """System-wide fail-safe queue figures (no per-user data: that would expose a duress)."""
        rows = self.pool.execute(
            "SELECT status, count(*) FROM failsafe_events GROUP BY status ORDER BY status"
        )
        last = self.pool.execute(
            "SELECT max(confirmed_at) FROM failsafe_events WHERE status = 'confirmed'"
        )[0][0]
        return {
            "events": {str(s): int(n) for s, n in rows},
            "last_confirmed_at": None if last is None else last.isoformat(),
        }

    def chain_events(self, limit: int) -> list[dict[str, Any]]:
        """The newest chain events the listener stored."""
        rows = self.pool.execute(
            "SELECT chain_id, block_number, tx_hash, log_index, contract_name, event_name, args "
            "FROM chain_events ORDER BY block_number DESC, log_index DESC LIMIT $1",
            (limit,),
            as_dict=True,
        )
        return [dict(r) for r in rows]
