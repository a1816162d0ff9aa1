"""Listener benchmark: ingest 10,000 contract events already on chain into PostgreSQL.

Starts its own anvil and throwaway PostgreSQL cluster, deploys the three contracts and puts the
events on chain cheaply (anvil's unlocked account, automine off, transactions sent in JSON-RPC
batches, then mined): 2,000 identity mints (Transfer, Locked and IdentityMinted each) and 4,000
proofs (ProofRegistered). None of that is measured. Then, from empty tables, each side ingests
every log of the three contracts into ``chain_events`` with the same rows, the same domain-table
updates, block hash and checkpoint:

* anchor: what a user would write — web3.py ``eth.get_logs`` over the same block ranges, each log
  decoded with the contract event's ``process_log``, one psycopg INSERT ... ON CONFLICT DO NOTHING
  per log and an UPDATE per domain event, one transaction per range;
* ours: ``blocktrust_native.listener.Listener.poll()`` from an empty checkpoint (native JSON-RPC
  client, words sliced from the hex, one INSERT ... SELECT FROM json_to_recordset per range).

Both sides' tables are compared afterwards (same rows, same decoded arguments). Rounds alternate
and each side keeps its best; events/s of each and the ratio are printed, the ratio last.

    .venv/bin/python bench/bench_listener.py [--events 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from blocktrust_native.jsonrpc import JsonRpcClient
from blocktrust_native.listener import Listener
from blocktrust_native.listener.contracts import CONTRACT_NAMES, ContractsConfig
from blocktrust_native.pool import Pool
from validate_all_flows.embedded.anvil import Anvil
from validate_all_flows.embedded.chain import deploy_contracts
from validate_all_flows.embedded.migrate import apply_migrations
from validate_all_flows.embedded.node_deps import ensure_node_tools
from validate_all_flows.embedded.postgres import TempPostgres
from validate_all_flows.embedded.web3_client import ChainClient

MAX_RANGE = 2000
CHUNK = 500  # transactions per JSON-RPC batch while seeding
WAVE = 1500  # transactions in anvil's pool at once

TABLES = "chain_events, chain_blocks, chain_reorgs, listener_checkpoints"

# The anchor's statements: the ones a hand-written listener runs per log (same as ours, row by row).
INSERT_EVENT = (
    "INSERT INTO chain_events (chain_id, tx_hash, log_index, block_number, block_hash, "
    "contract_address, contract_name, event_name, topics, data, args) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (chain_id, tx_hash, log_index) DO NOTHING RETURNING 1"
)
DOMAIN = {
    "IdentityMinted": (
        "UPDATE identity_nfts SET token_id = %s, status = 'active', mint_tx_hash = %s, "
        "minted_block = %s, updated_at = now() WHERE chain_id = %s AND wallet_address = %s "
        "AND status = 'pending'"
    ),
    "IdentityCancelled": (
        "UPDATE identity_nfts SET status = 'cancelled', cancel_tx_hash = %s, "
        "cancelled_at = coalesce(cancelled_at, now()), updated_at = now() "
        "WHERE chain_id = %s AND token_id = %s AND status <> 'cancelled'"
    ),
    "FailSafeTriggered": (
        "UPDATE failsafe_events SET log_index = %s, block_number = %s, status = 'confirmed', "
        "confirmed_at = coalesce(confirmed_at, now()) WHERE tx_hash = %s AND chain_id = %s"
    ),
    "ProofRegistered": "UPDATE proofs SET log_index = %s, block_number = %s WHERE tx_hash = %s",
}
SAVE_BLOCK = (
    "INSERT INTO chain_blocks (chain_id, block_number, block_hash, parent_hash, block_timestamp) "
    "VALUES (%s, %s, %s, %s, to_timestamp(%s)) ON CONFLICT (chain_id, block_number) DO UPDATE "
    "SET block_hash = EXCLUDED.block_hash, parent_hash = EXCLUDED.parent_hash, "
    "block_timestamp = EXCLUDED.block_timestamp, seen_at = now()"
)
SAVE_CHECKPOINT = (
    "INSERT INTO listener_checkpoints (chain_id, listener, next_block, last_block_hash, "
    "head_block, lag_blocks, lag_seconds, range_size, updated_at) "
    "VALUES (%s, 'blocktrust', %s, %s, %s, 0, 0, %s, now()) ON CONFLICT (chain_id, listener) "
    "DO UPDATE SET next_block = EXCLUDED.next_block, last_block_hash = EXCLUDED.last_block_hash, "
    "head_block = EXCLUDED.head_block, updated_at = now()"
)


def seed(anvil: Anvil, config: ContractsConfig, n_events: int) -> int:
    """Puts ``n_events`` logs on chain (mints then proofs); returns the head block."""
    from eth_account import Account
    from web3 import Web3

    rpc = JsonRpcClient(anvil.rpc_url, request_timeout=120)
    w3 = Web3()
    sender = anvil.accounts[0]
    nft = w3.eth.contract(
        address=Web3.to_checksum_address(config.identity_nft.address), abi=config.identity_nft.abi
    )
    reg = w3.eth.contract(
        address=Web3.to_checksum_address(config.proof_registry.address),
        abi=config.proof_registry.abi,
    )
    mints = n_events // 5  # 3 logs per mint, 1 per proof: 3m + 2m = 5m
    proofs = n_events - 3 * mints
    wallets = [Account.create().address for _ in range(mints)]

    def send_all(txs: list[dict[str, Any]]) -> None:
        # anvil's pool silently drops what exceeds about 2,000 transactions: mine in waves.
        rpc.call("evm_setAutomine", [False])
        for wave in range(0, len(txs), WAVE):
            for i in range(wave, min(wave + WAVE, len(txs)), CHUNK):
                answers = rpc.batch([("eth_sendTransaction", [t]) for t in txs[i : i + CHUNK]])
                bad = [a for a in answers if not isinstance(a, str)]
                if bad:
                    raise RuntimeError(f"seeding: {bad[0]}")
            while int(rpc.call("txpool_status")["pending"], 16) > 0:
                rpc.call("evm_mine")
        rpc.call("evm_setAutomine", [True])

    nonce = [int(rpc.call("eth_getTransactionCount", [sender, "pending"]), 16)]

    def tx(to: str, data: str) -> dict[str, Any]:
        nonce[0] += 1  # explicit: anvil with automine off would reuse the mined nonce
        return {
            "from": sender,
            "to": to,
            "data": data,
            "gas": hex(250_000),
            "nonce": hex(nonce[0] - 1),
        }

    send_all([tx(nft.address, nft.encode_abi("mint", args=[w])) for w in wallets])
    send_all(
        [
            tx(
                reg.address,
                reg.encode_abi("registerProofFor", args=[wallets[i % mints], os.urandom(32)]),
            )
            for i in range(proofs)
        ]
    )
    head = int(rpc.call("eth_blockNumber"), 16)
    addresses = [config.entry(n).address for n in CONTRACT_NAMES]
    start = min(config.entry(n).deploy_block or 0 for n in CONTRACT_NAMES)
    logs = rpc.call(
        "eth_getLogs", [{"address": addresses, "fromBlock": hex(start), "toBlock": hex(head)}]
    )
    seeded = len(logs)
    if seeded < n_events:
        raise RuntimeError(f"seeding put {seeded} logs on chain, wanted {n_events}")
    return head


def _jsonable(v: Any) -> Any:
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return str(v)
    if isinstance(v, bytes):
        return "0x" + v.hex()
    if isinstance(v, str):
        return v.lower() if v.startswith("0x") else v
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return str(v)


class Anchor:
    """The straightforward web3.py + psycopg listener loop (set up outside the timed part)."""

    def __init__(self, rpc_url: str, dsn: str, config: ContractsConfig) -> None:
        import psycopg
        from eth_utils import event_abi_to_log_topic
        from web3 import Web3

        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 120}))
        self.chain_id = self.w3.eth.chain_id
        self.conn = psycopg.connect(dsn)
        self.addresses = [Web3.to_checksum_address(config.entry(n).address) for n in CONTRACT_NAMES]
        self.start = min(config.entry(n).deploy_block or 0 for n in CONTRACT_NAMES)
        self.events: dict[tuple[str, bytes], tuple[str, Any]] = {}
        for name in CONTRACT_NAMES:
            entry = config.entry(name)
            contract = self.w3.eth.contract(
                address=Web3.to_checksum_address(entry.address), abi=entry.abi
            )
            for item in entry.abi:
                if item["type"] == "event":
                    topic = event_abi_to_log_topic(item)
                    event = contract.events[item["name"]]()
                    self.events[(entry.address.lower(), topic)] = (name, event)

    def ingest(self) -> int:
        from psycopg.types.json import Jsonb

        head = self.w3.eth.block_number
        inserted = 0
        cur = self.conn.cursor()
        next_block = self.start
        while next_block <= head:
            to = min(next_block + MAX_RANGE - 1, head)
            to_block = self.w3.eth.get_block(to)
            logs = self.w3.eth.get_logs(
                {"address": self.addresses, "fromBlock": next_block, "toBlock": to}
            )
            with self.conn.transaction():
                for log in logs:
                    address = log["address"].lower()
                    topics = ["0x" + bytes(t).hex() for t in log["topics"]]
                    found = self.events.get((address, bytes(log["topics"][0])))
                    contract, event, args = None, None, None
                    if found:
                        contract = found[0]
                        decoded = found[1].process_log(log)
                        event = decoded["event"]
                        args = {k: _jsonable(v) for k, v in decoded["args"].items()}
                    tx = "0x" + bytes(log["transactionHash"]).hex()
                    index, block = log["logIndex"], log["blockNumber"]
                    cur.execute(
                        INSERT_EVENT,
                        (
                            self.chain_id,
                            tx,
                            index,
                            block,
                            "0x" + bytes(log["blockHash"]).hex(),
                            address,
                            contract,
                            event,
                            topics,
                            "0x" + bytes(log["data"]).hex(),
                            Jsonb(args) if args is not None else None,
                        ),
                    )
                    if cur.fetchone() is None:
                        continue
                    inserted += 1
                    if event == "IdentityMinted":
                        cur.execute(
                            DOMAIN[event],
                            (int(args["tokenId"]), tx, block, self.chain_id, args["wallet"]),
                        )
                    elif event == "IdentityCancelled":
                        cur.execute(DOMAIN[event], (tx, self.chain_id, int(args["tokenId"])))
                    elif event == "FailSafeTriggered":
                        cur.execute(DOMAIN[event], (index, block, tx, self.chain_id))
                    elif event == "ProofRegistered":
                        cur.execute(DOMAIN[event], (index, block, tx))
                cur.execute(
                    SAVE_BLOCK,
                    (
                        self.chain_id,
                        to,
                        "0x" + bytes(to_block["hash"]).hex(),
                        "0x" + bytes(to_block["parentHash"]).hex(),
                        to_block["timestamp"],
                    ),
                )
                cur.execute(
                    SAVE_CHECKPOINT,
                    (self.chain_id, to + 1, "0x" + bytes(to_block["hash"]).hex(), head, MAX_RANGE),
                )
            next_block = to + 1
        return inserted


def table_digest(pool: Pool) -> tuple[int, str]:
    row = pool.execute(
        "SELECT count(*), md5(coalesce(string_agg(concat_ws('|', tx_hash, log_index, "
        "block_number, block_hash, contract_address, contract_name, event_name, "
        "array_to_string(topics, ','), data, args::text), E'\\n' "
        "ORDER BY block_number, log_index), '')) FROM chain_events"
    )[0]
    return int(row[0]), str(row[1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000, help="logs to put on chain")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per side")
    args = ap.parse_args()

    import psycopg
    import web3

    load0 = os.getloadavg()
    print(f"web3 {web3.__version__}, psycopg {psycopg.__version__} ({psycopg.pq.__impl__})")
    ensure_node_tools(quiet=True)
    with TempPostgres() as pg, Anvil() as anvil:
        dsn = pg.create_database("bench")
        t0 = time.perf_counter()
        client = ChainClient(anvil.rpc_url, anvil.private_key(0), chain_id=anvil.chain_id)
        config = deploy_contracts(client)
        head = seed(anvil, config, args.events)
        print(
            f"setup (not measured): {args.events} events on chain up to block {head} "
            f"in {time.perf_counter() - t0:.1f}s"
        )
        with Pool(dsn, min_size=1, max_size=3) as pool:  # 3: the listener's leader lock
            apply_migrations(pool)
            anchor = Anchor(anvil.rpc_url, dsn, config)
            best = {"anchor": float("inf"), "ours": float("inf")}
            digests: dict[str, str] = {}
            counts: dict[str, int] = {}
            for r in range(args.rounds):
                for side in ("anchor", "ours") if r % 2 == 0 else ("ours", "anchor"):
                    pool.execute(f"TRUNCATE {TABLES}")
                    if side == "ours":
                        listener = Listener(
                            pool,
                            anvil.rpc_url,
                            config,
                            finality="confirmations",
                            max_range=MAX_RANGE,
                        )
                        t = time.perf_counter()
                        while not listener.poll():
                            pass
                        elapsed = time.perf_counter() - t
                        n = listener.inserted
                        listener.stop()  # gives the leader lock up for the next round
                    else:
                        t = time.perf_counter()
                        n = anchor.ingest()
                        elapsed = time.perf_counter() - t
                    count, digest = table_digest(pool)
                    if count != n or count < args.events:
                        raise RuntimeError(f"{side}: stored {count} rows, reported {n}")
                    digests.setdefault(side, digest)
                    best[side] = min(best[side], elapsed)
                    counts[side] = n
                    print(
                        f"round {r + 1} {side:6}: {n} events in {elapsed:.3f}s "
                        f"({n / elapsed:,.0f} events/s)"
                    )
            if digests["anchor"] != digests["ours"]:
                raise RuntimeError("the two sides stored different rows")
            anchor.conn.close()
    load1 = os.getloadavg()
    a_rate, o_rate = counts["anchor"] / best["anchor"], counts["ours"] / best["ours"]
    print(f"load average before {load0[0]:.1f}, after {load1[0]:.1f}")
    print(f"anchor web3.py get_logs + process_log + psycopg: {a_rate:,.0f} events/s (best)")
    print(f"ours   blocktrust_native.listener:               {o_rate:,.0f} events/s (best)")
    print(f"ratio ours/anchor ingest events/s: {o_rate / a_rate:.2f}x (target >= 5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
