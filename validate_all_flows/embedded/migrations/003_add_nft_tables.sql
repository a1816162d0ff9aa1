-- 003 NFT tables: the identity token of each user (IdentityNFT), as the backend and the listener
-- see it. One identity per user; token ids are uint256, hence NUMERIC(78, 0).

CREATE TABLE identity_nfts (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          BIGINT NOT NULL UNIQUE REFERENCES users (id) ON DELETE RESTRICT,
    chain_id         BIGINT NOT NULL CHECK (chain_id > 0),
    contract_address TEXT NOT NULL CHECK (contract_address ~ '^0x[0-9a-f]{40}$'),
    wallet_address   TEXT NOT NULL CHECK (wallet_address ~ '^0x[0-9a-f]{40}$'),
    -- NULL until the mint is mined
    token_id         NUMERIC(78, 0) CHECK (token_id > 0),
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'active', 'cancelled', 'failed')),
    mint_tx_hash     TEXT CHECK (mint_tx_hash ~ '^0x[0-9a-f]{64}$'),
    minted_block     BIGINT CHECK (minted_block >= 0),
    cancel_tx_hash   TEXT CHECK (cancel_tx_hash ~ '^0x[0-9a-f]{64}$'),
    cancelled_at     TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (chain_id, contract_address, token_id),
    CHECK (status IN ('pending', 'failed') OR token_id IS NOT NULL),
    CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL))
);

CREATE INDEX identity_nfts_wallet_idx ON identity_nfts (chain_id, wallet_address);
