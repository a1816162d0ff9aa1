-- 010 listener indexes: the listener matches each batch of chain events to the rows that sent the
-- transactions (proofs and fail-safe events by tx_hash, cancelled identities by token id). Without
-- these indexes every batch scans those tables, so ingest slows down as they grow.

CREATE INDEX proofs_tx_idx ON proofs (tx_hash) WHERE tx_hash IS NOT NULL;
CREATE INDEX failsafe_events_tx_idx ON failsafe_events (tx_hash) WHERE tx_hash IS NOT NULL;
CREATE INDEX identity_nfts_token_idx ON identity_nfts (token_id) WHERE token_id IS NOT NULL;
