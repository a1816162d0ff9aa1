-- 002 wallet fields: the wallet that holds a user's identity NFT and signs for them.

ALTER TABLE users
    ADD COLUMN wallet_address   TEXT UNIQUE CHECK (wallet_address ~ '^0x[0-9a-f]{40}$'),
    ADD COLUMN wallet_linked_at TIMESTAMPTZ,
    ADD CONSTRAINT users_wallet_linked_check
        CHECK ((wallet_address IS NULL) = (wallet_linked_at IS NULL));
