"""Worker checks: the chain listener's checkpoint moves and its lag is under the objective; the
monitor's heartbeat is fresh when one runs; the chain worker beats, keeps fail-safes on time,
has no failed or stuck job and gas for fail-safes; a profile's own job queue keeps up.

The readers the monitor's gauges share with these checks: :func:`chain_backlog` (the queue by
kind), :func:`chain_signers` and :func:`signer_gas` (the signers' balances and their minimum,
read once a monitor cycle for the check and the gauges: ``Target.sharing_reads``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from validate_all_flows.check_model import CheckResult, Status, check
from validate_all_flows.profile import JobQueue, WorkerSource
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
            if r[-1] is None:
                continue  # an aggregate over no rows: nothing recorded yet
            out.append((str(r[0]), r[1] if with_block and len(r) > 2 else None, float(r[-1])))
        if not out:
            raise _Unobservable("the worker SQL found no recorded progress")
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


class _Head:
    """The chain as the RPC URL sees it now: head block and block timestamps."""

    def __init__(self, rpc_url: str) -> None:
        from blocktrust_native.jsonrpc import JsonRpcClient

        self.rpc = JsonRpcClient(rpc_url, request_timeout=10.0)
        self.chain_id = int(str(self.rpc.call("eth_chainId")), 16)
        self.head = int(str(self.rpc.call("eth_blockNumber")), 16)

    def timestamp(self, number: int) -> float:
        block = self.rpc.call("eth_getBlockByNumber", [hex(number), False])
        return float(int(str(block["timestamp"]), 16)) if isinstance(block, dict) else time.time()


def _env_number(t: Target, name: str, default: float) -> float:
    try:
        return float((t.env or {}).get(name, "") or default)
    except ValueError:
        return default


@check("workers")
def listener_lag(t: Target) -> list[CheckResult]:
    """The listener's checkpoint is fresh and its lag under the objective.

    The lag is the worst of what the listener reports, the checkpoint's age and, when an RPC URL
    is given, the chain head: blocks past the listener's confirmations that it has not processed
    are lag (the oldest one's age), and a listener with such blocks that does not move within a
    few poll intervals (LISTENER_POLL_INTERVAL) is stuck, whatever its last checkpoint says.
    """
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
        "SELECT listener, chain_id, next_block, lag_seconds, head_block, "
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
    chain, head_note = None, ""
    if t.rpc_url:
        from blocktrust_native.errors import Error as NativeError

        try:
            chain = _Head(t.rpc_url)
        except (NativeError, ValueError) as exc:  # judged by age alone; chain.* names the cause
            head_note = t.redact(f"chain head unknown ({type(exc).__name__}: {exc})")
    confirmations = (t.env or {}).get("LISTENER_CONFIRMATIONS")
    poll = _env_number(t, "LISTENER_POLL_INTERVAL", 15.0)
    stall_s = min(limit, 2 * poll + 10)
    bad, evidence, worst = [], [], 0.0
    for name, chain_id, block, lag, seen_head, age in rows:
        lag, age, block = float(lag or 0), float(age), int(block)
        line = (
            f"{name} on chain {chain_id}: block {block}, lag {lag:.0f} s, updated {age:.0f} s ago"
        )
        stuck = False
        if chain is not None and int(chain_id) != chain.chain_id:
            line += f"; not the RPC URL's chain ({chain.chain_id}): judged by its age only"
        elif chain is not None:
            # Its safe distance: as configured, else what it kept at its last save.
            c = int(confirmations) if confirmations and confirmations.isdigit() else None
            if c is None:
                c = max(0, int(seen_head or 0) - block + 1)
            pending = chain.head - c - block + 1
            if pending > 0:
                waited = time.time() - chain.timestamp(block)
                lag = max(lag, waited)
                moved = _wait_for_move(t, str(w.table), name, chain_id, block, stall_s)
                stuck = not moved
                line += (
                    f"; chain head {chain.head}: {pending} block(s) past {c} confirmation(s) "
                    f"not processed, the oldest {waited:.0f} s old"
                    + ("" if moved else f", and no progress in {stall_s:.0f} s")
                )
            else:
                line += f"; chain head {chain.head}: caught up"
        elif head_note:
            line += f"; {head_note}"
        worst = max(worst, lag, age)
        evidence.append(line)
        if stuck or lag > limit or age > limit:
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


def _wait_for_move(
    t: Target, table: str, name: str, chain_id: int, block: int, within: float
) -> bool:
    """True once the listener's checkpoint passes ``block`` (within ``within`` s)."""
    deadline = time.monotonic() + within
    while True:
        rows = t.pool().execute(
            f'SELECT next_block FROM "{table}" WHERE listener = $1 AND chain_id = $2',
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


@check("workers")
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


#: Gas a FailSafe.trigger costs (measured 109,349 on anvil), rounded up for head-room.
FAILSAFE_GAS = 120_000
#: How many fail-safes the signer's balance must cover when --min-gas-balance is not given.
FAILSAFES_FUNDED = 20


@check("workers")
def chain_worker(t: Target) -> list[CheckResult]:
    """The chain worker runs and keeps up: a fresh heartbeat, no fail-safe past its time plus the
    margin, no mint or proof pending longer than the objective, no failed job, and a signer with
    gas for ``FAILSAFES_FUNDED`` fail-safes at the current fee (or ``--min-gas-balance``).

    Read-only. Every problem names the job (table and id) or the worker; NO-GO on any.
    """
    cid = "workers.chain"
    title = "chain worker alive, fail-safes on time, no failed or stuck job, gas for fail-safes"
    if t.profile.chain_worker is None:
        return []  # the profile runs no reference chain worker (workers.jobs judges a queue)
    if not t.database_url:
        return [CheckResult(cid, title, Status.SKIP, "no database given (--database-url)")]
    pool = t.pool()
    if not pool.execute("SELECT to_regclass($1) IS NOT NULL", (t.profile.chain_worker,))[0][0]:
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


@dataclass(frozen=True)
class SignerGas:
    """The chain worker's signers' balances against the least they must hold (wei)."""

    need_wei: int
    basis: str  # where need_wei comes from: "--min-gas-balance" or "20 fail-safes at N gwei"
    balances: tuple[tuple[str, int], ...]  # (signer address, balance in wei)


@dataclass
class _GasReads:
    """The signers' gas read so far inside ``Target.sharing_reads`` (one monitor cycle)."""

    need_wei: int
    basis: str
    balances: dict[str, int]  # signer -> wei
    error: Exception | None = None  # what the chain answered instead: raised to every caller


def signer_gas(t: Target, senders: list[str]) -> SignerGas:
    """Each of ``senders``' balance and the least one must hold: ``t.min_gas_balance_wei``
    (``--min-gas-balance``), else ``FAILSAFES_FUNDED`` fail-safes of ``FAILSAFE_GAS`` at the
    current gas price. Needs ``t.rpc_url``; raises the library's errors when it does not answer.

    Inside ``t.sharing_reads()`` (a monitor cycle) the gas price and each signer's balance are
    read once and shared by every call, the workers check's and the gauges' (a failure too)."""
    from blocktrust_native.jsonrpc import JsonRpcClient

    assert t.rpc_url
    shared = t.reads
    reads = shared.get("signer_gas") if shared is not None else None
    if isinstance(reads, _GasReads) and reads.error is not None:
        raise reads.error
    rpc = JsonRpcClient(t.rpc_url, request_timeout=10.0)
    try:
        if not isinstance(reads, _GasReads):
            need = t.min_gas_balance_wei
            if need is None:
                price = int(str(rpc.call("eth_gasPrice")), 16)
                need = FAILSAFES_FUNDED * FAILSAFE_GAS * price
                basis = f"{FAILSAFES_FUNDED} fail-safes at {price / 1e9:.3g} gwei"
            else:
                basis = "--min-gas-balance"
            reads = _GasReads(need, basis, {})
            if shared is not None:
                shared["signer_gas"] = reads
        for s in senders:
            if s not in reads.balances:
                reads.balances[s] = int(str(rpc.call("eth_getBalance", [s, "latest"])), 16)
    except Exception as exc:
        if shared is not None:
            shared["signer_gas"] = _GasReads(0, "", {}, exc)
        raise
    balances = tuple((s, reads.balances[s]) for s in senders)
    return SignerGas(reads.need_wei, reads.basis, balances)


def chain_signers(t: Target) -> list[str]:
    """The signing addresses of the chain workers that have not stopped (the profile's
    ``workers.chain`` table); empty when the profile names none or the table is absent."""
    table = t.profile.chain_worker
    if table is None or not t.database_url:
        return []
    pool = t.pool()
    if not pool.execute("SELECT to_regclass($1) IS NOT NULL", (table,))[0][0]:
        return []
    rows = pool.execute(
        f'SELECT DISTINCT sender FROM "{table}" WHERE stopped_at IS NULL ORDER BY sender'
    )
    return [str(r[0]) for r in rows]


def _gas(
    t: Target, senders: list[str], evidence: list[str], measures: dict[str, float]
) -> list[str]:
    gas = signer_gas(t, senders)
    need, problems = gas.need_wei, []
    for sender, balance in gas.balances:
        measures["signer_balance"] = balance / 1e18
        line = (
            f"signer {sender}: balance {balance / 1e18:.6g}, needs {need / 1e18:.6g} ({gas.basis})"
        )
        evidence.append(line)
        if balance < need:
            problems.append(f"signer {sender} is short of gas: {line}")
    return problems


@dataclass(frozen=True)
class JobBacklog:
    """One kind of chain job in the queue now (the monitor's backlog gauges)."""

    kind: str  # mint, proof, batch, failsafe (the reference tables) or queue (a profile's)
    pending: int  # waiting or sent and not yet settled
    oldest_pending_s: float  # age of the oldest pending job (0: none pends)
    failed: int
    overdue_s: float | None = None  # fail-safes: the most overdue pending one's time past
    # its execute_after (0: none is past it); None for the other kinds


#: The reference service's chain jobs: (kind, table, pending states, failed states).
CHAIN_JOBS = (
    ("mint", "identity_nfts", ("pending", "submitted"), ("failed",)),
    ("proof", "proofs", ("pending", "submitted"), ("failed",)),
    ("batch", "proof_batches", ("pending", "submitted"), ("failed",)),
    ("failsafe", "failsafe_events", ("queued", "submitted"), ("failed",)),
)


def _in(states: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{s}'" for s in states) + ")"  # our own constants or profile names


def chain_backlog(t: Target) -> list[JobBacklog]:
    """The chain worker's queue by kind, read-only: the reference tables (``CHAIN_JOBS``) when
    the profile runs our chain worker (``workers.chain``), plus the profile's own queue
    (``workers.jobs``, kind ``queue``). A kind whose table is absent is left out, not counted
    as zero; nothing without a database or when the profile declares neither. On the reference
    schema every count reads a partial index, not its table (migrations 011 and 012)."""
    if not t.database_url:
        return []
    pool = t.pool()
    out: list[JobBacklog] = []
    if t.profile.chain_worker is not None:
        for kind, table, pending, failed in CHAIN_JOBS:
            if not pool.execute("SELECT to_regclass($1) IS NOT NULL", (table,))[0][0]:
                continue
            overdue = (
                ", extract(epoch FROM greatest(interval '0', now() - min(execute_after)))"
                if kind == "failsafe"
                else ""
            )
            n, age, *rest = pool.execute(
                "SELECT count(*), extract(epoch FROM now() - min(created_at))"
                f"{overdue} FROM {table} WHERE status IN {_in(pending)}"
            )[0]
            n_failed = pool.execute(f"SELECT count(*) FROM {table} WHERE status IN {_in(failed)}")
            out.append(
                JobBacklog(
                    kind,
                    int(n),
                    max(0.0, float(age or 0)),
                    int(n_failed[0][0]),
                    float(rest[0] or 0) if rest else None,
                )
            )
    q = t.profile.jobs
    if q is not None:
        counts = _queue_counts(t, q)
        if counts is not None:
            out.append(JobBacklog("queue", *counts))
    return out


def _queue_counts(t: Target, q: JobQueue) -> tuple[int, float, int] | None:
    """(pending, age of the oldest pending in s, failed) of a profile's queue; None when its
    table is absent."""
    if q.table is not None:
        if not t.pool().execute("SELECT to_regclass($1) IS NOT NULL", (q.table,))[0][0]:
            return None
        tbl, st, tm = f'"{q.table}"', f'"{q.status_column}"', f'"{q.time_column}"'
        backlog = t.read_only(
            f"SELECT count(*), extract(epoch FROM now() - min({tm})) FROM {tbl} "
            f"WHERE {st} = ANY($1::text[])",
            ("{" + ",".join(q.pending) + "}",),
        )
        failed = t.read_only(
            f"SELECT count(*) FROM {tbl} WHERE {st} = ANY($1::text[])",
            ("{" + ",".join(q.failed) + "}",),
        )
    else:
        assert q.backlog_sql
        assert q.failed_sql
        backlog, failed = t.read_only(q.backlog_sql), t.read_only(q.failed_sql)
    pending = int(backlog[0][0] or 0) if backlog else 0
    oldest = float(backlog[0][1] or 0) if backlog and len(backlog[0]) > 1 else 0.0
    n_failed = int(failed[0][0] or 0) if failed else 0
    return pending, oldest, n_failed


@check("workers")
def job_queue(t: Target) -> list[CheckResult]:
    """The profile's chain job queue (``workers.jobs``): the oldest pending job is younger than
    its objective and no more jobs failed than allowed (profiles declaring a queue)."""
    q = t.profile.jobs
    if q is None:
        return []  # the profile declares no job queue: nothing to report
    cid = "workers.jobs"
    title = (
        f"job queue: oldest pending under {q.max_backlog_age_s:.0f} s, "
        f"at most {q.max_failed} failed"
    )
    if not t.database_url:
        return [CheckResult(cid, title, Status.SKIP, "no database given (--database-url)")]
    counts = _queue_counts(t, q)
    if counts is None:
        return [CheckResult(cid, title, Status.SKIP, f"no job queue found (no table {q.table})")]
    pending, oldest, n_failed = counts
    found = f"{pending} pending (oldest {oldest:.0f} s), {n_failed} failed"
    measures = {
        "backlog": float(pending),
        "oldest_pending_s": oldest,
        "failed_jobs": float(n_failed),
    }
    problems = []
    if pending and oldest > q.max_backlog_age_s:
        problems.append(
            f"the oldest pending job waits {oldest:.0f} s (objective {q.max_backlog_age_s:.0f} s)"
        )
    if n_failed > q.max_failed:
        problems.append(f"{n_failed} failed job(s) (at most {q.max_failed})")
    if problems:
        return [
            CheckResult(
                cid,
                title,
                Status.FAIL,
                found,
                problems,
                "check the worker that runs the queue and the failed jobs' recorded reasons",
                measures=measures,
            )
        ]
    return [CheckResult(cid, title, Status.PASS, found, measures=measures)]
