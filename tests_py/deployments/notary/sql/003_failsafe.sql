CREATE TABLE failsafe_log (
    id          serial PRIMARY KEY,
    account_id  int NOT NULL REFERENCES accounts (id),
    state       text NOT NULL DEFAULT 'queued',
    created_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE accounts ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
CREATE TABLE listener_state (
    name                  text PRIMARY KEY,
    last_processed_block  bigint NOT NULL,
    updated_at            timestamptz NOT NULL DEFAULT now()
);
