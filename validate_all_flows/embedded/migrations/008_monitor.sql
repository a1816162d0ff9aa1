-- 008 monitor: metrics the scheduled checks record (lag, latency, SLO figures) and the alerts
-- they open, deduplicate, resolve and post to webhooks.

CREATE TABLE monitor_metrics (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             TEXT NOT NULL CHECK (name ~ '^[a-z][a-z0-9_.]*$'),
    value            DOUBLE PRECISION NOT NULL,
    labels           JSONB NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(labels) = 'object'),
    recorded_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX monitor_metrics_name_time_idx ON monitor_metrics (name, recorded_at DESC);
CREATE INDEX monitor_metrics_time_idx ON monitor_metrics (recorded_at);

CREATE TABLE monitor_alerts (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    check_name       TEXT NOT NULL,
    -- identifies "the same problem": at most one open alert per fingerprint
    fingerprint      TEXT NOT NULL,
    severity         TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    status           TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    message          TEXT NOT NULL,
    details          JSONB NOT NULL DEFAULT '{}'::jsonb,
    opened_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolved_at      TIMESTAMPTZ,
    notified_at      TIMESTAMPTZ,
    notify_attempts  INTEGER NOT NULL DEFAULT 0 CHECK (notify_attempts >= 0),
    CHECK ((status = 'resolved') = (resolved_at IS NOT NULL))
);

CREATE UNIQUE INDEX monitor_alerts_open_key ON monitor_alerts (fingerprint) WHERE status = 'open';
CREATE INDEX monitor_alerts_opened_idx ON monitor_alerts (opened_at DESC);
