"""Digests on OpenSSL, file hashing without the GIL, and RFC 6962 Merkle trees.

    sha256(b"abc").hex()                      # one-shot; also sha512, sha3_256
    keccak256(b"transfer(address,uint256)")[:4]   # Ethereum's Keccak-256 (selectors, topics)
    h = Hasher("sha512"); h.update(b"..."); h.hexdigest()   # hashlib's face
    hash_file("report.pdf")                   # 1 MiB blocks, GIL released
    hash_files(paths, threads=None)           # all cores, results in input order
    tree = MerkleTree(document_hashes)
    proof = tree.proof(3)                     # InclusionProof, JSON round trip
    verify_inclusion(document_hashes[3], 3, tree.size, proof, tree.root)

Merkle trees follow RFC 6962 section 2.1 exactly (leaf = SHA-256(0x00 || data), node =
SHA-256(0x01 || left || right), split at the largest power of two below n, empty tree =
SHA-256("")), so roots and proofs agree with Certificate Transparency and with the on-chain
ProofRegistry contract, whose leaves are 32-byte document hashes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

from blocktrust_native._native import digest as _native
from blocktrust_native.errors import (
    ConfigError,
    FileReadError,
    InvalidProof,
    LeafIndexError,
    NotBytesLike,
)

__all__ = [
    "ConfigError",
    "FileReadError",
    "Hasher",
    "InclusionProof",
    "InvalidProof",
    "LeafIndexError",
    "MerkleTree",
    "NotBytesLike",
    "algorithms_available",
    "hash_bytes",
    "hash_file",
    "hash_files",
    "keccak256",
    "leaf_hash",
    "merkle_root",
    "merkle_root_packed",
    "new",
    "node_hash",
    "root_from_inclusion_proof",
    "sha3_256",
    "sha256",
    "sha512",
    "verify_inclusion",
]

StrPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

#: Streaming hash with hashlib's face: update, digest, hexdigest, copy, name, digest_size.
Hasher = _native.Hasher
#: SHA-256 of a bytes-like object (the GIL is released from 64 KiB up).
sha256 = _native.sha256
#: SHA-512 of a bytes-like object.
sha512 = _native.sha512
#: SHA3-256 of a bytes-like object.
sha3_256 = _native.sha3_256
#: Keccak-256 as Ethereum uses it (original Keccak padding, so not SHA3-256): function selectors,
#: event topics, addresses. OpenSSL 3.0 has no such digest; ours follows FIPS 202's permutation.
keccak256 = _native.keccak256
#: RFC 6962 leaf hash SHA-256(0x00 || data).
leaf_hash = _native.leaf_hash
#: RFC 6962 node hash SHA-256(0x01 || left || right) of two 32-byte hashes.
node_hash = _native.node_hash
#: RFC 6962 Merkle Tree Hash of an iterable of bytes-like leaves (GIL released while hashing).
merkle_root = _native.merkle_root
#: Merkle Tree Hash of leaves of ``leaf_size`` bytes packed back to back in one buffer.
merkle_root_packed = _native.merkle_root_packed

#: The hashlib names this module accepts ("SHA-256" and "sha3-256" spellings work too).
algorithms_available: frozenset[str] = frozenset(_native.algorithms())


def hash_bytes(data: Any, algorithm: str = "sha256") -> bytes:
    """Digest of a bytes-like object with ``algorithm``; unknown names raise ConfigError."""
    return _native.hash_bytes(data, algorithm)


def new(algorithm: str = "sha256", data: Any = None) -> Hasher:
    """A new :class:`Hasher` for ``algorithm``, fed ``data`` if given (like ``hashlib.new``)."""
    return Hasher(algorithm, data)


def hash_file(path: StrPath, algorithm: str = "sha256") -> bytes:
    """Digest of a file read in 1 MiB blocks with the GIL released; raises FileReadError."""
    return _native.hash_file(os.fsencode(path), algorithm)


def hash_files(
    paths: Iterable[StrPath],
    algorithm: str = "sha256",
    threads: int | None = None,
    errors: Literal["raise", "return"] = "raise",
) -> list[Any]:
    """Digests of many files, hashed in parallel, in input order.

    ``threads=None`` uses every core. With ``errors="raise"`` (the default) the first failing
    file (in input order, among those reached) raises :class:`FileReadError` naming its path and
    the remaining files are not started; with ``errors="return"`` every file is attempted and a
    failing one yields its FileReadError object in place of the digest.
    """
    if errors not in ("raise", "return"):
        raise ConfigError(f"errors must be 'raise' or 'return', not {errors!r}")
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise ConfigError("hash_files takes an iterable of paths; use hash_file for one path")
    if threads is None:
        threads = 0
    elif isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads must be a positive int or None, not {threads!r}")
    encoded = [os.fsencode(p) for p in paths]
    results = _native.hash_files(encoded, algorithm, threads, errors == "raise")
    if errors == "raise":
        for r in results:
            if isinstance(r, FileReadError):
                raise r
    return list(results)


def _check_index(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidProof(f"{what} must be an int, not {type(value).__name__}")
    if value < 0 or value >= 2**64:
        raise InvalidProof(f"{what} {value} is out of range (0 to 2**64-1)")
    return value


@dataclass(frozen=True)
class InclusionProof:
    """An RFC 6962 audit path: leaf ``leaf_index`` of a tree of ``tree_size`` leaves.

    JSON form (``to_json`` / ``from_json``)::

        {"leaf_index": 3, "tree_size": 7, "hashes": ["<64 hex digits>", ...]}

    ``hashes`` lists the sibling hashes from the leaf level up, as RFC 6962 PATH orders them;
    they are the ``bytes32[] path`` the ProofRegistry contract's ``verifyInclusion`` takes.
    """

    leaf_index: int
    tree_size: int
    hashes: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _check_index(self.leaf_index, "leaf_index")
        _check_index(self.tree_size, "tree_size")
        if self.leaf_index >= self.tree_size:
            raise InvalidProof(
                f"leaf_index {self.leaf_index} is not below tree_size {self.tree_size}"
            )
        hashes = tuple(self.hashes)
        for i, h in enumerate(hashes):
            if not isinstance(h, (bytes, bytearray, memoryview)):
                raise InvalidProof(f"proof hash {i} must be bytes, not {type(h).__name__}")
            if len(h) != 32:
                raise InvalidProof(f"proof hash {i} is {len(h)} bytes long, expected 32")
        object.__setattr__(self, "hashes", tuple(bytes(h) for h in hashes))

    def verify(self, leaf: Any, root: Any) -> bool:
        """True when this proof shows leaf data ``leaf`` is in the tree with ``root``."""
        return _native.verify_inclusion(leaf, self.leaf_index, self.tree_size, self.hashes, root)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict: leaf_index, tree_size and hashes as lower-case hex."""
        return {
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "hashes": [h.hex() for h in self.hashes],
        }

    def to_json(self) -> str:
        """The proof as compact JSON (see the class docstring for the format)."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, obj: Any) -> InclusionProof:
        """Reads the dict form; anything malformed raises InvalidProof naming the field."""
        if not isinstance(obj, dict):
            raise InvalidProof(f"proof must be a JSON object, not {type(obj).__name__}")
        expected = {"leaf_index", "tree_size", "hashes"}
        if set(obj) != expected:
            missing = sorted(expected - set(obj))
            extra = sorted(set(obj) - expected)
            raise InvalidProof(f"proof fields: missing {missing}, unexpected {extra}")
        hexes = obj["hashes"]
        if not isinstance(hexes, list):
            raise InvalidProof(f"proof hashes must be a list, not {type(hexes).__name__}")
        hashes = []
        for i, h in enumerate(hexes):
            if not isinstance(h, str) or len(h) != 64:
                raise InvalidProof(f"proof hash {i} must be 64 hex digits, got {h!r:.80}")
            try:
                hashes.append(bytes.fromhex(h))
            except ValueError:
                raise InvalidProof(f"proof hash {i} is not hex: {h!r:.80}") from None
        return cls(obj["leaf_index"], obj["tree_size"], tuple(hashes))

    @classmethod
    def from_json(cls, text: str | bytes) -> InclusionProof:
        """Parses :meth:`to_json` output; bad JSON or fields raise InvalidProof."""
        try:
            obj = json.loads(text)
        except (ValueError, TypeError) as e:
            raise InvalidProof(f"proof is not valid JSON: {e}") from None
        return cls.from_dict(obj)


class MerkleTree:
    """An RFC 6962 Merkle tree over raw leaves, kept in memory for roots and proofs.

    Immutable once built, so one tree can serve proofs to many threads at once.
    """

    __slots__ = ("_tree",)

    def __init__(self, leaves: Iterable[Any]) -> None:
        self._tree = _native.MerkleTree(leaves)

    @property
    def root(self) -> bytes:
        """The Merkle Tree Hash (32 bytes)."""
        return self._tree.root

    @property
    def size(self) -> int:
        """The number of leaves."""
        return self._tree.size

    def __len__(self) -> int:
        return self._tree.size

    def __repr__(self) -> str:
        return f"MerkleTree(size={self.size}, root={self.root.hex()})"

    def leaf_hash(self, index: int) -> bytes:
        """The RFC 6962 leaf hash of leaf ``index``; raises LeafIndexError when out of range."""
        return self._tree.leaf_hash(self._index(index))

    def proof(self, index: int) -> InclusionProof:
        """The audit path of leaf ``index``; raises LeafIndexError when out of range."""
        return InclusionProof(index, self.size, tuple(self._tree.proof(self._index(index))))

    def _index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, int):
            raise LeafIndexError(f"leaf index must be an int, not {type(index).__name__}")
        if not 0 <= index < self.size:
            raise LeafIndexError(
                f"leaf index {index} out of range for a tree of {self.size} leaves"
            )
        return index


def verify_inclusion(
    leaf: Any,
    index: int,
    size: int,
    proof: InclusionProof | Sequence[bytes],
    root: bytes,
) -> bool:
    """RFC 9162 2.1.3.2: True when ``proof`` shows leaf data ``leaf`` is leaf ``index`` of the
    tree of ``size`` leaves with ``root``.

    A well-formed but wrong proof (or ``index >= size``) returns False; malformed input (a hash
    that is not 32 bytes, a negative index) raises InvalidProof. An InclusionProof whose own
    index or size differ from ``index``/``size`` does not verify.
    """
    if isinstance(proof, InclusionProof):
        if proof.leaf_index != index or proof.tree_size != size:
            return False
        path: Sequence[Any] = proof.hashes
    else:
        path = proof
    return _native.verify_inclusion(leaf, index, size, path, root)


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes | None:
    """The root a proof implies for a leaf *hash*, or None when its length does not fit."""
    return _native.root_from_inclusion_proof(leaf_hash, index, size, proof)
