-- The listener's tables: the logs it read, the block hashes it saw (to detect reorganisations),
-- the reorganisations it rewound, and its checkpoint and lag. Installed by the library
-- (blocktrust_native.listener.schema.create_schema, which Listener(create=True) calls); safe to
-- run again and from several processes at once. Released text never changes: databases record
-- its checksum (a migration that applies it); a change to these tables is a new file.

-- One row per log; inserts are idempotent on (chain_id, tx_hash, log_index).
CREATE TABLE IF NOT EXISTS chain_events (
    chain_id         BIGINT NOT NULL CHECK (chain_id > 0),
    tx_hash          TEXT NOT NULL CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
    log_index        INTEGER NOT NULL CHECK (log_index >= 0),
    block_number     BIGINT NOT NULL CHECK (block_number >= 0),
    block_hash       TEXT NOT NULL CHECK (block_hash ~ '^0x[0-9a-f]{64}$'),
    contract_address TEXT NOT NULL CHECK (contract_address ~ '^0x[0-9a-f]{40}$'),
    -- the contract's name in the listener's configuration and the decoded event, when known
    contract_name    TEXT,
    event_name       TEXT,
    topics           TEXT[] NOT NULL CHECK (cardinality(topics) <= 4),
    data             TEXT NOT NULL CHECK (data ~ '^0x([0-9a-f]{2})*$'),
    args             JSONB,
    block_timestamp  TIMESTAMPTZ,
    inserted_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, tx_hash, log_index)
);

CREATE INDEX IF NOT EXISTS chain_events_block_idx ON chain_events (chain_id, block_number);
CREATE INDEX IF NOT EXISTS chain_events_name_idx
    ON chain_events (chain_id, event_name, block_number DESC);

-- The hash of every block the listener processed (recent ones suffice): a stored hash that no
-- longer matches the node's means a reorganisation; the listener rewinds to the common ancestor.
CREATE TABLE IF NOT EXISTS chain_blocks (
    chain_id         BIGINT NOT NULL CHECK (chain_id > 0),
    block_number     BIGINT NOT NULL CHECK (block_number >= 0),
    block_hash       TEXT NOT NULL CHECK (block_hash ~ '^0x[0-9a-f]{64}$'),
    parent_hash      TEXT NOT NULL CHECK (parent_hash ~ '^0x[0-9a-f]{64}$'),
    block_timestamp  TIMESTAMPTZ NOT NULL,
    seen_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, block_number)
);

CREATE TABLE IF NOT EXISTS chain_reorgs (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain_id         BIGINT NOT NULL CHECK (chain_id > 0),
    listener         TEXT NOT NULL,
    -- first block whose stored hash differed, and how many blocks were rewound
    fork_block       BIGINT NOT NULL CHECK (fork_block >= 0),
    depth            INTEGER NOT NULL CHECK (depth > 0),
    old_hash         TEXT NOT NULL CHECK (old_hash ~ '^0x[0-9a-f]{64}$'),
    new_hash         TEXT CHECK (new_hash ~ '^0x[0-9a-f]{64}$'),
    detected_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Where each listener resumes after a restart, and how far behind the chain head it is.
CREATE TABLE IF NOT EXISTS listener_checkpoints (
    chain_id         BIGINT NOT NULL CHECK (chain_id > 0),
    listener         TEXT NOT NULL,
    -- first block not yet processed; the block before it has hash last_block_hash
    next_block       BIGINT NOT NULL CHECK (next_block >= 0),
    last_block_hash  TEXT CHECK (last_block_hash ~ '^0x[0-9a-f]{64}$'),
    head_block       BIGINT CHECK (head_block >= 0),
    lag_blocks       BIGINT CHECK (lag_blocks >= 0),
    lag_seconds      DOUBLE PRECISION CHECK (lag_seconds >= 0),
    -- the adaptive eth_getLogs range in use (shrinks when the provider refuses, grows back)
    range_size       INTEGER CHECK (range_size > 0),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, listener)
);
