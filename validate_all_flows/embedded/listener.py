"""The chain listener: follows the three contracts' logs into PostgreSQL, reorg-safe, resumable.

Each poll reads ``eth_getLogs`` over a block range up to ``head - confirmations`` and, in one
transaction, inserts the logs (idempotent on chain id, tx hash, log index), applies the known
events to the domain tables, stores block hashes and moves the checkpoint. Before a range it
compares the stored hash of the block before it with the node's: on a mismatch it walks back to
the common ancestor, deletes what it stored above it, records the reorganisation and resumes there.
A range the provider refuses as too large is halved; successful ranges grow back.

    python -m validate_all_flows.embedded.listener    # DATABASE_URL, RPC_URL, CONTRACTS_CONFIG

Transport: plain JSON-RPC over HTTP (urllib) for now; the native HTTP client will replace it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import event_abi_to_log_topic

from blocktrust_native.pool import Pool
from validate_all_flows.embedded.chain import CONTRACT_NAMES, ContractsConfig

__all__ = ["Listener", "ListenerError", "RpcError"]

log = logging.getLogger("blocktrust.listener")

# Error texts with which providers refuse a too-large eth_getLogs range.
_TOO_LARGE = ("too large", "limit exceeded", "range", "too many", "query returned more than")


class ListenerError(RuntimeError):
    """Raised when the listener cannot continue (bad config, unreachable node)."""


class RpcError(ListenerError):
    """A JSON-RPC error answer; ``message`` is the node's."""


@dataclass(frozen=True)
class _Event:
    contract: str
    name: str
    abi: dict[str, Any]


def _hex(v: Any) -> str:
    if isinstance(v, bytes):
        return "0x" + v.hex()
    return str(v).lower() if isinstance(v, str) else v


class Listener:
    """Follows the contracts of ``config`` on ``rpc_url`` into the database behind ``pool``."""

    def __init__(
        self,
        pool: Pool,
        rpc_url: str,
        config: ContractsConfig,
        *,
        name: str = "blocktrust",
        confirmations: int = 0,
        poll_interval: float = 1.0,
        max_range: int = 2000,
    ) -> None:
        self.pool, self.rpc_url, self.name = pool, rpc_url, name
        self.confirmations, self.poll_interval, self.max_range = (
            confirmations,
            poll_interval,
            max_range,
        )
        self.range = max_range
        self.addresses = {config.entry(n).address.lower(): n for n in CONTRACT_NAMES}
        self.start_block = min((config.entry(n).deploy_block or 0) for n in CONTRACT_NAMES)
        self.events: dict[str, _Event] = {}
        for n in CONTRACT_NAMES:
            for item in config.entry(n).abi:
                if item.get("type") == "event" and not item.get("anonymous"):
                    topic = "0x" + event_abi_to_log_topic(item).hex()
                    self.events[topic] = _Event(n, item["name"], item)
        self.chain_id = int(self._rpc("eth_chainId", []), 16)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.reorgs = 0

    # -- JSON-RPC

    def _rpc(self, method: str, params: list[Any]) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        req = urllib.request.Request(
            self.rpc_url, body.encode(), {"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                reply = json.loads(resp.read())
        except (OSError, ValueError, urllib.error.URLError) as exc:
            raise ListenerError(f"{method}: the node did not answer: {exc}") from None
        if reply.get("error"):
            raise RpcError(f"{method}: {reply['error'].get('message', reply['error'])}")
        return reply["result"]

    def _block(self, number: int) -> dict[str, Any]:
        block = self._rpc("eth_getBlockByNumber", [hex(number), False])
        if block is None:
            raise ListenerError(f"block {number} not found")
        return block  # type: ignore[no-any-return]

    # -- running

    def start(self) -> Listener:
        """Follows the chain on a background thread until ``stop()``."""
        self._thread = threading.Thread(target=self._run, name="chain-listener", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stops after the range in progress."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                caught_up = self.poll()
            except Exception as exc:  # keep following; the next poll retries
                log.warning("listener poll failed: %s", exc)
                caught_up = True
            if caught_up:
                self._stop.wait(self.poll_interval)

    def _checkpoint(self, conn: Any) -> tuple[int, str | None]:
        rows = conn.execute(
            "SELECT next_block, last_block_hash FROM listener_checkpoints "
            "WHERE chain_id = $1 AND listener = $2 FOR UPDATE",
            (self.chain_id, self.name),
        )
        if rows:
            return int(rows[0][0]), rows[0][1]
        return self.start_block, None

    def poll(self) -> bool:
        """Processes one range; True when the listener has caught up with the safe head."""
        head = int(self._rpc("eth_blockNumber", []), 16)
        safe = head - self.confirmations
        with self.pool.connection() as conn, conn.transaction():
            next_block, last_hash = self._checkpoint(conn)
            if next_block > 0 and last_hash is not None:
                node_hash = self._block(next_block - 1)["hash"].lower()
                if node_hash != last_hash:
                    self._rewind(conn, next_block - 1)
                    return False
            if next_block > safe:
                self._save(conn, next_block, last_hash, head, safe, head_ts=None, to_ts=None)
                return True
            to = min(next_block + self.range - 1, safe)
            try:
                logs = self._rpc(
                    "eth_getLogs",
                    [
                        {
                            "address": list(self.addresses),
                            "fromBlock": hex(next_block),
                            "toBlock": hex(to),
                        }
                    ],
                )
            except RpcError as exc:
                if self.range > 1 and any(s in str(exc).lower() for s in _TOO_LARGE):
                    self.range = max(1, self.range // 2)
                    log.info("provider refused the range; now %d blocks", self.range)
                    return False
                raise
            self.range = min(self.max_range, self.range * 2)
            to_block = self._block(to)
            for item in logs:
                self._store(conn, item)
            conn.execute(
                "INSERT INTO chain_blocks (chain_id, block_number, block_hash, parent_hash, "
                "block_timestamp) VALUES ($1, $2, $3, $4, to_timestamp($5)) "
                "ON CONFLICT (chain_id, block_number) DO UPDATE SET block_hash = $3, "
                "parent_hash = $4, block_timestamp = to_timestamp($5), seen_at = now()",
                (
                    self.chain_id,
                    to,
                    to_block["hash"].lower(),
                    to_block["parentHash"].lower(),
                    int(to_block["timestamp"], 16),
                ),
            )
            head_ts = int(self._block(head)["timestamp"], 16) if head != to else None
            self._save(
                conn,
                to + 1,
                to_block["hash"].lower(),
                head,
                safe,
                head_ts,
                int(to_block["timestamp"], 16),
            )
            return to >= safe

    def _save(
        self,
        conn: Any,
        next_block: int,
        last_hash: str | None,
        head: int,
        safe: int,
        head_ts: int | None,
        to_ts: int | None,
    ) -> None:
        lag_blocks = max(0, safe - (next_block - 1))
        lag_s = float(head_ts - to_ts) if head_ts is not None and to_ts is not None else 0.0
        conn.execute(
            "INSERT INTO listener_checkpoints (chain_id, listener, next_block, last_block_hash, "
            "head_block, lag_blocks, lag_seconds, range_size, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now()) "
            "ON CONFLICT (chain_id, listener) DO UPDATE SET next_block = $3, "
            "last_block_hash = $4, head_block = $5, lag_blocks = $6, "
            "lag_seconds = CASE WHEN $6 = 0 THEN 0 ELSE greatest($7, 0) END, range_size = $8, "
            "updated_at = now()",
            (
                self.chain_id,
                self.name,
                next_block,
                last_hash,
                head,
                lag_blocks,
                max(lag_s, 0.0),
                self.range,
            ),
        )

    def _rewind(self, conn: Any, mismatch: int) -> None:
        """Walks back from ``mismatch`` to the newest block whose stored hash the node agrees
        with, deletes everything above it and moves the checkpoint there."""
        stored = conn.execute(
            "SELECT block_number, block_hash FROM chain_blocks WHERE chain_id = $1 "
            "AND block_number <= $2 ORDER BY block_number DESC LIMIT 256",
            (self.chain_id, mismatch),
        )
        ancestor, old_hash = self.start_block - 1, ""
        for number, h in stored:
            if not old_hash:
                old_hash = h
            if self._block(int(number))["hash"].lower() == h:
                ancestor = int(number)
                break
        fork = ancestor + 1
        depth = max(1, mismatch - ancestor)
        conn.execute(
            "DELETE FROM chain_events WHERE chain_id = $1 AND block_number >= $2",
            (self.chain_id, fork),
        )
        conn.execute(
            "DELETE FROM chain_blocks WHERE chain_id = $1 AND block_number >= $2",
            (self.chain_id, fork),
        )
        conn.execute(
            "INSERT INTO chain_reorgs (chain_id, listener, fork_block, depth, old_hash) "
            "VALUES ($1, $2, $3, $4, $5)",
            (self.chain_id, self.name, fork, depth, old_hash or "0x" + "00" * 32),
        )
        last = None
        if ancestor >= 0:
            rows = conn.execute(
                "SELECT block_hash FROM chain_blocks WHERE chain_id = $1 AND block_number = $2",
                (self.chain_id, ancestor),
            )
            last = rows[0][0] if rows else self._block(ancestor)["hash"].lower()
        conn.execute(
            "UPDATE listener_checkpoints SET next_block = $3, last_block_hash = $4, "
            "updated_at = now() WHERE chain_id = $1 AND listener = $2",
            (self.chain_id, self.name, fork, last),
        )
        self.reorgs += 1
        log.warning("chain reorganisation: rewound to block %d (depth %d)", fork, depth)

    def _decode(self, item: dict[str, Any]) -> tuple[str | None, str | None, dict[str, Any] | None]:
        topics = [t.lower() for t in item.get("topics", [])]
        ev = self.events.get(topics[0]) if topics else None
        if ev is None:
            return self.addresses.get(item["address"].lower()), None, None
        indexed = [i for i in ev.abi["inputs"] if i.get("indexed")]
        plain = [i for i in ev.abi["inputs"] if not i.get("indexed")]
        args: dict[str, Any] = {}
        for inp, topic in zip(indexed, topics[1:], strict=False):
            (args[inp["name"]],) = abi_decode([inp["type"]], bytes.fromhex(topic[2:]))
        data = bytes.fromhex(item["data"][2:])
        for inp, value in zip(plain, abi_decode([i["type"] for i in plain], data), strict=True):
            args[inp["name"]] = value
        clean = {k: (str(v) if isinstance(v, int) else _hex(v)) for k, v in args.items()}
        return ev.contract, ev.name, clean

    def _store(self, conn: Any, item: dict[str, Any]) -> None:
        contract, event, args = self._decode(item)
        block = int(item["blockNumber"], 16)
        tx, index = item["transactionHash"].lower(), int(item["logIndex"], 16)
        inserted = conn.execute(
            "INSERT INTO chain_events (chain_id, tx_hash, log_index, block_number, block_hash, "
            "contract_address, contract_name, event_name, topics, data, args) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, ARRAY(SELECT jsonb_array_elements_text($9)), "
            "$10, $11) "
            "ON CONFLICT (chain_id, tx_hash, log_index) DO NOTHING RETURNING 1",
            (
                self.chain_id,
                tx,
                index,
                block,
                item["blockHash"].lower(),
                item["address"].lower(),
                contract,
                event,
                [t.lower() for t in item["topics"]],
                item["data"].lower(),
                args,
            ),
        )
        if inserted and args is not None:
            self._apply(conn, event, args, tx, block, index)

    def _apply(
        self, conn: Any, event: str | None, a: dict[str, Any], tx: str, block: int, index: int
    ) -> None:
        """Brings the domain tables in line with an event (the chain is the source of truth)."""
        if event == "IdentityMinted":
            conn.execute(
                "UPDATE identity_nfts SET token_id = $2, status = 'active', mint_tx_hash = $3, "
                "minted_block = $4, updated_at = now() WHERE chain_id = $1 "
                "AND wallet_address = $5 AND status = 'pending'",
                (self.chain_id, int(a["tokenId"]), tx, block, a["wallet"]),
            )
        elif event == "IdentityCancelled":
            conn.execute(
                "UPDATE identity_nfts SET status = 'cancelled', cancel_tx_hash = $3, "
                "cancelled_at = coalesce(cancelled_at, now()), updated_at = now() "
                "WHERE chain_id = $1 AND token_id = $2 AND status <> 'cancelled'",
                (self.chain_id, int(a["tokenId"]), tx),
            )
        elif event == "FailSafeTriggered":
            conn.execute(
                "UPDATE failsafe_events SET log_index = $3, block_number = $4, "
                "status = 'confirmed', confirmed_at = coalesce(confirmed_at, now()) "
                "WHERE tx_hash = $1 AND chain_id = $2",
                (tx, self.chain_id, index, block),
            )
        elif event == "ProofRegistered":
            conn.execute(
                "UPDATE proofs SET log_index = $2, block_number = $3 WHERE tx_hash = $1",
                (tx, index, block),
            )


def main() -> int:
    """Runs the listener from the environment until interrupted."""
    from validate_all_flows.embedded.chain import load_contracts_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    missing = [v for v in ("DATABASE_URL", "RPC_URL") if not os.environ.get(v)]
    if missing:
        print(f"set {', '.join(missing)}", file=sys.stderr)
        return 2
    config = load_contracts_config(os.environ.get("CONTRACTS_CONFIG", "contracts_config.json"))
    interval = float(os.environ.get("LISTENER_POLL_INTERVAL", "15"))
    confirmations = int(os.environ.get("LISTENER_CONFIRMATIONS", "2"))
    with Pool(os.environ["DATABASE_URL"], min_size=1, max_size=2) as pool:
        listener = Listener(
            pool, os.environ["RPC_URL"], config, poll_interval=interval, confirmations=confirmations
        )
        try:
            while True:
                if listener.poll():
                    time.sleep(interval)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
