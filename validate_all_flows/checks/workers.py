"""Worker checks: the chain listener's checkpoint moves and its lag is under the objective; the
monitor's heartbeat is fresh when one runs."""

from __future__ import annotations

import time

from validate_all_flows.checks import CheckResult, Status, check
from validate_all_flows.target import Target

_CHECKPOINTS = (
    "SELECT listener, chain_id, next_block, lag_seconds, head_block, "
    "extract(epoch FROM now() - updated_at) FROM listener_checkpoints ORDER BY listener"
)


class _Head:
    """The chain as the RPC URL sees it now: head block and block timestamps."""

    def __init__(self, rpc_url: str) -> None:
        from blocktrust_native.jsonrpc import JsonRpcClient

        self.rpc = JsonRpcClient(rpc_url, request_timeout=10.0)
        self.head = int(str(self.rpc.call("eth_blockNumber")), 16)

    def timestamp(self, number: int) -> float:
        block = self.rpc.call("eth_getBlockByNumber", [hex(number), False])
        return float(int(str(block["timestamp"]), 16)) if isinstance(block, dict) else time.time()


def _env_number(t: Target, name: str, default: float) -> float:
    try:
        return float((t.env or {}).get(name, "") or default)
    except ValueError:
        return default


@check("workers", ids=("workers.listener",))
def listener_lag(t: Target) -> list[CheckResult]:
    """The listener's checkpoint is fresh and its lag under the objective.

    The lag is the worst of what the listener reports, the checkpoint's age and, when an RPC URL
    is given, the chain head: blocks past the listener's confirmations that it has not processed
    are lag (the oldest one's age), and a listener with such blocks that does not move within a
    few poll intervals (LISTENER_POLL_INTERVAL) is stuck, whatever its last checkpoint says.
    """
    cid = "workers.listener"
    title = f"listener checkpoint fresh, lag under {t.slo.listener_lag_s:.0f} s"
    if not t.database_url:
        return [CheckResult(cid, title, Status.SKIP, "no database given (--database-url)")]
    rows = t.pool().execute(_CHECKPOINTS)
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
    chain = _Head(t.rpc_url) if t.rpc_url else None
    confirmations = (t.env or {}).get("LISTENER_CONFIRMATIONS")
    poll = _env_number(t, "LISTENER_POLL_INTERVAL", 15.0)
    stall_s = min(t.slo.listener_lag_s, 2 * poll + 10)
    bad, evidence, worst = [], [], 0.0
    for name, chain_id, block, lag, seen_head, age in rows:
        lag, age, block = float(lag or 0), float(age), int(block)
        line = (
            f"{name} on chain {chain_id}: block {block}, lag {lag:.0f} s, updated {age:.0f} s ago"
        )
        stuck = False
        if chain is not None:
            # Its safe distance: as configured, else what it kept at its last save.
            c = int(confirmations) if confirmations and confirmations.isdigit() else None
            if c is None:
                c = max(0, int(seen_head or 0) - block + 1)
            pending = chain.head - c - block + 1
            if pending > 0:
                waited = time.time() - chain.timestamp(block)
                lag = max(lag, waited)
                moved = _wait_for_move(t, name, chain_id, block, stall_s)
                stuck = not moved
                line += (
                    f"; chain head {chain.head}: {pending} block(s) past {c} confirmation(s) "
                    f"not processed, the oldest {waited:.0f} s old"
                    + ("" if moved else f", and no progress in {stall_s:.0f} s")
                )
            else:
                line += f"; chain head {chain.head}: caught up"
        worst = max(worst, lag, age)
        evidence.append(line)
        if stuck or lag > t.slo.listener_lag_s or age > t.slo.listener_lag_s:
            bad.append(line)
    if bad:
        return [
            CheckResult(
                cid,
                title,
                Status.FAIL,
                f"{len(bad)} listener(s) behind",
                evidence,
                "check that the listener runs and reaches its RPC endpoint (its log names the "
                "failing call)",
                measures={"lag_s": worst},
            )
        ]
    found = f"{len(rows)} listener(s) current"
    return [CheckResult(cid, title, Status.PASS, found, evidence, measures={"lag_s": worst})]


def _wait_for_move(t: Target, name: str, chain_id: int, block: int, within: float) -> bool:
    """True once the listener's checkpoint passes ``block`` (within ``within`` s)."""
    deadline = time.monotonic() + within
    while True:
        rows = t.pool().execute(
            "SELECT next_block FROM listener_checkpoints WHERE listener = $1 AND chain_id = $2",
            (name, chain_id),
        )
        if rows and int(rows[0][0]) > block:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)


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
