"""Where the monitor keeps what it saw: ``monitor_metrics``, ``monitor_alerts`` (migration 008)
and ``monitor_heartbeats`` (009), through a small native pool.

Metric rows are buffered and written at the end of each cycle with the cycle's own timestamp. When
the store cannot be reached (often the monitored database itself is the one that is down) the rows
stay buffered, up to :data:`MAX_BUFFERED` of them, and go out once it answers again: the cycles of
an outage are exactly the ones the uptime figures must not lose.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from blocktrust_native.pool import Pool

__all__ = ["MAX_BUFFERED", "MetricRow", "MonitorStore", "SloInputs", "StoreTablesMissing"]

log = logging.getLogger("validate_all_flows.monitor")

#: Metric rows kept while the store is unreachable (about a day of cycles at the defaults).
MAX_BUFFERED = 50_000

TABLES = ("monitor_metrics", "monitor_alerts", "monitor_heartbeats")


class StoreTablesMissing(RuntimeError):
    """Raised when the store answers but lacks the monitor's tables; names them."""


@dataclass(frozen=True)
class MetricRow:
    """One sample: ``name`` (``^[a-z][a-z0-9_.]*$``), value, labels and when it was taken."""

    name: str
    value: float
    labels: dict[str, str]
    at: dt.datetime


@dataclass(frozen=True)
class SloInputs:
    """The counts one SLO evaluation needs, over ``[start, end]`` for one monitor instance."""

    start: dt.datetime
    end: dt.datetime
    first_sample: dt.datetime | None
    cycles: int  # cycles whose availability was known
    up_cycles: int
    cycles_1h: int
    up_cycles_1h: int
    probes: int  # HTTP probes sent
    probe_errors: int  # ... that got no 2xx answer
    p95_ms: float | None
    max_lag_s: float | None


class MonitorStore:
    """The monitor's tables in ``dsn``, for the monitor named ``instance``."""

    def __init__(self, dsn: str, instance: str) -> None:
        self.instance = instance
        # 3: one session holds the monitors' leader lock (validate_all_flows.monitor.runner).
        self.pool = Pool(dsn, min_size=0, max_size=3, acquire_timeout=10, connect_timeout=5)
        self._buffer: list[MetricRow] = []
        self.dropped = 0  # rows lost because the buffer was full

    def close(self) -> None:
        """Closes the pool (buffered rows that never reached the store are lost)."""
        self.pool.close()

    def missing_tables(self) -> list[str]:
        """The monitor tables the store lacks (raises the pool's error when it cannot answer)."""
        rows = self.pool.execute(
            "SELECT t FROM unnest(ARRAY['monitor_metrics', 'monitor_alerts', "
            "'monitor_heartbeats']) AS t WHERE to_regclass(t) IS NULL"
        )
        return [str(r[0]) for r in rows]

    # --- metrics

    def add(self, name: str, value: float, at: dt.datetime, **labels: str) -> None:
        """Buffers one sample of this instance (written by :meth:`flush`)."""
        self._buffer.append(
            MetricRow(name, float(value), {"instance": self.instance, **labels}, at)
        )
        if len(self._buffer) > MAX_BUFFERED:
            drop = len(self._buffer) - MAX_BUFFERED
            del self._buffer[:drop]
            self.dropped += drop

    @property
    def buffered(self) -> int:
        """Samples not yet written."""
        return len(self._buffer)

    def flush(self) -> int:
        """Writes the buffered samples in one transaction; returns how many. Raises the pool's
        error when the store cannot take them (they stay buffered)."""
        if not self._buffer:
            return 0
        rows = list(self._buffer)
        with self.pool.connection() as conn, conn.transaction():
            conn.execute_many(
                "INSERT INTO monitor_metrics (name, value, labels, recorded_at) "
                "VALUES ($1, $2, $3, $4)",
                [(r.name, r.value, r.labels, r.at) for r in rows],
            )
        del self._buffer[: len(rows)]
        return len(rows)

    # --- heartbeat

    def beat(self, interval_s: float, cycles: int, version: str, *, starting: bool = False) -> None:
        """Refreshes this instance's heartbeat; ``starting`` also resets started_at and clears a
        previous clean stop."""
        if starting:
            self.pool.execute(
                "INSERT INTO monitor_heartbeats (instance, interval_seconds, cycles, version) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (instance) DO UPDATE SET "
                "interval_seconds = EXCLUDED.interval_seconds, started_at = now(), "
                "beat_at = now(), cycles = EXCLUDED.cycles, stopped_at = NULL, "
                "version = EXCLUDED.version",
                (self.instance, float(interval_s), cycles, version),
            )
            return
        self.pool.execute(
            "INSERT INTO monitor_heartbeats (instance, interval_seconds, cycles, version) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (instance) DO UPDATE SET "
            "interval_seconds = EXCLUDED.interval_seconds, beat_at = now(), "
            "cycles = EXCLUDED.cycles, stopped_at = NULL",
            (self.instance, float(interval_s), cycles, version),
        )

    def mark_stopped(self) -> None:
        """Records a clean shutdown (the workers check then no longer expects beats)."""
        self.pool.execute(
            "UPDATE monitor_heartbeats SET stopped_at = now(), beat_at = now() WHERE instance = $1",
            (self.instance,),
        )

    # --- alerts

    def open_alerts(self) -> list[dict[str, Any]]:
        """This instance's open alerts (to carry deduplication across restarts)."""
        return self.pool.execute(
            "SELECT id, check_name, fingerprint, severity, message, details, opened_at, "
            "last_seen_at, notified_at, notify_attempts FROM monitor_alerts "
            "WHERE status = 'open' AND details->>'instance' = $1 ORDER BY id",
            (self.instance,),
            as_dict=True,
        )

    def save_alert(self, a: Any) -> int:
        """Writes an alert's current state (``a`` is an alerts.Alert); returns its row id.

        An alert without a row yet first takes over the open row of its fingerprint, if one was
        left by an earlier run (the unique index allows one open alert per fingerprint).
        """
        status = "open" if a.resolved_at is None else "resolved"
        if a.row_id is None:
            rows = self.pool.execute(
                "UPDATE monitor_alerts SET severity = $2, status = $3, message = $4, "
                "details = $5, opened_at = LEAST(opened_at, $6), last_seen_at = $7, "
                "resolved_at = $8, notified_at = COALESCE($9, notified_at), "
                "notify_attempts = notify_attempts + $10 "
                "WHERE fingerprint = $1 AND status = 'open' RETURNING id",
                (a.fingerprint, a.severity, status, a.message, a.details, a.opened_at,
                 a.last_seen_at, a.resolved_at, a.notified_at, a.notify_attempts),
            )  # fmt: skip
            if rows:
                return int(rows[0][0])
            rows = self.pool.execute(
                "INSERT INTO monitor_alerts (check_name, fingerprint, severity, status, message, "
                "details, opened_at, last_seen_at, resolved_at, notified_at, notify_attempts) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
                (a.check_id, a.fingerprint, a.severity, status, a.message, a.details,
                 a.opened_at, a.last_seen_at, a.resolved_at, a.notified_at,
                 a.notify_attempts),
            )  # fmt: skip
            return int(rows[0][0])
        self.pool.execute(
            "UPDATE monitor_alerts SET severity = $1, status = $2, message = $3, details = $4, "
            "opened_at = $5, last_seen_at = $6, resolved_at = $7, notified_at = $8, "
            "notify_attempts = $9 WHERE id = $10",
            (a.severity, status, a.message, a.details, a.opened_at, a.last_seen_at,
             a.resolved_at, a.notified_at, a.notify_attempts, a.row_id),
        )  # fmt: skip
        return int(a.row_id)

    # --- SLO inputs and retention

    def slo_inputs(self, start: dt.datetime, end: dt.datetime) -> SloInputs:
        """Counts this instance's samples over ``(start, end]`` (the last hour for burn rates)."""
        hour = end - dt.timedelta(hours=1)
        row = self.pool.execute(
            "SELECT "
            "count(*) FILTER (WHERE name = 'monitor.up'), "
            "count(*) FILTER (WHERE name = 'monitor.up' AND value >= 1), "
            "count(*) FILTER (WHERE name = 'monitor.up' AND recorded_at > $3), "
            "count(*) FILTER (WHERE name = 'monitor.up' AND value >= 1 AND recorded_at > $3), "
            "count(*) FILTER (WHERE name = 'probe.status'), "
            "count(*) FILTER (WHERE name = 'probe.status' AND NOT (value >= 200 AND value < 300)), "
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY value) "
            "  FILTER (WHERE name = 'probe.latency_ms'), "
            "max(value) FILTER (WHERE name = 'listener.lag_seconds'), "
            "min(recorded_at) "
            "FROM monitor_metrics WHERE name IN ('monitor.up', 'probe.status', "
            "'probe.latency_ms', 'listener.lag_seconds') "
            "AND recorded_at > $1 AND recorded_at <= $2 AND labels @> $4",
            (start, end, hour, {"instance": self.instance}),
        )[0]
        return SloInputs(
            start=start,
            end=end,
            first_sample=row[8],
            cycles=int(row[0]),
            up_cycles=int(row[1]),
            cycles_1h=int(row[2]),
            up_cycles_1h=int(row[3]),
            probes=int(row[4]),
            probe_errors=int(row[5]),
            p95_ms=None if row[6] is None else float(row[6]),
            max_lag_s=None if row[7] is None else float(row[7]),
        )

    def prune(self, before: dt.datetime) -> tuple[int, int]:
        """Deletes this instance's samples and resolved alerts older than ``before``."""
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(
                "DELETE FROM monitor_metrics WHERE recorded_at < $1 AND labels @> $2",
                (before, {"instance": self.instance}),
            )
            metrics = conn.rowcount
            conn.execute(
                "DELETE FROM monitor_alerts WHERE status = 'resolved' AND resolved_at < $1 "
                "AND details->>'instance' = $2",
                (before, self.instance),
            )
            alerts = conn.rowcount
        return metrics, alerts
