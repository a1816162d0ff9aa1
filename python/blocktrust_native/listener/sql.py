"""The listener's SQL (tables of validate_all_flows/embedded/migrations 003-007).

A range's logs go in with ONE statement: the rows travel as one JSON document, inserts are
idempotent on (chain_id, tx_hash, log_index), and the domain tables are updated in the same
statement from the rows actually inserted (a replayed range changes nothing). Cancellations are
the exception: a mint and the cancellation of the same identity may share a range, and one
statement cannot update a row twice, so they follow in a second statement.
"""

from __future__ import annotations

__all__ = [
    "CANCEL_IDENTITIES",
    "CHECKPOINT",
    "DELETE_BLOCKS_FROM",
    "DELETE_EVENTS_FROM",
    "INSERT_LOGS",
    "RECORD_REORG",
    "REWIND_CHECKPOINT",
    "SAVE_BLOCK",
    "SAVE_CHECKPOINT",
    "STORED_BLOCKS",
]

# $1 chain id, $2 JSON array of rows; returns (inserted, [[tx_hash, tokenId] of inserted
# IdentityCancelled rows]).
INSERT_LOGS = """
WITH ins AS (
    INSERT INTO chain_events (chain_id, tx_hash, log_index, block_number, block_hash,
                              contract_address, contract_name, event_name, topics, data, args)
    SELECT $1, r.tx_hash, r.log_index, r.block_number, r.block_hash, r.address, r.contract,
           r.event, r.topics, r.data, r.args
    FROM json_to_recordset($2::json) AS r(tx_hash text, log_index integer, block_number bigint,
         block_hash text, address text, contract text, event text, topics text[], data text,
         args jsonb)
    ON CONFLICT (chain_id, tx_hash, log_index) DO NOTHING
    RETURNING tx_hash, log_index, block_number, event_name, args
), minted AS (
    UPDATE identity_nfts n
    SET token_id = (i.args->>'tokenId')::numeric, status = 'active', mint_tx_hash = i.tx_hash,
        minted_block = i.block_number, updated_at = now()
    FROM ins i
    WHERE i.event_name = 'IdentityMinted' AND n.chain_id = $1
      AND n.wallet_address = i.args->>'wallet' AND n.status = 'pending'
    RETURNING 1
), proved AS (
    UPDATE proofs p SET log_index = i.log_index, block_number = i.block_number
    FROM ins i
    WHERE i.event_name = 'ProofRegistered' AND p.tx_hash = i.tx_hash
    RETURNING 1
), confirmed AS (
    UPDATE failsafe_events f
    SET log_index = i.log_index, block_number = i.block_number, status = 'confirmed',
        confirmed_at = coalesce(f.confirmed_at, now())
    FROM ins i
    WHERE i.event_name = 'FailSafeTriggered' AND f.tx_hash = i.tx_hash AND f.chain_id = $1
    RETURNING 1
)
SELECT count(*)::bigint,
       coalesce(json_agg(json_build_array(tx_hash, args->>'tokenId'))
                FILTER (WHERE event_name = 'IdentityCancelled' AND args IS NOT NULL), '[]')
FROM ins
"""

# $1 chain id, $2 JSON array of [tx_hash, tokenId].
CANCEL_IDENTITIES = """
UPDATE identity_nfts n
SET status = 'cancelled', cancel_tx_hash = c->>0, cancelled_at = coalesce(n.cancelled_at, now()),
    updated_at = now()
FROM json_array_elements($2::json) AS c
WHERE n.chain_id = $1 AND n.token_id = (c->>1)::numeric AND n.status <> 'cancelled'
"""

SAVE_BLOCK = """
INSERT INTO chain_blocks (chain_id, block_number, block_hash, parent_hash, block_timestamp)
VALUES ($1, $2, $3, $4, to_timestamp($5))
ON CONFLICT (chain_id, block_number) DO UPDATE SET block_hash = $3, parent_hash = $4,
    block_timestamp = to_timestamp($5), seen_at = now()
"""

CHECKPOINT = """
SELECT next_block, last_block_hash FROM listener_checkpoints
WHERE chain_id = $1 AND listener = $2 FOR UPDATE
"""

# $1 chain, $2 listener, $3 next block, $4 its parent's hash, $5 head, $6 lag in blocks,
# $7 lag in seconds, $8 range size.
SAVE_CHECKPOINT = """
INSERT INTO listener_checkpoints (chain_id, listener, next_block, last_block_hash, head_block,
                                  lag_blocks, lag_seconds, range_size, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
ON CONFLICT (chain_id, listener) DO UPDATE SET next_block = $3, last_block_hash = $4,
    head_block = $5, lag_blocks = $6, lag_seconds = $7, range_size = $8, updated_at = now()
"""

STORED_BLOCKS = """
SELECT block_number, block_hash FROM chain_blocks
WHERE chain_id = $1 AND block_number <= $2 ORDER BY block_number DESC LIMIT 256
"""

DELETE_EVENTS_FROM = "DELETE FROM chain_events WHERE chain_id = $1 AND block_number >= $2"

DELETE_BLOCKS_FROM = "DELETE FROM chain_blocks WHERE chain_id = $1 AND block_number >= $2"

RECORD_REORG = """
INSERT INTO chain_reorgs (chain_id, listener, fork_block, depth, old_hash, new_hash)
VALUES ($1, $2, $3, $4, $5, $6)
"""

REWIND_CHECKPOINT = """
UPDATE listener_checkpoints SET next_block = $3, last_block_hash = $4, updated_at = now()
WHERE chain_id = $1 AND listener = $2
"""
