-- 012 chain job indexes: what watches the chain worker (the workers.chain check and the monitor's
-- backlog gauges, every cycle) counts each kind's failed jobs and the pending fail-safes. Both are
-- few, but without these indexes each count scans its whole table, and a cycle slows down as the
-- tables grow (0.4 s a count on 2 million fail-safe events; 0.3 ms with the index). Partial: only
-- the rows counted are indexed; status is already in the predicate of an index on each table, so
-- no update that was HOT stops being one. Plain CREATE INDEX (the runner's transaction): it holds
-- writes to a table for one scan of it.

CREATE INDEX identity_nfts_failed_idx ON identity_nfts (id) WHERE status = 'failed';
CREATE INDEX proofs_failed_idx ON proofs (id) WHERE status = 'failed';
CREATE INDEX proof_batches_failed_idx ON proof_batches (id) WHERE status = 'failed';
CREATE INDEX failsafe_events_failed_idx ON failsafe_events (id) WHERE status = 'failed';
CREATE INDEX failsafe_events_open_idx ON failsafe_events (execute_after)
    WHERE status IN ('queued', 'submitted');
