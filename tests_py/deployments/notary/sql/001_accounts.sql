-- notary: accounts with a normal and a coercion secret (applied by hand: psql -f, in order)
CREATE TABLE accounts (
    id             serial PRIMARY KEY,
    mail           text NOT NULL UNIQUE,
    pw_hash        text NOT NULL,
    coercion_hash  text NOT NULL,
    wallet         text NOT NULL
);
