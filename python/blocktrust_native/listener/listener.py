"""The listener: follows contracts' logs into PostgreSQL, reorg-safe and resumable.

It is given a :class:`~blocktrust_native.listener.subscription.Subscription`: the contracts, and
the application's projection of their logs onto its own tables (a ``ContractsConfig`` stands for
the three Blocktrust contracts and their projection, :mod:`blocktrust_native.listener.blocktrust`).
Its own tables (:mod:`blocktrust_native.listener.schema`) are created when missing.

Each poll, in one database transaction holding the checkpoint row:

1. asks the node (one batched request) for the head, the ``finalized`` block and the block just
   before the checkpoint; a hash that differs from the stored one is a reorganisation: walk back
   to the newest stored block the node still agrees with, delete everything above it, record the
   reorganisation and resume there;
2. takes the next range up to the safe block: the ``finalized`` block where the chain has one
   (``finality="auto"`` falls back to head - confirmations when the node answers an error or
   null; ``"finalized"`` insists; ``"confirmations"`` never asks);
3. reads the range's last block, then ``eth_getLogs``; a range the provider refuses as too large
   (or an answer over the size cap) is halved, and successful ranges grow back;
4. inserts the logs with ONE statement, idempotent on (chain id, tx hash, log index), updates the
   application's tables from the rows actually inserted (the projection), stores the block hash
   and moves the checkpoint with the lag in blocks and seconds that the monitor reads.

The range's last block is read before its logs, so a reorganisation in between leaves an old hash
stored, which the next poll notices and rewinds; never new hashes over stale logs.

Any number of listener processes may run on one database: one leads (a session advisory lock, see
:mod:`blocktrust_native.leader`), the others stand by and take over when it dies; every
write is fenced, so an ex-leader that lost the lock while paused never writes.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from blocktrust_native.errors import (
    ChainConnectionError,
    ChainError,
    ChainIdMismatch,
    ConfigError,
    JsonRpcError,
)
from blocktrust_native.jsonrpc import JsonRpcClient, Params
from blocktrust_native.leader import Leader
from blocktrust_native.listener import blocktrust, schema, sql
from blocktrust_native.listener.contracts import ContractsConfig
from blocktrust_native.listener.events import LogDecoder
from blocktrust_native.listener.subscription import Subscription
from blocktrust_native.pool import Connection, Pool
from blocktrust_native.workers import PollingThread

__all__ = ["FINALITY_MODES", "Listener"]

log = logging.getLogger("blocktrust_native.listener")

#: Where the safe block comes from: see the module docstring.
FINALITY_MODES = ("auto", "finalized", "confirmations")

# How providers word a refusal of a too-large eth_getLogs range (Infura, Alchemy, QuickNode,
# geth, erigon, anvil, public Polygon endpoints).
_TOO_LARGE = (
    "too large",
    "limit exceeded",
    "too many",
    "query returned more than",
    "range",
    "response size",
    "exceed",
)
_ZERO_HASH = "0x" + "00" * 32


def _too_large(exc: Exception) -> bool:
    if isinstance(exc, JsonRpcError):
        return exc.code == -32005 or any(s in exc.message.lower() for s in _TOO_LARGE)
    text = str(exc).lower()
    return getattr(exc, "http_status", 0) == 413 or "too large" in text or "timed out" in text


class Listener:
    """Follows the contracts of ``config`` (a :class:`Subscription`, or a
    :class:`ContractsConfig` for the Blocktrust contracts) on ``rpc`` (a URL or a
    :class:`JsonRpcClient`) into the database behind ``pool`` (see the module docstring).

    ``name`` tells checkpoints apart when several listeners share a database; ``start_block``
    defaults to the smallest ``deployBlock`` (0 when absent). With ``leader=True``
    (default) processes with the same chain and name elect one leader; the others' polls do
    nothing until it goes away. ``create`` (default) creates the listener's tables when one is
    missing (:func:`~blocktrust_native.listener.schema.create_schema`). ConfigError for bad
    settings, ChainIdMismatch when the config is for another chain, ChainConnectionError when
    the node cannot be reached.
    """

    def __init__(
        self,
        pool: Pool,
        rpc: str | JsonRpcClient,
        config: Subscription | ContractsConfig,
        *,
        name: str = "blocktrust",
        confirmations: int = 0,
        finality: str = "auto",
        poll_interval: float = 1.0,
        max_range: int = 2000,
        start_block: int | None = None,
        leader: bool = True,
        create: bool = True,
    ) -> None:
        if finality not in FINALITY_MODES:
            raise ConfigError(f"finality must be one of {', '.join(FINALITY_MODES)}: {finality!r}")
        if not isinstance(confirmations, int) or confirmations < 0:
            raise ConfigError(f"confirmations must be a whole number >= 0: {confirmations!r}")
        if not isinstance(max_range, int) or max_range < 1:
            raise ConfigError(f"max_range must be a whole number >= 1: {max_range!r}")
        if not poll_interval > 0:
            raise ConfigError(f"poll_interval must be positive: {poll_interval!r}")
        if not name:
            raise ConfigError("the listener needs a name")
        self.pool, self.name = pool, name
        self.confirmations, self.finality, self.max_range = confirmations, finality, max_range
        self.rpc = rpc if isinstance(rpc, JsonRpcClient) else JsonRpcClient(rpc)
        sub = blocktrust.subscription(config) if isinstance(config, ContractsConfig) else config
        #: What this listener follows and how the application's tables follow its logs.
        self.subscription = sub
        self.decoder = LogDecoder(sub.contracts)
        self.start_block = sub.start_block if start_block is None else start_block
        self._insert_logs = sql.insert_logs(sub.projection)
        self._after_events = [event for event, _ in sub.projection.after]
        self.chain_id = int(self.rpc.call("eth_chainId"), 16)
        if sub.chain_id is not None and sub.chain_id != self.chain_id:
            raise ChainIdMismatch(
                f"contracts config is for chain id {sub.chain_id}, "
                f"{self.rpc.url} serves {self.chain_id}"
            )
        if create and schema.missing_tables(pool):
            schema.create_schema(pool)
        #: The eth_getLogs range in use (shrinks on refusals, grows back).
        self.range = max_range
        #: Reorganisations rewound since construction.
        self.reorgs = 0
        #: Logs inserted since construction (replays not counted).
        self.inserted = 0
        #: Where the last poll's safe block came from: "finalized" or "confirmations".
        self.safe_source: str | None = None
        self._batches = True
        #: The leader election (None with leader=False: this process always writes).
        self.leader = Leader(pool, f"listener:{self.chain_id}:{name}") if leader else None
        self._poller = PollingThread(
            lambda: not self.poll(), poll_interval, name="chain-listener", log=log
        )

    def __repr__(self) -> str:
        return f"<Listener {self.name} chain {self.chain_id} at {self.rpc.url}>"

    # -- running

    def start(self) -> Listener:
        """Follows the chain on a background thread until ``stop()``."""
        self._poller.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stops after the range in progress and gives the leader lock up."""
        self._poller.stop(timeout)
        if self.leader is not None:
            self.leader.release()

    @property
    def running(self) -> bool:
        """True while the background thread runs."""
        return self._poller.running

    # -- JSON-RPC

    def _batch(self, calls: list[tuple[str, Params]]) -> list[Any]:
        """Results (or JsonRpcError objects) of ``calls``, batched unless the node refuses."""
        if self._batches:
            try:
                return self.rpc.batch(calls)
            except JsonRpcError as exc:
                self._batches = False
                log.info("%s refuses batches (%s); sending calls one by one", self.rpc.url, exc)
        out: list[Any] = []
        for method, params in calls:
            try:
                out.append(self.rpc.call(method, params))
            except JsonRpcError as exc:
                out.append(exc)
        return out

    @staticmethod
    def _found(result: Any, what: str) -> dict[str, Any]:
        if isinstance(result, JsonRpcError):
            raise result
        if not isinstance(result, dict):
            raise ChainError(f"{what} not found on the node")
        return result

    def _heads(self, check: int | None) -> tuple[int, int, int | None, Any]:
        """(head, safe block, its timestamp if known, the node's block ``check`` or None)."""
        calls: list[tuple[str, Params]] = [("eth_blockNumber", [])]
        if self.finality != "confirmations":
            calls.append(("eth_getBlockByNumber", ["finalized", False]))
        if check is not None:
            calls.append(("eth_getBlockByNumber", [hex(check), False]))
        out = self._batch(calls)
        if isinstance(out[0], JsonRpcError):
            raise out[0]
        head = int(out[0], 16)
        safe, safe_ts, source = max(-1, head - self.confirmations), None, "confirmations"
        if self.finality != "confirmations":
            final = out[1]
            if isinstance(final, dict):
                safe, safe_ts = int(final["number"], 16), int(final["timestamp"], 16)
                source = "finalized"
            elif self.finality == "finalized":
                why = final if isinstance(final, JsonRpcError) else "null"
                raise ChainError(f"{self.rpc.url} has no finalized block: {why}")
        if source != self.safe_source:
            log.info("safe block from %s (chain %d)", source, self.chain_id)
            self.safe_source = source
        parent = out[-1] if check is not None else None
        if isinstance(parent, JsonRpcError):
            raise parent
        return head, safe, safe_ts, parent

    def _logs(self, first: int, last: int) -> list[dict[str, Any]] | None:
        """The logs of blocks first..last, or None after shrinking a refused range."""
        addresses = self.decoder.addresses
        params = [{"address": addresses, "fromBlock": hex(first), "toBlock": hex(last)}]
        try:
            logs: list[dict[str, Any]] = self.rpc.call("eth_getLogs", params)
        except (JsonRpcError, ChainConnectionError) as exc:
            if last > first and _too_large(exc):
                self.range = max(1, (last - first + 1) // 2)
                log.info(
                    "the node refused blocks %d..%d (%s); range now %d",
                    first,
                    last,
                    exc,
                    self.range,
                )
                return None
            raise
        self.range = min(self.max_range, self.range * 2)
        return logs

    # -- one poll

    def poll(self) -> bool:
        """Processes at most one range; True when the listener has reached the safe block.
        A standby (another process leads) does nothing and returns False."""
        if self.leader is not None and not self.leader.ensure():
            return False
        with self.pool.connection() as conn, conn.transaction():
            rows = conn.execute(sql.CHECKPOINT, (self.chain_id, self.name))
            self._fence(conn)
            next_block, last_hash = self.start_block, None
            if rows:
                next_block, last_hash = int(rows[0][0]), rows[0][1]
            check = next_block - 1 if last_hash is not None else None
            head, safe, safe_ts, parent = self._heads(check)
            if check is not None and (not parent or parent["hash"].lower() != last_hash):
                self._fence(conn)
                self._rewind(conn, check, parent)
                return False
            if next_block > safe:
                self._save(conn, next_block, last_hash, head, 0, 0.0)
                return True
            last = min(next_block + self.range - 1, safe)
            wanted: list[tuple[str, Params]] = [("eth_getBlockByNumber", [hex(last), False])]
            if safe_ts is None and last < safe:  # the lag in seconds needs the safe block's time
                wanted.append(("eth_getBlockByNumber", [hex(safe), False]))
            blocks = self._batch(wanted)
            last_block = self._found(blocks[0], f"block {last}")
            if len(blocks) > 1:
                safe_ts = int(self._found(blocks[1], f"block {safe}")["timestamp"], 16)
            logs = self._logs(next_block, last)
            if logs is None:
                return False
            last_hash = last_block["hash"].lower()
            payload = self._rows(logs, last, last_hash)
            if payload is None:  # the range's last block changed meanwhile: read it again
                log.info("block %d changed while reading its logs; reading again", last)
                return False
            inserted = 0
            if logs:
                params = (self.chain_id, payload, *self._after_events)
                inserted, *after = conn.execute(self._insert_logs, params)[0]
                for (_, statement), rows in zip(
                    self.subscription.projection.after, after, strict=True
                ):
                    if rows:
                        conn.execute(statement, (self.chain_id, json.dumps(rows)))
            last_ts = int(last_block["timestamp"], 16)
            conn.execute(
                sql.SAVE_BLOCK,
                (self.chain_id, last, last_hash, last_block["parentHash"].lower(), last_ts),
            )
            lag_blocks = safe - last
            lag_s = float(max(0, (safe_ts or last_ts) - last_ts)) if lag_blocks else 0.0
            self._save(conn, last + 1, last_hash, head, lag_blocks, lag_s)
            self.inserted += int(inserted)
            if logs:
                log.info(
                    "blocks %d..%d: %d logs, %d new (lag %d blocks)",
                    next_block,
                    last,
                    len(logs),
                    inserted,
                    lag_blocks,
                )
            return last >= safe

    def _rows(self, logs: list[dict[str, Any]], last: int, last_hash: str) -> str | None:
        """The range's rows as one JSON document; None when a log of block ``last`` comes from
        another fork than ``last_hash``."""
        decode = self.decoder.decode
        rows = []
        for item in logs:
            topics = [t.lower() for t in item["topics"]]
            address = item["address"].lower()
            data = item["data"].lower()
            block = int(item["blockNumber"], 16)
            block_hash = item["blockHash"].lower()
            if block == last and block_hash != last_hash:
                return None
            contract, event, args = decode(address, topics, data)
            rows.append(
                {
                    "tx_hash": item["transactionHash"].lower(),
                    "log_index": int(item["logIndex"], 16),
                    "block_number": block,
                    "block_hash": block_hash,
                    "address": address,
                    "contract": contract,
                    "event": event,
                    "topics": topics,
                    "data": data,
                    "args": args,
                }
            )
        return json.dumps(rows, separators=(",", ":"))

    def _fence(self, conn: Connection) -> None:
        if self.leader is not None:
            self.leader.fence(conn)  # LeadershipLost rolls the transaction back

    def _save(
        self,
        conn: Connection,
        next_block: int,
        last_hash: str | None,
        head: int,
        lag_blocks: int,
        lag_s: float,
    ) -> None:
        self._fence(conn)  # the last check before the transaction commits
        conn.execute(
            sql.SAVE_CHECKPOINT,
            (self.chain_id, self.name, next_block, last_hash, head, lag_blocks, lag_s, self.range),
        )

    def _rewind(self, conn: Connection, mismatch: int, node_block: Any) -> None:
        """Walks back from ``mismatch`` to the newest stored block the node agrees with, deletes
        everything above it and moves the checkpoint there."""
        stored = [
            (int(n), str(h)) for n, h in conn.execute(sql.STORED_BLOCKS, (self.chain_id, mismatch))
        ]
        ancestor, ancestor_hash = self.start_block - 1, None
        if stored:
            answers = self._batch([("eth_getBlockByNumber", [hex(n), False]) for n, _ in stored])
            for (number, h), b in zip(stored, answers, strict=True):
                if isinstance(b, dict) and b["hash"].lower() == h:
                    ancestor, ancestor_hash = number, h
                    break
        if ancestor >= 0 and ancestor_hash is None:
            ancestor_hash = self._found(
                self._batch([("eth_getBlockByNumber", [hex(ancestor), False])])[0],
                f"block {ancestor}",
            )["hash"].lower()
        fork = ancestor + 1
        depth = max(1, mismatch - ancestor)
        conn.execute(sql.DELETE_EVENTS_FROM, (self.chain_id, fork))
        conn.execute(sql.DELETE_BLOCKS_FROM, (self.chain_id, fork))
        old_hash = stored[0][1] if stored else _ZERO_HASH
        new_hash = node_block["hash"].lower() if isinstance(node_block, dict) else None
        conn.execute(sql.RECORD_REORG, (self.chain_id, self.name, fork, depth, old_hash, new_hash))
        conn.execute(sql.REWIND_CHECKPOINT, (self.chain_id, self.name, fork, ancestor_hash))
        self.reorgs += 1
        log.warning("chain reorganisation: rewound to block %d (depth %d)", fork, depth)
