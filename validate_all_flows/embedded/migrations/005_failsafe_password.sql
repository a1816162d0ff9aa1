-- 005 the duress ("fail-safe") password. Every account has a duress hash (a random one when the
-- user sets none) so that its presence reveals nothing. Rows that existed before this migration
-- have none yet: the constraint is NOT VALID, so it binds every row inserted or updated from now
-- on while older rows are back-filled by the service; VALIDATE it once they are.

ALTER TABLE users
    ADD COLUMN duress_password_hash TEXT CHECK (duress_password_hash LIKE '$argon2%'),
    ADD COLUMN duress_updated_at    TIMESTAMPTZ;

ALTER TABLE users
    ADD CONSTRAINT users_duress_present CHECK (duress_password_hash IS NOT NULL) NOT VALID;
