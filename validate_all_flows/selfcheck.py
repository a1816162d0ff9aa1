"""Known-answer self-check of the native library: proves the installed build computes correctly.

Each check runs a capability of ``blocktrust_native`` on inputs whose answers are published
(NIST, RFC 6962, RFC 4231) or checked against an independent implementation (hashlib, hmac).
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CheckResult", "run_selfcheck"]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one self-check: its id, whether it passed, and what it found."""

    id: str
    passed: bool
    detail: str


def _digest() -> str:
    digest = importlib.import_module("blocktrust_native.digest")
    # NIST FIPS 180-2 / FIPS 202 example "abc".
    assert digest.sha256(b"abc").hex() == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert digest.sha3_256(b"abc").hex() == (
        "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"
    )
    data = bytes(range(256)) * 1000
    h = digest.Hasher("sha512")
    h.update(data[:1000])
    h.update(data[1000:])
    assert h.digest() == hashlib.sha512(data).digest()
    return "sha256, sha3-256 (NIST 'abc'), streaming sha512 = hashlib"


def _merkle() -> str:
    digest = importlib.import_module("blocktrust_native.digest")
    # RFC 6962: the empty tree is SHA-256 of the empty string; one leaf is SHA-256(0x00 || leaf).
    assert digest.merkle_root([]) == hashlib.sha256(b"").digest()
    assert digest.merkle_root([b"doc"]) == hashlib.sha256(b"\x00doc").digest()
    leaves = [bytes([i]) * 32 for i in range(7)]
    tree = digest.MerkleTree(leaves)
    for i, leaf in enumerate(leaves):
        assert digest.verify_inclusion(leaf, i, len(leaves), tree.proof(i), tree.root)
    assert not digest.verify_inclusion(b"forged", 3, len(leaves), tree.proof(3), tree.root)
    return "RFC 6962 empty and one-leaf roots, 7 inclusion proofs verify, a forged leaf fails"


def _apikeys() -> str:
    apikeys = importlib.import_module("blocktrust_native.apikeys")
    secret = hashlib.sha256(b"selfcheck server secret").digest()
    codec = apikeys.ApiKeyCodec(prefix="btk_test", secret=secret)
    key = codec.generate(role="client")
    assert key.digest == hmac.digest(secret, key.token.encode(), "sha256")
    assert codec.verify(key.token, key.digest)
    tampered = key.token[:-1] + ("A" if key.token[-1] != "A" else "B")
    try:
        codec.parse(tampered)
    except apikeys.InvalidApiKey:
        pass
    else:
        raise AssertionError("a token with a broken checksum was accepted")
    return "generate, HMAC-SHA256 digest = hmac module, verify, checksum rejects a typo"


def _passwords() -> str:
    passwords = importlib.import_module("blocktrust_native.passwords")
    # Small parameters: this checks correctness, not strength.
    params = passwords.Parameters(memory_kib=1024, iterations=1, parallelism=1)
    normal = passwords.hash_password("correct horse", params=params)
    duress = passwords.hash_password("duress horse", params=params)
    assert normal.startswith("$argon2id$")
    assert passwords.verify_password("correct horse", normal)
    results = [
        passwords.check_dual(p, normal, duress) for p in ("correct horse", "duress horse", "x")
    ]
    names = [r.name for r in results]
    assert names == ["NORMAL", "DURESS", "REJECTED"], names
    return "Argon2id PHC hash and verify; dual check gives NORMAL, DURESS, REJECTED"


_CHECKS: list[tuple[str, Callable[[], str]]] = [
    ("native.digest", _digest),
    ("native.merkle", _merkle),
    ("native.apikeys", _apikeys),
    ("native.passwords", _passwords),
]


def run_selfcheck() -> list[CheckResult]:
    """Runs every known-answer check; one result per check (a failure is reported, not raised)."""
    results = []
    for check_id, fn in _CHECKS:
        try:
            results.append(CheckResult(check_id, True, fn()))
        except Exception as exc:  # a failing check is reported, not raised
            what = str(exc) or type(exc).__name__
            results.append(CheckResult(check_id, False, f"{type(exc).__name__}: {what}"))
    return results
