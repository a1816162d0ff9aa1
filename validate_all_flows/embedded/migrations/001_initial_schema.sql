-- 001 initial schema: the accounts of the reference service, and KYC webhook deliveries.
-- Plain SQL for PostgreSQL 15. The runner applies each file in one transaction, in file-name
-- order, so these files hold no BEGIN/COMMIT. Chain values (addresses, hashes) are stored as
-- lowercase 0x-hex text throughout; document digests as plain lowercase hex (like sha256sum).

CREATE TABLE users (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email               TEXT NOT NULL
                        CHECK (length(email) BETWEEN 3 AND 320 AND position('@' IN email) > 1),
    -- PHC string from blocktrust_native.passwords (Argon2id).
    password_hash       TEXT NOT NULL CHECK (password_hash LIKE '$argon2%'),
    kyc_status          TEXT NOT NULL DEFAULT 'none'
                        CHECK (kyc_status IN ('none', 'pending', 'approved', 'rejected')),
    kyc_applicant_id    TEXT UNIQUE,
    -- createdAtMs of the newest review applied: an older review never overrides a newer one.
    kyc_review_created_at_ms BIGINT CHECK (kyc_review_created_at_ms >= 0),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One account per address, whatever its case.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- Sumsub-style webhooks carry no timestamp in their signature: a replayed body is recognised by
-- its hash and not applied twice.
CREATE TABLE kyc_webhook_deliveries (
    payload_sha256      TEXT PRIMARY KEY CHECK (payload_sha256 ~ '^[0-9a-f]{64}$'),
    applicant_id        TEXT NOT NULL,
    review_answer       TEXT,
    review_created_at_ms BIGINT CHECK (review_created_at_ms >= 0),
    -- false when the delivery was valid but older than the review already applied
    applied             BOOLEAN NOT NULL,
    received_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX kyc_webhook_deliveries_applicant_idx
    ON kyc_webhook_deliveries (applicant_id, received_at DESC);
