"""Worker checks: the chain listener's checkpoint moves and its lag is under the objective; the
monitor's heartbeat is fresh when one runs."""

from __future__ import annotations

from validate_all_flows.checks import CheckResult, Status, check
from validate_all_flows.target import Target


@check("workers", ids=("workers.listener",))
def listener_lag(t: Target) -> list[CheckResult]:
    """The listener's checkpoint is fresh and its lag under the objective."""
    cid = "workers.listener"
    title = f"listener checkpoint fresh, lag under {t.slo.listener_lag_s:.0f} s"
    if not t.database_url:
        return [CheckResult(cid, title, Status.SKIP, "no database given (--database-url)")]
    rows = t.pool().execute(
        "SELECT listener, chain_id, next_block, lag_seconds, "
        "extract(epoch FROM now() - updated_at) FROM listener_checkpoints ORDER BY listener"
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
    pool = t.pool()
    if not pool.execute("SELECT to_regclass('monitor_heartbeats') IS NOT NULL")[0][0]:
        why = "no monitor_heartbeats table (migration 009 not applied), so no monitor runs here"
        return [CheckResult(cid, title, Status.SKIP, why)]
    rows = pool.execute(
        "SELECT instance, interval_seconds, extract(epoch FROM now() - beat_at), "
        "stopped_at IS NOT NULL FROM monitor_heartbeats ORDER BY instance"
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
