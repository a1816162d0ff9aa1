"""blocktrust_native.digest Merkle trees against a pure-Python RFC 6962 reference written here,
the CT reference tree, proof JSON, every bad-input path, threads, and the on-chain verifier."""

# Fixtures imported from fix_anvil are parameters of the tests:
# ruff: noqa: F811

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
from typing import Any

import pytest
from fix_anvil import anvil, bt, deployed, deployer  # noqa: F401
from hypothesis import given, settings
from hypothesis import strategies as st

from blocktrust_native import digest
from blocktrust_native.digest import InclusionProof, MerkleTree, verify_inclusion
from blocktrust_native.errors import Error, InvalidProof, LeafIndexError, NotBytesLike
from validate_all_flows.embedded.chain import BlocktrustContracts

# -- the reference: RFC 6962 section 2.1 and RFC 9162 section 2.1.3.2, straight from the text


def ref_leaf(d: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + d).digest()


def ref_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def ref_split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return ref_leaf(d[0])
    k = ref_split(len(d))
    return ref_node(ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) <= 1:
        return []
    k = ref_split(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_verify(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    if index >= size:
        return False
    fn, sn, r = index, size - 1, ref_leaf(leaf)
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = ref_node(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = ref_node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


# The Certificate Transparency reference test leaves.
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]


def flip(b: bytes, i: int = 0) -> bytes:
    return b[:i] + bytes([b[i] ^ 1]) + b[i + 1 :]


# -- roots


def test_selfcheck_shape_empty_and_one_leaf() -> None:
    assert digest.merkle_root([]) == hashlib.sha256(b"").digest()
    assert digest.merkle_root([b"doc"]) == hashlib.sha256(b"\x00doc").digest()
    assert digest.leaf_hash(b"doc") == ref_leaf(b"doc")
    a, b = ref_leaf(b"a"), ref_leaf(b"b")
    assert digest.node_hash(a, b) == ref_node(a, b)
    assert digest.merkle_root([b"a", b"b", b"c"]) == ref_node(ref_node(a, b), ref_leaf(b"c"))


@pytest.mark.parametrize("n", range(len(CT_LEAVES) + 1))
def test_ct_reference_tree(n: int) -> None:
    leaves = CT_LEAVES[:n]
    expected = ref_mth(leaves)
    assert digest.merkle_root(leaves) == expected
    tree = MerkleTree(leaves)
    assert tree.root == expected
    assert tree.size == len(tree) == n
    for m in range(n):
        assert list(tree.proof(m).hashes) == ref_path(m, leaves)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=140))
def test_root_and_tree_equal_the_reference(leaves: list[bytes]) -> None:
    expected = ref_mth(leaves)
    assert digest.merkle_root(leaves) == expected
    assert digest.merkle_root(iter(leaves)) == expected
    assert digest.merkle_root([bytearray(x) for x in leaves]) == expected
    assert MerkleTree(tuple(leaves)).root == expected


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 64), st.integers(0, 130), st.randoms(use_true_random=False))
def test_packed_root_equals_the_reference(leaf_size: int, n: int, rnd: Any) -> None:
    leaves = [rnd.randbytes(leaf_size) for _ in range(n)]
    assert digest.merkle_root_packed(b"".join(leaves), leaf_size) == ref_mth(leaves)
    assert digest.merkle_root_packed(memoryview(b"".join(leaves)), leaf_size) == ref_mth(leaves)


def test_packed_root_bad_sizes() -> None:
    with pytest.raises(InvalidProof, match="multiple of leaf_size 32"):
        digest.merkle_root_packed(b"x" * 33, 32)
    with pytest.raises(InvalidProof, match="at least 1"):
        digest.merkle_root_packed(b"", 0)


def test_large_tree_matches_the_reference_level_by_level() -> None:
    # 5000 leaves: the recursive reference is slow beyond this; odd sizes at many levels.
    leaves = [os.urandom(32) for _ in range(5000)]
    assert digest.merkle_root(leaves) == ref_mth(leaves)


# -- proofs


def test_every_proof_of_trees_1_to_70_verifies_and_tampering_fails() -> None:
    base = [hashlib.sha256(f"document {i}".encode()).digest() for i in range(70)]
    for n in range(1, 71):
        leaves = base[:n]
        tree = MerkleTree(leaves)
        root = tree.root
        assert root == ref_mth(leaves)
        for m in range(n):
            proof = tree.proof(m)
            path = list(proof.hashes)
            assert path == ref_path(m, leaves)
            assert (proof.leaf_index, proof.tree_size) == (m, n)
            assert verify_inclusion(leaves[m], m, n, proof, root)
            assert verify_inclusion(leaves[m], m, n, path, root)
            assert proof.verify(leaves[m], root)
            # Each tampering fails, and the reference agrees it must.
            bad = [
                (flip(leaves[m]), m, n, path, root),
                (leaves[m], m, n, path, flip(root, 31)),
                (leaves[m], n, n, path, root),
                (leaves[m], m, n, [*path, root], root),
            ]
            if path:
                bad.append((leaves[m], m, n, path[:-1], root))
                bad += [
                    (leaves[m], m, n, [*path[:i], flip(p), *path[i + 1 :]], root)
                    for i, p in enumerate(path)
                ]
            if n > 1:
                bad.append((leaves[m], (m + 1) % n, n, path, root))
            for case in bad:
                assert not ref_verify(*case)
                assert not verify_inclusion(*case), (n, m)
            # Other positions/sizes: ours agrees with RFC 9162 whichever way it goes (a proof
            # can fit another size where the shapes coincide; the root is the commitment).
            for om, on in ((m ^ 1, n), (m, n + 1), (m, n - 1), (m, 2 * n)):
                if on >= 1:
                    assert verify_inclusion(leaves[m], om, on, path, root) == ref_verify(
                        leaves[m], om, on, path, root
                    )


def test_root_from_inclusion_proof() -> None:
    leaves = CT_LEAVES
    tree = MerkleTree(leaves)
    for m in range(len(leaves)):
        path = list(tree.proof(m).hashes)
        assert digest.root_from_inclusion_proof(ref_leaf(leaves[m]), m, 8, path) == tree.root
        assert digest.root_from_inclusion_proof(ref_leaf(leaves[m]), m, 8, path[:-1]) is None
    assert digest.root_from_inclusion_proof(ref_leaf(b""), 8, 8, []) is None


def test_proof_of_an_inclusion_proof_with_other_index_does_not_verify() -> None:
    leaves = [b"a", b"b", b"c"]
    tree = MerkleTree(leaves)
    proof = tree.proof(1)
    assert not verify_inclusion(b"b", 0, 3, proof, tree.root)
    assert not verify_inclusion(b"b", 1, 4, proof, tree.root)


# -- JSON


def test_proof_json_round_trip_and_format() -> None:
    leaves = [hashlib.sha256(bytes([i])).digest() for i in range(11)]
    tree = MerkleTree(leaves)
    for m in range(11):
        proof = tree.proof(m)
        text = proof.to_json()
        obj = json.loads(text)
        assert obj == {
            "leaf_index": m,
            "tree_size": 11,
            "hashes": [h.hex() for h in ref_path(m, leaves)],
        }
        back = InclusionProof.from_json(text)
        assert back == proof
        assert InclusionProof.from_json(text.encode()) == proof
        assert InclusionProof.from_dict(proof.to_dict()) == proof
        assert back.verify(leaves[m], tree.root)


GOOD = {"leaf_index": 1, "tree_size": 2, "hashes": ["00" * 32]}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "not valid JSON"),
        ("{", "not valid JSON"),
        ("[]", "JSON object"),
        ("null", "JSON object"),
        (json.dumps({"leaf_index": 1, "tree_size": 2}), "missing \\['hashes'\\]"),
        (json.dumps({**GOOD, "root": "00"}), "unexpected \\['root'\\]"),
        (json.dumps({**GOOD, "hashes": "00" * 32}), "must be a list"),
        (json.dumps({**GOOD, "hashes": ["00" * 31]}), "proof hash 0 must be 64 hex"),
        (json.dumps({**GOOD, "hashes": ["00" * 32, "zz" * 32]}), "proof hash 1 is not hex"),
        (json.dumps({**GOOD, "hashes": [1]}), "proof hash 0 must be 64 hex"),
        (json.dumps({**GOOD, "leaf_index": 2}), "not below tree_size"),
        (json.dumps({**GOOD, "leaf_index": -1}), "out of range"),
        (json.dumps({**GOOD, "leaf_index": 1.0}), "must be an int"),
        (json.dumps({**GOOD, "leaf_index": True}), "must be an int"),
        (json.dumps({**GOOD, "tree_size": "2"}), "must be an int"),
        (json.dumps({**GOOD, "tree_size": 2**64}), "out of range"),
    ],
)
def test_bad_proof_json_raises_invalid_proof(text: str, match: str) -> None:
    with pytest.raises(InvalidProof, match=match) as e:
        InclusionProof.from_json(text)
    assert isinstance(e.value, ValueError)
    assert isinstance(e.value, Error)


def test_inclusion_proof_constructor_checks_hashes() -> None:
    with pytest.raises(InvalidProof, match="proof hash 0 is 31 bytes"):
        InclusionProof(0, 2, (b"x" * 31,))
    with pytest.raises(InvalidProof, match="must be bytes"):
        InclusionProof(0, 2, ("00" * 32,))  # type: ignore[arg-type]


# -- bad input


def test_bad_verify_inputs_raise_invalid_proof() -> None:
    tree = MerkleTree([b"a", b"b"])
    path = list(tree.proof(0).hashes)
    with pytest.raises(InvalidProof, match="proof hash 0 is 31 bytes"):
        verify_inclusion(b"a", 0, 2, [path[0][:31]], tree.root)
    with pytest.raises(InvalidProof, match="root is 33 bytes"):
        verify_inclusion(b"a", 0, 2, path, tree.root + b"x")
    with pytest.raises(InvalidProof, match="leaf_index -1 is out of range"):
        verify_inclusion(b"a", -1, 2, path, tree.root)
    with pytest.raises(InvalidProof, match="tree_size"):
        verify_inclusion(b"a", 0, 2**64, path, tree.root)
    with pytest.raises(InvalidProof, match="must be an int"):
        verify_inclusion(b"a", "0", 2, path, tree.root)  # type: ignore[arg-type]
    with pytest.raises(InvalidProof, match="sequence of 32-byte hashes"):
        verify_inclusion(b"a", 0, 2, 5, tree.root)  # type: ignore[arg-type]
    with pytest.raises(NotBytesLike, match="leaf"):
        verify_inclusion("a", 0, 2, path, tree.root)
    with pytest.raises(InvalidProof, match="left is 3 bytes"):
        digest.node_hash(b"abc", b"x" * 32)
    # Well-formed but impossible: simply false.
    assert not verify_inclusion(b"a", 2, 2, path, tree.root)
    assert not verify_inclusion(b"a", 0, 0, [], tree.root)


@pytest.mark.parametrize("index", [2, 3, -1, 2**70])
def test_proof_index_out_of_range(index: int) -> None:
    tree = MerkleTree([b"a", b"b"])
    with pytest.raises(LeafIndexError, match=f"leaf index {index} out of range") as e:
        tree.proof(index)
    assert isinstance(e.value, IndexError)
    with pytest.raises(LeafIndexError):
        tree.leaf_hash(index)


def test_empty_tree_has_a_root_and_no_proofs() -> None:
    tree = MerkleTree([])
    assert tree.root == hashlib.sha256(b"").digest()
    with pytest.raises(LeafIndexError):
        tree.proof(0)


def test_bad_leaves_raise_not_bytes_like_naming_the_index() -> None:
    for build in (digest.merkle_root, MerkleTree):
        with pytest.raises(NotBytesLike, match="leaf 2 must be a bytes-like object, not 'str'"):
            build([b"a", b"b", "c"])
        with pytest.raises(NotBytesLike, match="iterable"):
            build(42)  # type: ignore[arg-type]
        with pytest.raises(NotBytesLike, match=r"leaf 0 .* not 'int'"):
            build([1])


def test_tree_leaf_hashes_and_repr() -> None:
    tree = MerkleTree([b"x", b"y"])
    assert tree.leaf_hash(1) == ref_leaf(b"y")
    assert repr(tree) == f"MerkleTree(size=2, root={tree.root.hex()})"


# -- threads


def test_shared_tree_and_concurrent_roots() -> None:
    leaves = [os.urandom(64) for _ in range(3000)]
    tree = MerkleTree(leaves)
    expected = ref_mth(leaves[:257])

    def work(t: int) -> bool:
        ok = digest.merkle_root(leaves[:257]) == expected
        for m in range(t, len(leaves), 97):
            ok &= verify_inclusion(leaves[m], m, len(leaves), tree.proof(m), tree.root)
        ok &= MerkleTree(leaves[: 100 + t]).root == digest.merkle_root(leaves[: 100 + t])
        return ok

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        assert all(pool.map(work, range(30)))


# -- the on-chain verifier (ProofRegistry, deployed on a real anvil)


@pytest.mark.slow
def test_proofs_verify_on_chain_with_proof_registry(bt: BlocktrustContracts) -> None:
    # The contract's leaves are 32-byte document hashes; our proofs must satisfy its verifier.
    for n in (1, 2, 3, 5, 8, 13):
        docs = [hashlib.sha256(f"contract doc {n}/{i}".encode()).digest() for i in range(n)]
        tree = MerkleTree(docs)
        for m in range(n):
            proof = tree.proof(m)
            assert bt.verify_inclusion(docs[m], m, n, list(proof.hashes), tree.root), (n, m)
            assert not bt.verify_inclusion(flip(docs[m]), m, n, list(proof.hashes), tree.root)


def test_inclusion_proofs_are_hashable_values() -> None:
    tree = MerkleTree([b"a", b"b", b"c"])
    assert hash(tree.proof(1)) == hash(InclusionProof.from_json(tree.proof(1).to_json()))
    assert len({tree.proof(0), tree.proof(0), tree.proof(2)}) == 2
