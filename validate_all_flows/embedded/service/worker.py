"""The chain worker: one queue for all chain work (mints, proofs, batch anchors, fail-safes), each
job ending in exactly one on-chain effect whatever fails.

The fail-safe deliberately goes through the same queue as normal work, after its randomised delay,
so that a coercer watching the public chain sees an ordinary transaction at an unrelated moment.

How a job runs (no database transaction is ever open across a chain call):

1. claim: the due row is leased (its retry time moves past the lease; ``FOR UPDATE SKIP LOCKED``),
   so several workers, threads or processes, share one queue and a dead worker's job comes back;
2. reconcile: receipts of the job's recorded transactions, then the chain's own state
   (:mod:`chain_jobs`), say whether the effect exists already; if so the rows are finished from it;
3. a recorded transaction with no receipt is sent again (same bytes), or replaced with a higher fee
   after ``stuck_after`` seconds (same nonce: at most one of them can ever be mined);
4. otherwise: estimate (a revert here is permanent: the job ends ``failed`` with the reason, except
   a fail-safe), sign with the key's next nonce and record hash, nonce and raw bytes with the job
   ``submitted`` in one commit (:mod:`txlog`), send, wait for the receipt, finish from the chain.

Transient failures (connection refused, timeouts, HTTP 429/5xx, nonce and fee refusals) back off
exponentially with jitter up to ``backoff_cap`` seconds, with no limit on attempts. A fail-safe is
never given up: past ``execute_after`` + ``late_after`` every attempt logs an ERROR, and the
validator's ``workers.chain`` check reports it. Each worker beats a ``chain_workers`` row.

    python -m validate_all_flows.embedded.service.worker     # DATABASE_URL, RPC_URL, CHAIN_ID, ...
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import socket
import sys
import threading
import time

from blocktrust_native.errors import (
    ChainConnectionError,
    ChainError,
    ConfigError,
    ContractsConfigError,
    FileReadError,
)
from blocktrust_native.pool import Pool
from blocktrust_native.workers import PollingThread
from validate_all_flows.embedded.chain import BlocktrustContracts
from validate_all_flows.embedded.service.chain_jobs import KINDS, Job, JobKind, form_batch
from validate_all_flows.embedded.service.txlog import RecordedTx, TxLog
from validate_all_flows.embedded.web3_client import (
    ContractReverted,
    NonceTooLow,
    Receipt,
    SignedTx,
)

__all__ = ["ChainWorker", "main"]

log = logging.getLogger("blocktrust.service.worker")

#: Factor a replacement transaction raises every fee by (nodes want at least +10 %).
FEE_BUMP = 1.25


class ChainWorker:
    """Runs chain jobs from the database on a background thread until ``stop()``.

    ``interval``: seconds between polls of an idle queue. ``lease``: seconds a claimed job is
    held (default: ``receipt_wait`` + 30). ``receipt_wait``: seconds to wait for a receipt before
    checking again later. ``stuck_after``: seconds before an unmined transaction is replaced with
    a higher fee. ``backoff_base`` / ``backoff_cap``: the retry interval after a transient failure
    doubles from the base up to the cap. ``late_after``: seconds past its time after which a
    fail-safe is reported late. ``name``: the heartbeat row (default host:pid:n).
    """

    _count = 0

    def __init__(
        self,
        pool: Pool,
        contracts: BlocktrustContracts,
        interval: float = 0.5,
        *,
        batch_max: int = 256,
        batch_wait: float = 2.0,
        lease: float | None = None,
        receipt_wait: float | None = None,
        stuck_after: float = 180.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        late_after: float = 300.0,
        name: str | None = None,
    ) -> None:
        self.pool = pool
        self.contracts = contracts
        self.client = contracts.client
        self.interval = interval
        self.batch_max, self.batch_wait = batch_max, batch_wait
        self.receipt_wait = min(self.client.timeout, 30.0) if receipt_wait is None else receipt_wait
        self.lease = self.receipt_wait + 30.0 if lease is None else lease
        self.stuck_after = stuck_after
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.late_after = late_after
        ChainWorker._count += 1
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{ChainWorker._count}"
        self.jobs_done = 0
        self.txlog = TxLog(pool, self.client)
        self.kinds: list[JobKind] = [k(pool, contracts) for k in KINDS]
        self._last_beat = 0.0
        self._beat_lock = threading.Lock()
        self._poller = PollingThread(
            self.run_once, interval, name="chain-worker", log=log, tracebacks=True
        )

    def start(self) -> ChainWorker:
        """Starts the background thread."""
        self._poller.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stops after the job in progress and marks the heartbeat row stopped."""
        self._poller.stop(timeout)
        try:
            self.pool.execute(
                "UPDATE chain_workers SET stopped_at = now(), beat_at = now() WHERE worker = $1",
                (self.name,),
            )
        except Exception as exc:  # the database may be gone at shutdown: the row ages instead
            log.warning("chain worker %s: cannot mark the heartbeat stopped: %s", self.name, exc)

    def run_once(self) -> bool:
        """Beats, forms a batch when one is due, and runs at most one job of each kind; True when
        anything ran."""
        self.beat()
        entry = self.contracts.config.entry("ProofRegistry")
        formed = form_batch(
            self.pool,
            self.client.chain_id,
            entry.address.lower(),
            self.batch_max,
            self.batch_wait,
        )
        ran = [formed]
        for kind in self.kinds:
            job = kind.claim(self.lease)
            if job is not None:
                self._run(kind, job)
                self.jobs_done += 1
            ran.append(job is not None)
        return any(ran)

    def beat(self, force: bool = False) -> None:
        """Refreshes this worker's ``chain_workers`` row (at most once a second)."""
        now = time.monotonic()
        with self._beat_lock:
            if not force and now - self._last_beat < 1.0:
                return
            self._last_beat = now
        self.pool.execute(
            "INSERT INTO chain_workers (worker, chain_id, sender, interval_seconds, jobs_done) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (worker) DO UPDATE SET beat_at = now(), "
            "jobs_done = $5, stopped_at = NULL, interval_seconds = $4",
            (self.name, self.client.chain_id, self.txlog.sender, self.interval, self.jobs_done),
        )

    # -- one job

    def backoff(self, attempts: int) -> float:
        """Seconds before retry number ``attempts + 1``: doubling, capped, with jitter."""
        delay = min(self.backoff_cap, self.backoff_base * 2.0 ** min(attempts, 30))
        return delay * (0.5 + random.random() / 2)  # jitter, not a secret

    def _run(self, kind: JobKind, job: Job) -> None:
        late = float(job.data.get("late_s") or 0)
        if kind.name == "failsafe" and late > self.late_after:
            log.error(
                "fail-safe %d is %.0f s past its time (attempt %d)", job.id, late, job.attempts
            )
        try:
            self._advance(kind, job)
        except (ContractReverted, ConfigError) as exc:
            reason = exc.reason if isinstance(exc, ContractReverted) else str(exc)
            if kind.gives_up:
                log.warning("%s %d failed for good: %s", kind.name, job.id, reason)
                kind.fail(job, reason)
            else:
                log.error(
                    "%s %d refused (%s); retrying in %.0f s",
                    kind.name,
                    job.id,
                    reason,
                    self.backoff_cap,
                )
                kind.retry(job, reason, self.backoff_cap)
        except Exception as exc:  # transient: anything else the node, network or DB threw
            delay = self.backoff(job.attempts)
            text = f"{type(exc).__name__}: {exc}"
            log.warning(
                "%s %d: %s; retry %d in %.1f s", kind.name, job.id, text, job.attempts + 1, delay
            )
            try:
                kind.retry(job, text, delay)
            except Exception as db_exc:  # the lease brings the job back anyway
                log.warning("%s %d: cannot record the retry: %s", kind.name, job.id, db_exc)

    def _advance(self, kind: JobKind, job: Job) -> None:
        mined, pending = None, []
        for tx in self.txlog.open_txs(kind.name, job.id):  # newest first
            receipt = self.client.mined_receipt(tx.tx_hash)
            if receipt is None:
                pending.append(tx)
                continue
            if not self.client.is_final(receipt):
                self._recheck(kind, job)  # mined, not yet confirmed enough: neither resend nor drop
                return
            ok = receipt.status == 1
            self.txlog.settle(tx.tx_hash, "mined" if ok else "reverted", receipt.block_number)
            mined = receipt if ok else mined
        if mined is None:
            # A pass that saw our transaction mined may have stopped before it finished the job
            # (the node or the database failed in between): that receipt is still ours, and a
            # fail-safe judged without it would read its own cancellation as an earlier one's.
            for tx_hash in self.txlog.mined_txs(kind.name, job.id):
                mined = self.client.mined_receipt(tx_hash)
                if mined is not None:
                    break
        outcome = kind.settled(job, mined)
        if outcome is not None:
            kind.finish(job, outcome)
            self.txlog.drop_unmined(kind.name, job.id)  # siblings of the mined one, or unneeded
            return
        if pending:
            if self.client.nonce() <= pending[0].nonce:
                self._resend(kind, job, pending[0])
                return
            # The nonce is spent: by one of ours mined meanwhile, or by another transaction.
            for t in pending:
                receipt = self.client.mined_receipt(t.tx_hash)
                if receipt is not None and not self.client.is_final(receipt):
                    self._recheck(kind, job)
                    return
                if receipt is not None:
                    self._finish_from(kind, job, t.tx_hash, receipt)
                    return
            for t in pending:  # none of them can be mined now
                self.txlog.settle(t.tx_hash, "dropped")
        call, label = kind.call(job)
        try:
            gas = self.client.estimate_gas(call, label)
        except ContractReverted:
            # The effect may have appeared since the chain was asked: finish from it if so.
            outcome = kind.settled(job, None)
            if outcome is None:
                raise
            kind.finish(job, outcome)
            return
        signed = self.txlog.sign_and_record(
            kind.name,
            job.id,
            call,
            gas=gas,
            fees=self.client.fees(),
            label=label,
            mark_submitted=kind.submitted(job),
        )
        self._send(signed, label)
        self._wait(kind, job, signed)

    def _resend(self, kind: JobKind, job: Job, newest: RecordedTx) -> None:
        """Sends the newest unmined transaction again, or replaces it when it is stuck."""
        call, label = kind.call(job)
        if newest.age_s < self.stuck_after:
            self._send(newest.signed(), label)
            self._wait(kind, job, newest.signed())
            return
        fees = newest.fees.bumped(FEE_BUMP, self.client.max_fee).at_least(self.client.fees())
        log.warning(
            "%s %d: %s unmined after %.0f s; replacing it (nonce %d) with higher fees",
            kind.name,
            job.id,
            newest.tx_hash,
            newest.age_s,
            newest.nonce,
        )
        tx = self.txlog.sign_and_record(
            kind.name,
            job.id,
            call,
            gas=newest.gas,
            fees=fees,
            label=label,
            mark_submitted=kind.submitted(job),
            nonce=newest.nonce,
        )
        self._send(tx, label)
        self._wait(kind, job, tx)

    def _send(self, tx: SignedTx, label: str) -> None:
        try:
            self.client.send_raw(tx, label)
        except NonceTooLow:
            # Mined already (ours) or taken by another transaction: the next pass tells which.
            log.info("%s: nonce %d already used; reconciling on the next pass", label, tx.nonce)

    def _wait(self, kind: JobKind, job: Job, tx: SignedTx) -> None:
        receipt = self.client.wait_receipt(tx.tx_hash, self.receipt_wait)
        if receipt is None:
            self._recheck(kind, job)
            return
        self._finish_from(kind, job, tx.tx_hash, receipt)

    def _recheck(self, kind: JobKind, job: Job) -> None:
        """Not mined (or not confirmed) yet: look again soon; no attempt is counted."""
        self.pool.execute(
            f"UPDATE {kind.table} SET next_attempt_at = now() + make_interval(secs => $2) "
            "WHERE id = $1",
            (job.id, self.interval),
        )

    def _finish_from(self, kind: JobKind, job: Job, tx_hash: str, receipt: Receipt) -> None:
        ok = receipt.status == 1
        self.txlog.settle(tx_hash, "mined" if ok else "reverted", receipt.block_number)
        outcome = kind.settled(job, receipt if ok else None)
        if outcome is None:
            # Reverted on chain after a clean estimate (a race): the next estimate names it.
            raise RuntimeError(f"{tx_hash} mined with status {receipt.status}, no effect")
        kind.finish(job, outcome)
        self.txlog.drop_unmined(kind.name, job.id)


def main(argv: list[str] | None = None) -> int:
    """Runs a chain worker until SIGINT/SIGTERM; 2 when the environment is not fit to run."""
    p = argparse.ArgumentParser(
        prog="python -m validate_all_flows.embedded.service.worker",
        description="Run the chain worker (mints, proofs, batch anchors, fail-safes) on its own. "
        "Settings from the environment: DATABASE_URL, RPC_URL, CHAIN_ID, CHAIN_PRIVATE_KEY, "
        "CONTRACTS_CONFIG, CHAIN_CONFIRMATIONS, CHAIN_MAX_FEE_GWEI.",
    )
    p.add_argument("--interval", type=float, default=0.5, help="idle poll interval (s)")
    p.add_argument("--lease", type=float, help="seconds a claimed job is held")
    p.add_argument("--receipt-wait", type=float, help="seconds to wait for a receipt")
    p.add_argument("--stuck-after", type=float, default=180.0, help="replace after (s)")
    p.add_argument("--backoff-cap", type=float, default=60.0, help="longest retry interval (s)")
    p.add_argument("--name", help="heartbeat name (default host:pid:n)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from validate_all_flows.embedded.chain import load_contracts_config
    from validate_all_flows.embedded.web3_client import ChainClient, ChainSettings

    dsn = os.environ.get("DATABASE_URL", "")
    try:
        if not dsn:
            raise ConfigError("DATABASE_URL is not set")
        settings = ChainSettings.from_env()
    except ConfigError as exc:
        print(f"chain worker: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with Pool(dsn, min_size=1, max_size=4) as pool:
        delay = 1.0
        while True:  # a node that is away at start-up is waited for, like one away later
            try:
                config = load_contracts_config(settings.contracts_config)
                client = ChainClient.from_settings(settings)
                contracts = BlocktrustContracts(client, config)
                break
            except ChainConnectionError as exc:
                log.warning("chain worker: %s; retrying in %.0f s", exc, delay)
                if stop.wait(delay):
                    return 0
                delay = min(delay * 2, args.backoff_cap)
            except (ChainError, ContractsConfigError, FileReadError) as exc:
                print(f"chain worker: {exc}", file=sys.stderr)  # wrong chain, config, contracts
                return 2
        worker = ChainWorker(
            pool,
            contracts,
            args.interval,
            lease=args.lease,
            receipt_wait=args.receipt_wait,
            stuck_after=args.stuck_after,
            backoff_cap=args.backoff_cap,
            name=args.name,
        ).start()
        log.info("chain worker %s: %r", worker.name, client)
        stop.wait()
        worker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
