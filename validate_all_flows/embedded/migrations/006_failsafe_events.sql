-- 006 fail-safe events: a login or signature with the duress password. The cancellation goes
-- through the same queue as normal chain work, after a randomised delay (execute_after), so a
-- coercer watching the public chain cannot link it to the moment of coercion.

CREATE TABLE failsafe_events (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          BIGINT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    source           TEXT NOT NULL CHECK (source IN ('login', 'signature')),
    -- the bytes32 given to FailSafe.trigger (a hash, never the reason in clear)
    reason_hash      TEXT NOT NULL CHECK (reason_hash ~ '^0x[0-9a-f]{64}$'),
    identity_nft_id  BIGINT REFERENCES identity_nfts (id) ON DELETE RESTRICT,
    -- skipped: nothing to cancel (no active identity)
    status           TEXT NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'submitted', 'confirmed', 'failed', 'skipped')),
    execute_after    TIMESTAMPTZ NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error       TEXT,
    -- the FailSafeTriggered log, once mined (filled by the worker, confirmed by the listener)
    chain_id         BIGINT CHECK (chain_id > 0),
    tx_hash          TEXT CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
    block_number     BIGINT CHECK (block_number >= 0),
    log_index        INTEGER CHECK (log_index >= 0),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    confirmed_at     TIMESTAMPTZ,
    CHECK (status <> 'confirmed' OR tx_hash IS NOT NULL)
);

CREATE INDEX failsafe_events_due_idx ON failsafe_events (execute_after) WHERE status = 'queued';
CREATE INDEX failsafe_events_user_idx ON failsafe_events (user_id, created_at DESC);
