-- 004 signature tables (v1.4 called this file 004_add_pgp_tables): signed documents and their
-- proofs on ProofRegistry, one transaction per document ('single') or a Merkle batch ('batch').

-- A batch of document hashes anchored by its RFC 6962 Merkle root (ProofRegistry.anchorBatch).
CREATE TABLE proof_batches (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain_id         BIGINT NOT NULL CHECK (chain_id > 0),
    contract_address TEXT NOT NULL CHECK (contract_address ~ '^0x[0-9a-f]{40}$'),
    merkle_root      TEXT NOT NULL CHECK (merkle_root ~ '^0x[0-9a-f]{64}$'),
    tree_size        INTEGER NOT NULL CHECK (tree_size > 0),
    -- ProofRegistry's batch id, once anchored
    onchain_batch_id NUMERIC(78, 0) CHECK (onchain_batch_id > 0),
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'submitted', 'anchored', 'failed')),
    tx_hash          TEXT CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
    block_number     BIGINT CHECK (block_number >= 0),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    anchored_at      TIMESTAMPTZ,
    UNIQUE (chain_id, contract_address, merkle_root)
);

-- A document a user signed. A duress signature is recorded exactly like a normal one.
CREATE TABLE signatures (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          BIGINT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    document_sha256  TEXT NOT NULL CHECK (document_sha256 ~ '^[0-9a-f]{64}$'),
    file_name        TEXT CHECK (length(file_name) <= 255),
    media_type       TEXT NOT NULL,
    size_bytes       BIGINT NOT NULL CHECK (size_bytes >= 0),
    signed_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX signatures_user_idx ON signatures (user_id, signed_at DESC);
CREATE INDEX signatures_document_idx ON signatures (document_sha256);

-- Where a signature is proven on chain.
CREATE TABLE proofs (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    signature_id     BIGINT NOT NULL UNIQUE REFERENCES signatures (id) ON DELETE CASCADE,
    mode             TEXT NOT NULL CHECK (mode IN ('single', 'batch')),
    chain_id         BIGINT NOT NULL CHECK (chain_id > 0),
    contract_address TEXT NOT NULL CHECK (contract_address ~ '^0x[0-9a-f]{40}$'),
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'submitted', 'confirmed', 'failed')),
    -- the ProofRegistered log (single) or the BatchAnchored log (batch)
    tx_hash          TEXT CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
    block_number     BIGINT CHECK (block_number >= 0),
    log_index        INTEGER CHECK (log_index >= 0),
    -- batch mode: the batch, the leaf's position and its RFC 6962 audit path (0x-hex nodes)
    batch_id         BIGINT REFERENCES proof_batches (id) ON DELETE RESTRICT,
    leaf_index       INTEGER CHECK (leaf_index >= 0),
    inclusion_path   TEXT[],
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    confirmed_at     TIMESTAMPTZ,
    CHECK (mode = 'batch' OR (batch_id IS NULL AND leaf_index IS NULL AND inclusion_path IS NULL)),
    CHECK ((batch_id IS NULL) = (leaf_index IS NULL))
);

CREATE INDEX proofs_status_idx ON proofs (status, created_at) WHERE status IN ('pending', 'submitted');
CREATE INDEX proofs_batch_idx ON proofs (batch_id) WHERE batch_id IS NOT NULL;
