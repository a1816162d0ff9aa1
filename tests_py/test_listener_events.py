"""Event topics and argument decoding of the listener, checked against eth_abi / eth_utils."""

from __future__ import annotations

import json
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak

from blocktrust_native.listener.contracts import CONTRACT_NAMES, ContractEntry, ContractsConfig
from blocktrust_native.listener.events import (
    EventDecoder,
    LogDecoder,
    event_signature,
    event_topic,
)
from validate_all_flows.embedded.chain import load_artifact


def _topic(signature: str) -> str:
    return "0x" + keccak(text=signature).hex()


def test_topics_are_the_keccak_of_their_signatures() -> None:
    signatures = ["Approval(address,address,uint256)", "Odd((uint256,bytes)[],string)"]
    for name in CONTRACT_NAMES:
        signatures += [
            event_signature(item) for item in load_artifact(name)["abi"] if item["type"] == "event"
        ]
    assert "IdentityMinted(uint256,address)" in signatures
    for signature in signatures:
        assert event_topic(signature) == _topic(signature), signature


def test_signatures_spell_tuples_and_arrays_canonically() -> None:
    item = {
        "type": "event",
        "name": "E",
        "inputs": [
            {"name": "a", "type": "uint256[]"},
            {
                "name": "t",
                "type": "tuple[2]",
                "components": [{"name": "x", "type": "address"}, {"name": "y", "type": "bytes"}],
            },
        ],
    }
    assert event_signature(item) == "E(uint256[],(address,bytes)[2])"


def _word(abi_type: str, value: Any) -> str:
    return abi_encode([abi_type], [value]).hex()


STATIC_CASES = [
    ("uint256", 2**256 - 1, str(2**256 - 1)),
    ("uint8", 7, "7"),
    ("int256", -5, "-5"),
    ("int64", 2**63 - 1, str(2**63 - 1)),
    ("int8", -128, "-128"),
    ("address", "0x" + "ab" * 20, "0x" + "ab" * 20),
    ("bool", True, True),
    ("bool", False, False),
    ("bytes4", b"\x01\x02\x03\x04", "0x01020304"),
    ("bytes32", b"\xfe" * 32, "0x" + "fe" * 32),
]


@pytest.mark.parametrize(("abi_type", "value", "expected"), STATIC_CASES)
def test_static_arguments_are_sliced_from_topics_and_data(
    abi_type: str, value: Any, expected: Any
) -> None:
    item = {
        "type": "event",
        "name": "E",
        "inputs": [
            {"name": "i", "type": abi_type, "indexed": True},
            {"name": "d", "type": abi_type, "indexed": False},
            {"name": "n", "type": "uint256", "indexed": False},
        ],
    }
    dec = EventDecoder("C", item)
    topics = [_topic(event_signature(item)), "0x" + _word(abi_type, value)]
    data = "0x" + _word(abi_type, value) + _word("uint256", 42)
    assert dec.decode(topics, data) == {"i": expected, "d": expected, "n": "42"}
    # A log with another layout under the same signature is not this event.
    assert dec.decode(topics[:1], data) is None
    assert dec.decode(topics, data[:-2]) is None


def test_dynamic_arguments_use_eth_abi_and_indexed_ones_keep_their_hash() -> None:
    item = {
        "type": "event",
        "name": "Named",
        "inputs": [
            {"name": "key", "type": "string", "indexed": True},
            {"name": "who", "type": "address", "indexed": False},
            {"name": "label", "type": "string", "indexed": False},
            {"name": "blob", "type": "bytes", "indexed": False},
            {"name": "ids", "type": "uint256[]", "indexed": False},
        ],
    }
    dec = EventDecoder("C", item)
    key_hash = "0x" + keccak(text="k").hex()
    data = (
        "0x"
        + abi_encode(
            ["address", "string", "bytes", "uint256[]"],
            ["0x" + "11" * 20, "héllo", b"\x00\xff", [1, 2**200]],
        ).hex()
    )
    assert dec.decode([_topic(event_signature(item)), key_hash], data) == {
        "key": key_hash,
        "who": "0x" + "11" * 20,
        "label": "héllo",
        "blob": "0x00ff",
        "ids": ["1", str(2**200)],
    }


def test_the_log_decoder_knows_addresses_and_events_per_contract() -> None:
    abis = {n: load_artifact(n)["abi"] for n in CONTRACT_NAMES}
    addresses = ["0x" + c * 40 for c in "abc"]
    # Addresses may be written in any case; the decoder compares them lower-cased.
    entries = [
        ContractEntry("0x" + a[2:].upper(), abis[n])
        for a, n in zip(addresses, CONTRACT_NAMES, strict=True)
    ]
    config = ContractsConfig(*entries)
    dec = LogDecoder(config)
    assert dec.addresses == addresses
    minted = _topic("IdentityMinted(uint256,address)")
    topics = [minted, "0x" + _word("uint256", 9), "0x" + _word("address", "0x" + "22" * 20)]
    assert dec.decode(addresses[0], topics, "0x") == (
        "IdentityNFT",
        "IdentityMinted",
        {"tokenId": "9", "wallet": "0x" + "22" * 20},
    )
    # The same topic at another contract's address is not that contract's event.
    assert dec.decode(addresses[1], topics, "0x") == ("ProofRegistry", None, None)
    assert dec.decode("0x" + "dd" * 20, topics, "0x") == (None, None, None)
    assert dec.decode(addresses[0], [], "0x") == ("IdentityNFT", None, None)
    # Values are JSON-ready.
    json.dumps(dec.decode(addresses[0], topics, "0x"))
