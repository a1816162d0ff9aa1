"""contracts_config.json: the three deployed Blocktrust contracts, in the operators' format.

The one home of the file's model and loader; it needs neither web3 nor keccak, so the listener
loads it without the chain extra (``validate_all_flows.embedded.chain`` re-exports these names).

    {"IdentityNFT": {"address": "0x…", "abi": […], "deployBlock": 12, "chainId": 80002},
     "ProofRegistry": {…}, "FailSafe": {…}}

``deployBlock`` and ``chainId`` are optional (older files lack them). Addresses are kept as
written (checksummed or lower case); compare them lower-cased.
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blocktrust_native.errors import ContractsConfigError, FileReadError

__all__ = ["CONTRACT_NAMES", "ContractEntry", "ContractsConfig", "load_contracts_config"]

#: The contracts in contracts_config.json, in deployment order.
CONTRACT_NAMES = ("IdentityNFT", "ProofRegistry", "FailSafe")

_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")


@dataclass(frozen=True)
class ContractEntry:
    """One contract of contracts_config.json: its address, ABI and (optionally) deployment block."""

    address: str
    abi: list[dict[str, Any]] = field(repr=False)
    deploy_block: int | None = None


@dataclass(frozen=True)
class ContractsConfig:
    """The three deployed contracts, as operators keep them in contracts_config.json.

    The file is ``{"IdentityNFT": {"address": ..., "abi": [...]}, "ProofRegistry": ...,
    "FailSafe": ...}``; each entry may also carry ``deployBlock`` and ``chainId`` (we write both; a
    listener starts from ``deployBlock``), which older files lack.
    """

    identity_nft: ContractEntry
    proof_registry: ContractEntry
    fail_safe: ContractEntry
    chain_id: int | None = None

    def entry(self, name: str) -> ContractEntry:
        """The entry of contract ``name`` (one of :data:`CONTRACT_NAMES`)."""
        entries = dict(zip(CONTRACT_NAMES, self._entries(), strict=True))
        if name not in entries:
            raise ContractsConfigError(f"unknown contract {name!r}; known: {', '.join(entries)}")
        return entries[name]

    def _entries(self) -> tuple[ContractEntry, ContractEntry, ContractEntry]:
        return (self.identity_nft, self.proof_registry, self.fail_safe)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of contracts_config.json."""
        out: dict[str, Any] = {}
        for name, e in zip(CONTRACT_NAMES, self._entries(), strict=True):
            item: dict[str, Any] = {"address": e.address, "abi": e.abi}
            if e.deploy_block is not None:
                item["deployBlock"] = e.deploy_block
            if self.chain_id is not None:
                item["chainId"] = self.chain_id
            out[name] = item
        return out

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Writes contracts_config.json atomically (temp file + rename); returns the path."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def from_dict(cls, data: Any, source: str = "contracts_config") -> ContractsConfig:
        """Parses the JSON object; ContractsConfigError names ``source`` and what is missing."""
        if not isinstance(data, Mapping):
            raise ContractsConfigError(f"{source}: expected a JSON object of contracts")
        missing = [n for n in CONTRACT_NAMES if n not in data]
        if missing:
            raise ContractsConfigError(f"{source}: missing contract(s) {', '.join(missing)}")
        entries = []
        chain_ids = set()
        for name in CONTRACT_NAMES:
            item = data[name]
            where = f"{source}: {name}"
            if not isinstance(item, Mapping):
                raise ContractsConfigError(f"{where}: expected an object with address and abi")
            for key in ("address", "abi"):
                if key not in item:
                    raise ContractsConfigError(f"{where}: missing {key!r}")
            address = item["address"]
            if not isinstance(address, str) or not _ADDRESS_RE.fullmatch(address):
                raise ContractsConfigError(
                    f"{where}.address must be a 0x-prefixed 20-byte hex address, got {address!r}"
                )
            abi = item["abi"]
            if not isinstance(abi, list) or not all(isinstance(x, Mapping) for x in abi):
                raise ContractsConfigError(f"{where}.abi: expected a list of ABI entries")
            block = item.get("deployBlock")
            if block is not None and (not isinstance(block, int) or block < 0):
                raise ContractsConfigError(f"{where}.deployBlock: expected a block number")
            if "chainId" in item:
                chain_ids.add(item["chainId"])
            entries.append(ContractEntry(address, list(abi), block))
        if len(chain_ids) > 1:
            raise ContractsConfigError(
                f"{source}: contracts disagree on chainId {sorted(chain_ids)}"
            )
        chain_id = chain_ids.pop() if chain_ids else None
        if chain_id is not None and (not isinstance(chain_id, int) or chain_id <= 0):
            raise ContractsConfigError(f"{source}: chainId must be a positive integer")
        return cls(entries[0], entries[1], entries[2], chain_id)


def load_contracts_config(path: str | os.PathLike[str]) -> ContractsConfig:
    """Reads contracts_config.json: FileReadError if unreadable, ContractsConfigError if bad."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise FileReadError(
            e.errno or errno.EIO, f"cannot read contracts config: {e.strerror}", str(path)
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ContractsConfigError(
            f"{path}: not JSON (line {e.lineno}, column {e.colno}: {e.msg})"
        ) from None
    return ContractsConfig.from_dict(data, str(path))
