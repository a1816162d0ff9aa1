-- 011 chain jobs that survive outages. Every transaction the chain worker signs is recorded (hash,
-- nonce, raw bytes) before it is sent, so a worker that dies between sending and recording finds
-- it again; one nonce row per signing key serialises nonces across threads and processes; every
-- job has a retry time (backoff, and the lease of the worker holding it); workers beat a heartbeat.

-- The next nonce of a signing key on a chain (locked FOR UPDATE while a transaction is signed).
CREATE TABLE chain_nonces (
    chain_id    BIGINT NOT NULL CHECK (chain_id > 0),
    address     TEXT NOT NULL CHECK (address ~ '^0x[0-9a-f]{40}$'),
    next_nonce  BIGINT NOT NULL CHECK (next_nonce >= 0),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, address)
);

-- Every transaction signed for a job; a replacement (higher fee, same nonce) is one more row.
CREATE TABLE chain_txs (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_kind     TEXT NOT NULL CHECK (job_kind IN ('mint', 'proof', 'batch', 'failsafe')),
    job_id       BIGINT NOT NULL,
    chain_id     BIGINT NOT NULL CHECK (chain_id > 0),
    sender       TEXT NOT NULL CHECK (sender ~ '^0x[0-9a-f]{40}$'),
    nonce        BIGINT NOT NULL CHECK (nonce >= 0),
    tx_hash      TEXT NOT NULL UNIQUE CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
    raw_tx       TEXT NOT NULL CHECK (raw_tx ~ '^0x[0-9a-f]+$'),
    gas          BIGINT NOT NULL CHECK (gas > 0),
    -- wei per gas offered: EIP-1559 max fee and tip, or a legacy gas price
    max_fee      NUMERIC(78, 0),
    tip          NUMERIC(78, 0),
    gas_price    NUMERIC(78, 0),
    -- sent: handed to the node (or about to be); mined / reverted: receipt seen;
    -- dropped: its nonce was spent by another transaction
    status       TEXT NOT NULL DEFAULT 'sent'
                 CHECK (status IN ('sent', 'mined', 'reverted', 'dropped')),
    block_number BIGINT CHECK (block_number >= 0),
    sent_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    settled_at   TIMESTAMPTZ
);

CREATE INDEX chain_txs_job_idx ON chain_txs (job_kind, job_id);
CREATE INDEX chain_txs_sent_idx ON chain_txs (chain_id, sender, nonce) WHERE status = 'sent';

-- Mints get the states and retry columns the other jobs have; 'submitted' has no token id yet.
ALTER TABLE identity_nfts DROP CONSTRAINT identity_nfts_status_check;
ALTER TABLE identity_nfts DROP CONSTRAINT identity_nfts_check;
ALTER TABLE identity_nfts
    ADD CONSTRAINT identity_nfts_status_check
        CHECK (status IN ('pending', 'submitted', 'active', 'cancelled', 'failed')),
    ADD CONSTRAINT identity_nfts_token_when_minted
        CHECK (status IN ('pending', 'submitted', 'failed') OR token_id IS NOT NULL),
    ADD COLUMN attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    ADD COLUMN last_error      TEXT,
    ADD COLUMN next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now();

-- conflict: the document is registered on chain by another signer (reported, never 'confirmed').
ALTER TABLE proofs DROP CONSTRAINT proofs_status_check;
ALTER TABLE proofs
    ADD CONSTRAINT proofs_status_check
        CHECK (status IN ('pending', 'submitted', 'confirmed', 'conflict', 'failed')),
    ADD COLUMN next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now();

ALTER TABLE proof_batches
    ADD COLUMN attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    ADD COLUMN last_error      TEXT,
    ADD COLUMN next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now();

ALTER TABLE failsafe_events
    ADD COLUMN next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now();

CREATE INDEX identity_nfts_due_idx ON identity_nfts (next_attempt_at)
    WHERE status IN ('pending', 'submitted');
CREATE INDEX proof_batches_due_idx ON proof_batches (next_attempt_at)
    WHERE status IN ('pending', 'submitted');

-- One row per chain worker (python -m validate_all_flows.embedded.service.worker, or the thread
-- in the service), refreshed every cycle; stopped_at is set by a clean shutdown.
CREATE TABLE chain_workers (
    worker           TEXT PRIMARY KEY CHECK (length(worker) BETWEEN 1 AND 200),
    chain_id         BIGINT NOT NULL CHECK (chain_id > 0),
    sender           TEXT NOT NULL CHECK (sender ~ '^0x[0-9a-f]{40}$'),
    interval_seconds DOUBLE PRECISION NOT NULL CHECK (interval_seconds > 0),
    started_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    beat_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    jobs_done        BIGINT NOT NULL DEFAULT 0 CHECK (jobs_done >= 0),
    stopped_at       TIMESTAMPTZ
);
