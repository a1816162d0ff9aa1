"""Worker checks: the chain listener's checkpoint moves and its lag is under the objective; the
monitor's heartbeat is fresh when one runs; the chain worker beats, keeps fail-safes on time,
has no failed or stuck job and gas for fail-safes."""

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


#: Gas a FailSafe.trigger costs (measured 109,349 on anvil), rounded up for head-room.
FAILSAFE_GAS = 120_000
#: How many fail-safes the signer's balance must cover when --min-gas-balance is not given.
FAILSAFES_FUNDED = 20


@check("workers", ids=("workers.chain",))
def chain_worker(t: Target) -> list[CheckResult]:
    """The chain worker runs and keeps up: a fresh heartbeat, no fail-safe past its time plus the
    margin, no mint or proof pending longer than the objective, no failed job, and a signer with
    gas for ``FAILSAFES_FUNDED`` fail-safes at the current fee (or ``--min-gas-balance``).

    Read-only. Every problem names the job (table and id) or the worker; NO-GO on any.
    """
    cid = "workers.chain"
    title = "chain worker alive, fail-safes on time, no failed or stuck job, gas for fail-safes"
    if not t.database_url:
        return [CheckResult(cid, title, Status.SKIP, "no database given (--database-url)")]
    pool = t.pool()
    if not pool.execute("SELECT to_regclass('chain_workers') IS NOT NULL")[0][0]:
        why = "no chain_workers table (migration 011 not applied): the worker has no heartbeat"
        return [CheckResult(cid, title, Status.SKIP, why)]
    problems: list[str] = []
    evidence: list[str] = []
    measures: dict[str, float] = {}
    # -- heartbeat
    workers = pool.execute(
        "SELECT worker, sender, interval_seconds, extract(epoch FROM now() - beat_at), jobs_done "
        "FROM chain_workers WHERE stopped_at IS NULL ORDER BY worker"
    )
    open_jobs = int(
        pool.execute(
            "SELECT (SELECT count(*) FROM identity_nfts WHERE status IN ('pending', 'submitted'))"
            " + (SELECT count(*) FROM proofs WHERE status IN ('pending', 'submitted'))"
            " + (SELECT count(*) FROM failsafe_events WHERE status IN ('queued', 'submitted'))"
        )[0][0]
    )
    alive = []
    for name, sender, interval, age, done in workers:
        limit = HEARTBEAT_INTERVALS * float(interval) + t.worker_stale_s
        line = f"worker {name} ({sender}): last beat {float(age):.0f} s ago, {done} job(s) done"
        evidence.append(line)
        if float(age) > limit:
            problems.append(f"worker {name} is dead: no heartbeat for {float(age):.0f} s")
        else:
            alive.append(sender)
    if not workers and open_jobs:
        problems.append(f"no chain worker runs and {open_jobs} job(s) wait")
    elif not workers:
        evidence.append("no chain worker runs (and no job waits)")
    # -- the queue
    late = pool.execute(
        "SELECT id, status, attempts, extract(epoch FROM now() - execute_after), last_error "
        "FROM failsafe_events WHERE status IN ('queued', 'submitted') "
        "AND execute_after < now() - make_interval(secs => $1) ORDER BY execute_after",
        (t.chain_margin_s,),
    )
    for fid, status, attempts, late_s, err in reversed(late):  # listed first, most overdue first
        problems.insert(
            0,
            f"failsafe_events {fid} is {float(late_s):.0f} s past its time ({status}, "
            f"{attempts} attempt(s)" + (f", last error: {err}" if err else "") + ")",
        )
    slow = pool.execute(
        "SELECT 'identity_nfts', id, status, attempts, extract(epoch FROM now() - created_at), "
        "last_error FROM identity_nfts WHERE status IN ('pending', 'submitted') "
        "AND created_at < now() - make_interval(secs => $1) "
        "UNION ALL SELECT 'proofs', id, status, attempts, extract(epoch FROM now() - created_at), "
        "last_error FROM proofs WHERE status IN ('pending', 'submitted') "
        "AND created_at < now() - make_interval(secs => $1) ORDER BY 5 DESC LIMIT 20",
        (t.job_objective_s,),
    )
    for table, jid, status, attempts, age, err in slow:
        problems.append(
            f"{table} {jid} {status} for {float(age):.0f} s (objective {t.job_objective_s:.0f} s, "
            f"{attempts} attempt(s)" + (f", last error: {err}" if err else "") + ")"
        )
    failed = pool.execute(
        "SELECT 'identity_nfts', id, last_error FROM identity_nfts WHERE status = 'failed' "
        "UNION ALL SELECT 'proofs', id, last_error FROM proofs WHERE status = 'failed' "
        "UNION ALL SELECT 'proof_batches', id, last_error FROM proof_batches "
        "WHERE status = 'failed' "
        "UNION ALL SELECT 'failsafe_events', id, last_error FROM failsafe_events "
        "WHERE status = 'failed' ORDER BY 1, 2 LIMIT 50"
    )
    for table, jid, err in failed:
        problems.append(f"{table} {jid} failed: {err or 'no reason recorded'}")
    conflicts = pool.execute(
        "SELECT id, last_error FROM proofs WHERE status = 'conflict' ORDER BY id LIMIT 20"
    )
    for pid, err in conflicts:
        evidence.append(f"proofs {pid}: the document is registered by someone else ({err})")
    measures["overdue_failsafes"] = float(len(late))
    measures["failed_jobs"] = float(len(failed))
    # -- gas
    if alive and t.rpc_url:
        problems += _gas(t, sorted(set(alive)), evidence, measures)
    elif alive:
        evidence.append("signer balance not checked: no --rpc-url")
    if problems:
        return [
            CheckResult(
                cid,
                title,
                Status.FAIL,
                f"{len(problems)} problem(s): " + problems[0],
                problems + evidence,
                "start or restart the chain worker (python -m "
                "validate_all_flows.embedded.service.worker), read its log for the jobs named, "
                "and fund its signing key",
                measures=measures,
            )
        ]
    found = f"{len(alive)} chain worker(s) beating, {open_jobs} job(s) in progress, none late"
    return [CheckResult(cid, title, Status.PASS, found, evidence, measures=measures)]


def _gas(
    t: Target, senders: list[str], evidence: list[str], measures: dict[str, float]
) -> list[str]:
    from blocktrust_native.jsonrpc import JsonRpcClient

    assert t.rpc_url
    rpc = JsonRpcClient(t.rpc_url, request_timeout=10.0)
    need = t.min_gas_balance_wei
    if need is None:
        price = int(str(rpc.call("eth_gasPrice")), 16)
        need = FAILSAFES_FUNDED * FAILSAFE_GAS * price
        basis = f"{FAILSAFES_FUNDED} fail-safes at {price / 1e9:.3g} gwei"
    else:
        basis = "--min-gas-balance"
    problems = []
    for sender in senders:
        balance = int(str(rpc.call("eth_getBalance", [sender, "latest"])), 16)
        measures["signer_balance"] = balance / 1e18
        line = f"signer {sender}: balance {balance / 1e18:.6g}, needs {need / 1e18:.6g} ({basis})"
        evidence.append(line)
        if balance < need:
            problems.append(f"signer {sender} is short of gas: {line}")
    return problems
