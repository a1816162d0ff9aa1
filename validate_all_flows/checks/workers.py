"""Worker checks: the chain listener's checkpoint moves and its lag is under the objective; the
monitor's heartbeat is fresh when one runs."""

from __future__ import annotations

from typing import Any

from validate_all_flows.checks import CheckResult, Status, check
from validate_all_flows.profile import WorkerSource
from validate_all_flows.target import Target

#: Names a worker's "last progress" column usually has, most telling first.
_TIME_COLUMNS = (
    "updated_at", "processed_at", "last_seen_at", "beat_at", "checked_at", "recorded_at",
    "created_at", "timestamp", "ts", "time",
)  # fmt: skip


class _Unobservable(Exception):
    """Nothing of the worker could be seen: the check is SKIP with this reason."""


def _time_column(t: Target, w: WorkerSource) -> str:
    """The table's time column: the profile's, else its only (or best-named) timestamp column."""
    assert w.table
    if w.time_column:
        return w.time_column
    cols = [
        str(r[0])
        for r in t.pool().execute(
            "SELECT column_name::text FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND table_name = $1 AND data_type LIKE 'timestamp%'",
            (w.table,),
        )
    ]
    if len(cols) == 1:
        return cols[0]
    for name in _TIME_COLUMNS:
        if name in cols:
            return name
    raise ValueError(
        f"table {w.table} has no timestamp column to read progress from"
        if not cols
        else f"table {w.table} has timestamp columns {', '.join(cols)}: name one in the profile"
    )


#: Column names of a listener's "last processed block" (table: auto looks for them).
BLOCK_COLUMNS = (
    "last_processed_block", "last_block", "last_block_number", "next_block", "current_block",
    "processed_block", "block_height",
)  # fmt: skip


def _auto_table(t: Target, w: WorkerSource) -> WorkerSource:
    """The one table with a last-processed-block column (``listener: {table: auto}``)."""
    from dataclasses import replace

    rows = t.pool().execute(
        "SELECT table_name::text, column_name::text FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND column_name = ANY($1::text[]) "
        "ORDER BY table_name",
        ("{" + ",".join(BLOCK_COLUMNS) + "}",),
    )
    tables = sorted({str(r[0]) for r in rows})
    if not tables:
        raise _Unobservable(
            "no table with a last-processed-block column ("
            + ", ".join(BLOCK_COLUMNS[:3])
            + ", ...)"
        )
    if len(tables) > 1:
        raise ValueError(
            f"tables {', '.join(tables)} all look like a listener's: name one in the profile "
            "(workers.listener.table)"
        )
    column = next(str(c) for tb, c in rows if tb == tables[0])
    return replace(w, table=tables[0], block_column=w.block_column or column)


def progress(t: Target, w: WorkerSource, with_block: bool) -> list[tuple[str, Any, float]]:
    """(name, block or None, seconds since the last progress) per worker, from a ``table`` or
    ``sql`` source; _Unobservable when there is nothing to read."""
    pool = t.pool()
    if w.kind == "sql":
        assert w.sql
        rows = t.read_only(f"SELECT * FROM ({w.sql}) AS q LIMIT 100")
        out = []
        for r in rows:
            if len(r) < 2:
                raise ValueError(
                    "the worker SQL must return (name, [block,] seconds since progress)"
                )
            age = r[-1]
            out.append((str(r[0]), r[1] if with_block and len(r) > 2 else None, float(age)))
        if not out:
            raise _Unobservable("the worker SQL returned no row")
        return out
    assert w.table
    if w.table == "auto":
        w = _auto_table(t, w)
    if not pool.execute("SELECT to_regclass($1) IS NOT NULL", (w.table,))[0][0]:
        raise _Unobservable(f"no table {w.table}")
    col = _time_column(t, w)
    block = f'max("{w.block_column}")' if with_block and w.block_column else "NULL"
    row = pool.execute(
        f'SELECT {block}, extract(epoch FROM now() - max("{col}")) FROM "{w.table}"'
    )[0]
    if row[1] is None:
        raise _Unobservable(f"table {w.table} is empty")
    return [(f"{w.table}.{col}", row[0], float(row[1]))]


def _undeclared(t: Target, cid: str, title: str, what: str) -> CheckResult:
    why = f"the profile ({t.profile.name}) declares no {what}"
    return CheckResult(cid, title, Status.SKIP, why)


def _judge_progress(
    t: Target, cid: str, title: str, w: WorkerSource, limit: float, what: str, fix: str
) -> CheckResult:
    try:
        rows = progress(t, w, with_block=what == "listener")
    except _Unobservable as exc:
        return CheckResult(cid, title, Status.SKIP, f"no {what} progress found ({exc})")
    evidence, bad, worst = [], [], 0.0
    for name, block, age in rows:
        worst = max(worst, age)
        line = f"{name}: " + (f"block {block}, " if block is not None else "")
        line += f"last progress {age:.0f} s ago"
        evidence.append(line)
        if age > limit:
            bad.append(line)
    measures = {"lag_s" if what == "listener" else "heartbeat_age_s": worst}
    if bad:
        found = f"{len(bad)} {what}(s) without progress for over {limit:.0f} s"
        return CheckResult(cid, title, Status.FAIL, found, evidence, fix, measures=measures)
    found = f"{len(rows)} {what}(s) current: {evidence[0]}"
    return CheckResult(cid, title, Status.PASS, found, evidence, measures=measures)


@check("workers", ids=("workers.listener",))
def listener_lag(t: Target) -> list[CheckResult]:
    """The listener's checkpoint is fresh and its lag under the objective."""
    cid = "workers.listener"
    w = t.profile.listener
    limit = w.max_age_s if w and w.max_age_s else t.slo.listener_lag_s
    title = f"listener checkpoint fresh, lag under {limit:.0f} s"
    if not t.database_url:
        return [CheckResult(cid, title, Status.SKIP, "no database given (--database-url)")]
    if w is None:
        return [_undeclared(t, cid, title, "listener (workers.listener)")]
    if w.kind != "checkpoints":
        fix = "check that the listener runs and reaches its RPC endpoint"
        return [_judge_progress(t, cid, title, w, limit, "listener", fix)]
    rows = t.pool().execute(
        "SELECT listener, chain_id, next_block, lag_seconds, "
        f'extract(epoch FROM now() - updated_at) FROM "{w.table}" ORDER BY listener'
    )
    if not rows:
        return [
            CheckResult(
                cid,
                title,
                Status.FAIL,
                "no listener has written a checkpoint",
                fix="start the listener worker (python -m blocktrust_native.listener)",
            )
        ]
    bad, evidence, worst = [], [], 0.0
    for name, chain_id, block, lag, age in rows:
        lag = float(lag or 0)
        worst = max(worst, lag, float(age))
        line = (
            f"{name} on chain {chain_id}: block {block}, lag {lag:.0f} s, updated {age:.0f} s ago"
        )
        evidence.append(line)
        if lag > t.slo.listener_lag_s or age > t.slo.listener_lag_s:
            bad.append(line)
    if bad:
        return [
            CheckResult(
                cid,
                title,
                Status.FAIL,
                f"{len(bad)} listener(s) behind",
                evidence,
                "check that the listener runs and reaches its RPC endpoint",
                measures={"lag_s": worst},
            )
        ]
    found = f"{len(rows)} listener(s) current"
    return [CheckResult(cid, title, Status.PASS, found, evidence, measures={"lag_s": worst})]


#: A running monitor whose heartbeat is older than this many intervals (plus the margin) is dead.
HEARTBEAT_INTERVALS = 3
HEARTBEAT_MARGIN_S = 60.0


@check("workers", ids=("workers.monitor",))
def monitor(t: Target) -> list[CheckResult]:
    """Every running monitor's heartbeat is fresh (``python -m validate_all_flows monitor``).

    The monitor refreshes its row in ``monitor_heartbeats`` every cycle and marks it stopped on a
    clean shutdown. A row neither fresh nor stopped is a monitor that died: FAIL. With no row, or
    only stopped ones, no monitor runs and the check is skipped with that reason.
    """
    cid = "workers.monitor"
    title = "monitor heartbeat fresh when one runs"
    if not t.database_url:
        return [CheckResult(cid, title, Status.SKIP, "no database given (--database-url)")]
    w = t.profile.monitor
    if w is None:
        return [_undeclared(t, cid, title, "monitor (workers.monitor)")]
    if w.kind != "heartbeats":
        interval = float(t.env_value("MONITOR_CHECK_INTERVAL") or 60)
        limit = w.max_age_s or HEARTBEAT_INTERVALS * interval + HEARTBEAT_MARGIN_S
        fix = "start the monitor worker (e.g. python3 -m backend.monitor.runner) and read its log"
        return [_judge_progress(t, cid, title, w, limit, "monitor", fix)]
    pool = t.pool()
    if not pool.execute("SELECT to_regclass($1) IS NOT NULL", (w.table,))[0][0]:
        why = "no monitor_heartbeats table (migration 009 not applied), so no monitor runs here"
        return [CheckResult(cid, title, Status.SKIP, why)]
    rows = pool.execute(
        "SELECT instance, interval_seconds, extract(epoch FROM now() - beat_at), "
        f'stopped_at IS NOT NULL FROM "{w.table}" ORDER BY instance'
    )
    running = [r for r in rows if not r[3]]
    if not running:
        why = "no monitor runs" + (f" ({len(rows)} stopped cleanly)" if rows else "")
        return [CheckResult(cid, title, Status.SKIP, why)]
    evidence, dead, oldest = [], [], 0.0
    for instance, interval, age, _stopped in running:
        limit = HEARTBEAT_INTERVALS * float(interval) + HEARTBEAT_MARGIN_S
        line = f"{instance}: last beat {float(age):.0f} s ago (every {float(interval):.0f} s)"
        evidence.append(line)
        oldest = max(oldest, float(age))
        if float(age) > limit:
            dead.append(line)
    measures = {"heartbeat_age_s": oldest}
    if dead:
        return [
            CheckResult(
                cid,
                title,
                Status.FAIL,
                f"{len(dead)} monitor(s) stopped beating without a clean shutdown",
                evidence,
                "restart the monitor worker (python -m validate_all_flows monitor ...) "
                "and read its log for why it died",
                measures=measures,
            )
        ]
    found = f"{len(running)} monitor(s) beating"
    return [CheckResult(cid, title, Status.PASS, found, evidence, measures=measures)]
