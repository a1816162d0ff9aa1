"""The Blocktrust contracts as a listener follows them: the three contracts of
contracts_config.json, and what their events change in the Blocktrust tables.

``IdentityMinted`` activates the pending identity (``identity_nfts``), ``ProofRegistered`` fills
the proof's block and log index (``proofs``), ``FailSafeTriggered`` confirms the fail-safe
(``failsafe_events``), ``IdentityCancelled`` cancels the identity. Those tables are the
application's (the embedded stack's migrations 003-006, with the lookup indexes of 010).
``Listener(pool, rpc, config)`` with a :class:`ContractsConfig` follows :func:`subscription`.
"""

from __future__ import annotations

from blocktrust_native.listener.contracts import CONTRACT_NAMES, ContractsConfig
from blocktrust_native.listener.subscription import Projection, Subscription

__all__ = ["PROJECTION", "subscription"]

_MINTED = """minted AS (
    UPDATE identity_nfts n
    SET token_id = (i.args->>'tokenId')::numeric, status = 'active', mint_tx_hash = i.tx_hash,
        minted_block = i.block_number, updated_at = now()
    FROM ins i
    WHERE i.event_name = 'IdentityMinted' AND n.chain_id = $1
      AND n.wallet_address = i.args->>'wallet' AND n.status = 'pending'
    RETURNING 1
)"""

_PROVED = """proved AS (
    UPDATE proofs p SET log_index = i.log_index, block_number = i.block_number
    FROM ins i
    WHERE i.event_name = 'ProofRegistered' AND p.tx_hash = i.tx_hash
    RETURNING 1
)"""

_CONFIRMED = """confirmed AS (
    UPDATE failsafe_events f
    SET log_index = i.log_index, block_number = i.block_number, status = 'confirmed',
        confirmed_at = coalesce(f.confirmed_at, now())
    FROM ins i
    WHERE i.event_name = 'FailSafeTriggered' AND f.tx_hash = i.tx_hash AND f.chain_id = $1
    RETURNING 1
)"""

# A mint and the cancellation of the same identity may share a range: after the insert.
# $1 chain id, $2 JSON array of [tx_hash, args].
_CANCELLED = """
UPDATE identity_nfts n
SET status = 'cancelled', cancel_tx_hash = c->>0, cancelled_at = coalesce(n.cancelled_at, now()),
    updated_at = now()
FROM json_array_elements($2::json) AS c
WHERE n.chain_id = $1 AND n.token_id = (c->1->>'tokenId')::numeric AND n.status <> 'cancelled'
"""

#: What the Blocktrust events change in the Blocktrust tables.
PROJECTION = Projection(
    ctes=(_MINTED, _PROVED, _CONFIRMED), after=(("IdentityCancelled", _CANCELLED),)
)


def subscription(config: ContractsConfig) -> Subscription:
    """The three contracts of ``config`` with the Blocktrust :data:`PROJECTION`."""
    return Subscription(
        {name: config.entry(name) for name in CONTRACT_NAMES}, config.chain_id, PROJECTION
    )
