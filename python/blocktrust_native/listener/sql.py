"""The listener's SQL, on its own tables (:mod:`blocktrust_native.listener.schema`).

A range's logs go in with ONE statement: the rows travel as one JSON document, inserts are
idempotent on (chain_id, tx_hash, log_index), and the application's tables are updated in the
same statement by its :class:`~blocktrust_native.listener.subscription.Projection`'s CTEs, from
the rows actually inserted (a replayed range changes nothing). The projection's ``after``
statements follow, for updates one statement cannot make (a row changed twice).
"""

from __future__ import annotations

from blocktrust_native.listener.subscription import Projection

__all__ = [
    "CHECKPOINT",
    "DELETE_BLOCKS_FROM",
    "DELETE_EVENTS_FROM",
    "RECORD_REORG",
    "REWIND_CHECKPOINT",
    "SAVE_BLOCK",
    "SAVE_CHECKPOINT",
    "STORED_BLOCKS",
    "insert_logs",
]

_INSERT = """
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
)"""


def insert_logs(projection: Projection) -> str:
    """The statement that inserts a range's logs with ``projection``'s CTEs: $1 chain id, $2 JSON
    array of rows, then one event name per ``projection.after`` entry. It returns (inserted,
    then per ``after`` entry the JSON array of [tx_hash, args] of that event's inserted rows)."""
    ctes = "".join(f",\n{c.strip()}" for c in projection.ctes)
    after = "".join(
        f",\n       coalesce(json_agg(json_build_array(tx_hash, args))\n"
        f"                FILTER (WHERE event_name = ${3 + k} AND args IS NOT NULL), '[]')"
        for k in range(len(projection.after))
    )
    return f"{_INSERT}{ctes}\nSELECT count(*)::bigint{after}\nFROM ins\n"


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
