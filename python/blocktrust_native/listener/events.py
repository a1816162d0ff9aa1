"""Decoding the contracts' logs: event topics, and arguments sliced from 32-byte words.

Static ABI types (address, bool, uintN, intN, bytesN) are read straight from the hex of the log's
topics and data, with no ABI library: that covers every event of the three Blocktrust contracts
and is most of the listener's speed. Dynamic types (string, bytes, arrays, tuples) in the data are
decoded with ``eth_abi`` when it is installed (``pip install 'blocktrust-native[listener]'``);
without it such logs are stored with their event name and no arguments. An indexed dynamic value
is only its keccak-256 hash on chain, and is stored as that hash.

A topic is the keccak-256 of the event's signature (:func:`blocktrust_native.digest.keccak256`),
so every event of an ABI is recognised.

Argument values are JSON-ready: integers as decimal strings (uint256 exceeds JSON numbers),
addresses and bytes as lower-case 0x-hex, bools as bools.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from blocktrust_native.digest import keccak256
from blocktrust_native.listener.contracts import CONTRACT_NAMES, ContractEntry, ContractsConfig

__all__ = ["EventDecoder", "LogDecoder", "event_signature", "event_topic"]

log = logging.getLogger("blocktrust_native.listener")

_EXTRA = "pip install 'blocktrust-native[listener]'"
_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning("%s", message)


def _canonical_type(inp: Mapping[str, Any]) -> str:
    t = str(inp["type"])
    if t.startswith("tuple"):
        inner = ",".join(_canonical_type(c) for c in inp.get("components") or [])
        return f"({inner}){t[5:]}"
    return t


def event_signature(abi_item: Mapping[str, Any]) -> str:
    """``Name(type1,type2,...)`` of an ABI event entry, as hashed into its topic."""
    types = ",".join(_canonical_type(i) for i in abi_item.get("inputs") or [])
    return f"{abi_item['name']}({types})"


def event_topic(signature: str) -> str:
    """The topic (0x-hex keccak-256) of an event signature, e.g. ``Transfer(address,uint256)``."""
    return "0x" + keccak256(signature.encode()).hex()


# -- one word (64 hex digits) to a JSON-ready value


def _address(w: str) -> str:
    return "0x" + w[24:]


def _uint(w: str) -> str:
    return str(int(w, 16))


def _int(w: str) -> str:
    v = int(w, 16)
    return str(v - (1 << 256) if v >> 255 else v)


def _bool(w: str) -> bool:
    return int(w, 16) != 0


def _hash(w: str) -> str:
    return "0x" + w


def _bytes_n(n: int) -> Callable[[str], str]:
    def take(w: str) -> str:
        return "0x" + w[: 2 * n]

    return take


_UINT = re.compile(r"uint(\d{0,3})")
_INT = re.compile(r"int(\d{0,3})")
_BYTES_N = re.compile(r"bytes(\d{1,2})")


def _word_decoder(abi_type: str) -> Callable[[str], Any] | None:
    """The decoder of a static one-word type, None for anything else."""
    if abi_type == "address":
        return _address
    if abi_type == "bool":
        return _bool
    if _UINT.fullmatch(abi_type):
        return _uint
    if _INT.fullmatch(abi_type):
        return _int
    m = _BYTES_N.fullmatch(abi_type)
    if m and 1 <= int(m.group(1)) <= 32:
        return _bytes_n(int(m.group(1)))
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


@dataclass(frozen=True)
class _Field:
    name: str
    decode: Callable[[str], Any]
    # topics[topic] when indexed, else data[start:end] (hex digits after the 0x)
    topic: int
    start: int
    end: int


class EventDecoder:
    """Decodes the logs of one ABI event of one contract."""

    def __init__(self, contract: str, abi_item: Mapping[str, Any]) -> None:
        self.contract = contract
        self.name = str(abi_item["name"])
        self.signature = event_signature(abi_item)
        inputs = list(abi_item.get("inputs") or [])
        self.n_topics = 1 + sum(1 for i in inputs if i.get("indexed"))
        self._fields: list[_Field] = []
        self._dynamic: list[tuple[str, str]] = []  # non-indexed (name, type) for eth_abi
        word = 0
        topic = 1
        static = True
        for i, inp in enumerate(inputs):
            name = str(inp.get("name") or f"arg{i}")
            decode = _word_decoder(_canonical_type(inp))
            if inp.get("indexed"):
                # An indexed dynamic value is its hash on chain: keep the hash.
                self._fields.append(_Field(name, decode or _hash, topic, 0, 0))
                topic += 1
            else:
                self._dynamic.append((name, _canonical_type(inp)))
                if decode is None:
                    static = False
                else:
                    start = 2 + 64 * word
                    self._fields.append(_Field(name, decode, -1, start, start + 64))
                    word += 1
        self._static = static
        self._data_len = 2 + 64 * word

    def decode(self, topics: list[str], data: str) -> dict[str, Any] | None:
        """The arguments of a log (lower-case hex ``topics`` and ``data``); None when the log
        does not fit this event or needs eth_abi that is not installed."""
        if len(topics) != self.n_topics:
            return None
        if self._static:
            if len(data) != self._data_len:
                return None
            return {
                f.name: f.decode(topics[f.topic][2:] if f.topic >= 0 else data[f.start : f.end])
                for f in self._fields
            }
        args = {f.name: f.decode(topics[f.topic][2:]) for f in self._fields if f.topic >= 0}
        try:
            from eth_abi.abi import decode as abi_decode
        except ImportError:
            _warn_once(
                self.signature,
                f"{self.contract}.{self.signature} has dynamic arguments that need eth_abi "
                f"({_EXTRA}); its logs are stored without arguments",
            )
            return None
        try:
            values = abi_decode([t for _, t in self._dynamic], bytes.fromhex(data[2:]))
        except Exception:  # a log that does not fit the ABI: keep it, undecoded
            return None
        for (name, _), value in zip(self._dynamic, values, strict=True):
            args[name] = _jsonable(value)
        return args


class LogDecoder:
    """Knows the contracts a listener follows (name -> entry, or the three of a
    :class:`ContractsConfig`): their addresses and their events by topic."""

    def __init__(self, contracts: ContractsConfig | Mapping[str, ContractEntry]) -> None:
        if isinstance(contracts, ContractsConfig):
            contracts = {name: contracts.entry(name) for name in CONTRACT_NAMES}
        #: lower-case address -> contract name
        self.contracts: dict[str, str] = {}
        self._events: dict[tuple[str, str], EventDecoder] = {}
        for name, entry in contracts.items():
            address = entry.address.lower()
            self.contracts[address] = name
            for item in entry.abi:
                if item.get("type") != "event" or item.get("anonymous"):
                    continue
                decoder = EventDecoder(name, item)
                self._events[(address, event_topic(decoder.signature))] = decoder

    @property
    def addresses(self) -> list[str]:
        """The contracts' lower-case addresses (the eth_getLogs filter)."""
        return list(self.contracts)

    def decode(
        self, address: str, topics: list[str], data: str
    ) -> tuple[str | None, str | None, dict[str, Any] | None]:
        """``(contract, event, args)`` of a log with lower-case fields; event and args are None
        for an unknown event, args alone when the arguments cannot be decoded."""
        contract = self.contracts.get(address)
        ev = self._events.get((address, topics[0])) if topics else None
        if ev is None:
            return contract, None, None
        args = ev.decode(topics, data)
        if args is None and len(topics) != ev.n_topics:
            return contract, None, None  # same signature, other layout: not this event
        return contract, ev.name, args
