CREATE TABLE identities (
    id          serial PRIMARY KEY,
    account_id  int NOT NULL REFERENCES accounts (id),
    state       text NOT NULL DEFAULT 'pending',
    number      int
);
CREATE INDEX identities_account_idx ON identities (account_id);
CREATE TABLE signatures (
    id          serial PRIMARY KEY,
    account_id  int NOT NULL REFERENCES accounts (id),
    digest      text NOT NULL,
    state       text NOT NULL DEFAULT 'recorded'
);
