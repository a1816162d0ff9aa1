"""Worker checks: the chain listener's checkpoint moves and its lag is under the objective."""

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
    bad, evidence = [], []
    for name, chain_id, block, lag, age in rows:
        lag = float(lag or 0)
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
            )
        ]
    return [CheckResult(cid, title, Status.PASS, f"{len(rows)} listener(s) current", evidence)]
