-- 009 monitor heartbeats: one row per running monitor, refreshed every cycle, so that the workers
-- check can tell a monitor that runs from one that died (008 only holds time series and alerts).

CREATE TABLE monitor_heartbeats (
    -- the name the monitor runs under (python -m validate_all_flows monitor --name)
    instance          TEXT PRIMARY KEY CHECK (length(instance) BETWEEN 1 AND 200),
    interval_seconds  DOUBLE PRECISION NOT NULL CHECK (interval_seconds > 0),
    started_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    beat_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    cycles            BIGINT NOT NULL DEFAULT 0 CHECK (cycles >= 0),
    -- set by a clean shutdown (SIGINT/SIGTERM); cleared when the monitor starts again
    stopped_at        TIMESTAMPTZ,
    version           TEXT NOT NULL DEFAULT ''
);
