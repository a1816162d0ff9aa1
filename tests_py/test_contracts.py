"""The Solidity contracts: artifacts match a fresh solc-js compile; behaviour on a real anvil."""

# Fixtures imported from fix_anvil are parameters of the tests:
# ruff: noqa: F811

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fix_anvil import anvil, as_account, bt, deployed, deployer  # noqa: F401

from blocktrust_native.errors import ConfigError
from validate_all_flows.embedded.anvil import Anvil
from validate_all_flows.embedded.chain import BlocktrustContracts, IdentityStatus
from validate_all_flows.embedded.node_deps import PACKAGE_DIR, anvil_path, ensure_node_tools
from validate_all_flows.embedded.web3_client import ChainClient, ContractReverted

ZERO_ADDRESS = "0x" + "00" * 20

ARTIFACTS = PACKAGE_DIR / "artifacts"
NAMES = ("IdentityNFT", "ProofRegistry", "FailSafe")


@pytest.mark.slow
def test_committed_artifacts_match_a_fresh_compile(tmp_path: Path) -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not installed (scripts/setup installs them); cannot recompile")
    ensure_node_tools(quiet=True)
    proc = subprocess.run(
        ["node", str(PACKAGE_DIR / "build.mjs"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for name in NAMES:
        fresh = json.loads((tmp_path / f"{name}.json").read_text())
        committed = json.loads((ARTIFACTS / f"{name}.json").read_text())
        assert fresh["compiler"] == committed["compiler"], name
        assert fresh["abi"] == committed["abi"], f"{name}: ABI differs; run node build.mjs"
        assert fresh["bytecode"] == committed["bytecode"], f"{name}: bytecode differs"
        assert fresh["deployedBytecode"] == committed["deployedBytecode"], name
        assert (tmp_path / f"{name}.json").read_text() == (ARTIFACTS / f"{name}.json").read_text()


def test_artifacts_name_the_pinned_compiler() -> None:
    pinned = json.loads((PACKAGE_DIR / "package.json").read_text())["devDependencies"]["solc"]
    for name in NAMES:
        art = json.loads((ARTIFACTS / f"{name}.json").read_text())
        assert art["contractName"] == name
        assert art["compiler"]["version"].startswith(pinned + "+commit."), name
        assert art["bytecode"].startswith("0x")
        assert len(art["bytecode"]) > 1000
        assert any(e.get("type") == "constructor" for e in art["abi"])


@pytest.mark.slow
def test_build_check_mode_detects_a_stale_artifact(tmp_path: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("node not installed (scripts/setup installs it)")
    ensure_node_tools(quiet=True)
    # Copy the package dir (without node_modules) so the committed artifacts are never touched.
    work = tmp_path / "contracts"
    shutil.copytree(PACKAGE_DIR, work, ignore=shutil.ignore_patterns("node_modules"))
    (work / "node_modules").symlink_to(PACKAGE_DIR / "node_modules")
    ok = subprocess.run(
        ["node", str(work / "build.mjs"), "--check"], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    art = work / "artifacts" / "FailSafe.json"
    art.write_text(art.read_text().replace('"bytecode": "0x', '"bytecode": "0x00', 1))
    bad = subprocess.run(
        ["node", str(work / "build.mjs"), "--check"], capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert "FailSafe" in bad.stderr


# -- behaviour on a real anvil ---------------------------------------------------------------------

ZERO32 = b"\0" * 32


def _reason(excinfo: pytest.ExceptionInfo[ContractReverted]) -> str:
    return excinfo.value.reason


def _wallet() -> str:
    return str(Account.create().address)


def _doc(tag: str) -> bytes:
    return hashlib.sha256(tag.encode()).digest()


@pytest.mark.slow
def test_deploy_wires_the_roles(bt: BlocktrustContracts, deployer: ChainClient) -> None:
    fs = bt.config.fail_safe.address
    me = deployer.address
    assert bt.has_role("IdentityNFT", "FAILSAFE_ROLE", fs)
    assert not bt.has_role("IdentityNFT", "FAILSAFE_ROLE", me)
    assert bt.has_role("IdentityNFT", "MINTER_ROLE", me)
    assert bt.has_role("ProofRegistry", "REGISTRAR_ROLE", me)
    assert bt.has_role("FailSafe", "TRIGGER_ROLE", me)
    for name in ("IdentityNFT", "ProofRegistry", "FailSafe"):
        assert bt.has_role(name, "ADMIN_ROLE", me)
    registry = bt.contract("ProofRegistry").functions
    assert registry.identity().call() == bt.config.identity_nft.address
    assert bt.contract("FailSafe").functions.identity().call() == bt.config.identity_nft.address


@pytest.mark.slow
def test_mint_emits_events_and_reads_back(bt: BlocktrustContracts) -> None:
    wallet = _wallet()
    assert bt.token_of(wallet) == 0
    minted = bt.mint_identity(wallet)
    assert minted.token_id > 0
    assert bt.token_of(wallet) == minted.token_id
    assert bt.status_of(minted.token_id) is IdentityStatus.ACTIVE
    assert bt.is_active(wallet)
    nft = bt.contract("IdentityNFT").functions
    assert nft.ownerOf(minted.token_id).call() == wallet
    assert nft.balanceOf(wallet).call() == 1
    assert nft.locked(minted.token_id).call() is True
    transfer = bt.events(minted.receipt, "IdentityNFT", "Transfer")
    assert transfer == [{"from": ZERO_ADDRESS, "to": wallet, "tokenId": minted.token_id}]
    assert bt.events(minted.receipt, "IdentityNFT", "Locked") == [{"tokenId": minted.token_id}]
    assert bt.status_of(10**9) is IdentityStatus.NONE


@pytest.mark.slow
def test_one_identity_per_wallet(bt: BlocktrustContracts) -> None:
    wallet = _wallet()
    bt.mint_identity(wallet)
    with pytest.raises(ContractReverted) as e:
        bt.mint_identity(wallet)
    assert _reason(e) == "IdentityNFT: wallet already has an identity"


@pytest.mark.slow
def test_unauthorised_calls_revert_with_the_documented_reason(
    bt: BlocktrustContracts, as_account: Any
) -> None:
    stranger = as_account(7)
    wallet = _wallet()
    token = bt.mint_identity(wallet).token_id
    cases = [
        (lambda: stranger.mint_identity(_wallet()), "IdentityNFT: caller is not a minter"),
        (lambda: stranger.trigger_failsafe(token, _doc("r")), "FailSafe: caller is not a trigger"),
        (
            lambda: stranger.register_proof(_doc("x"), signer=wallet),
            "ProofRegistry: caller is not a registrar",
        ),
        (
            lambda: stranger.anchor_batch(_doc("root"), 3),
            "ProofRegistry: caller is not a registrar",
        ),
        (
            lambda: stranger.grant_role("IdentityNFT", "MINTER_ROLE", stranger.client.address),
            "Roles: caller is not an admin",
        ),
    ]
    for action, reason in cases:
        with pytest.raises(ContractReverted) as e:
            action()
        assert _reason(e) == reason
    # Not even the admin may cancel directly: only the FailSafe contract holds FAILSAFE_ROLE.
    cancel = bt.contract("IdentityNFT").functions.cancel(token, _doc("r"))
    with pytest.raises(ContractReverted) as e:
        bt.client.transact(cancel, "IdentityNFT.cancel")
    assert _reason(e) == "IdentityNFT: caller is not the fail-safe"
    assert bt.status_of(token) is IdentityStatus.ACTIVE
    assert not bt.has_role("IdentityNFT", "MINTER_ROLE", stranger.client.address)


@pytest.mark.slow
def test_identity_is_not_transferable(bt: BlocktrustContracts, as_account: Any) -> None:
    holder = as_account(1)
    me, other = holder.client.address, _wallet()
    token = bt.mint_identity(me).token_id
    nft = holder.contract("IdentityNFT")
    calls = [
        nft.functions.transferFrom(me, other, token),
        nft.get_function_by_signature("safeTransferFrom(address,address,uint256)")(
            me, other, token
        ),
        nft.get_function_by_signature("safeTransferFrom(address,address,uint256,bytes)")(
            me, other, token, b""
        ),
        nft.functions.approve(other, token),
        nft.functions.setApprovalForAll(other, True),
    ]
    for call in calls:
        with pytest.raises(ContractReverted) as e:
            holder.client.transact(call, "transfer attempt")
        assert _reason(e) == "IdentityNFT: non-transferable"
    assert nft.functions.ownerOf(token).call() == me
    assert nft.functions.supportsInterface(bytes.fromhex("b45a3c0e")).call()  # ERC-5192
    assert nft.functions.supportsInterface(bytes.fromhex("80ac58cd")).call()  # ERC-721
    assert not nft.functions.supportsInterface(bytes.fromhex("deadbeef")).call()


@pytest.mark.slow
def test_proofs_need_an_active_identity_and_failsafe_cancels_it(
    bt: BlocktrustContracts, as_account: Any
) -> None:
    signer = as_account(2)
    wallet = signer.client.address
    doc = _doc("contract.pdf")
    with pytest.raises(ContractReverted) as e:
        signer.register_proof(doc)
    assert _reason(e) == "ProofRegistry: signer has no identity"

    token = bt.mint_identity(wallet).token_id
    receipt = signer.register_proof(doc)  # the signer's own transaction
    assert bt.events(receipt, "ProofRegistry", "ProofRegistered") == [
        {"documentHash": doc, "signer": wallet, "tokenId": token}
    ]
    record = bt.get_proof(doc)
    assert record is not None
    assert (record.signer, record.token_id, record.block_number) == (
        wallet,
        token,
        receipt.block_number,
    )
    assert bt.get_proof(_doc("never registered")) is None
    with pytest.raises(ContractReverted) as e:
        bt.register_proof(doc, signer=wallet)
    assert _reason(e) == "ProofRegistry: document already registered"
    with pytest.raises(ContractReverted) as e:
        bt.register_proof(ZERO32, signer=wallet)
    assert _reason(e) == "ProofRegistry: empty document hash"

    with pytest.raises(ContractReverted) as e:
        bt.trigger_failsafe(token, ZERO32)
    assert _reason(e) == "FailSafe: empty reason"
    reason = _doc("duress at login")
    cancelled = bt.trigger_failsafe(token, reason)
    assert bt.events(cancelled, "FailSafe", "FailSafeTriggered") == [
        {"tokenId": token, "wallet": wallet, "reasonHash": reason, "triggeredBy": bt.client.address}
    ]
    assert bt.events(cancelled, "IdentityNFT", "IdentityCancelled") == [
        {"tokenId": token, "wallet": wallet, "reasonHash": reason}
    ]
    assert bt.status_of(token) is IdentityStatus.CANCELLED
    assert not bt.is_active(wallet)
    trig = bt.contract("FailSafe").functions.triggerOf(token).call()
    assert trig[0] == reason
    assert trig[1] == bt.client.address

    for action in (
        lambda: signer.register_proof(_doc("after")),
        lambda: bt.register_proof(_doc("after 2"), signer=wallet),
    ):
        with pytest.raises(ContractReverted) as e:
            action()
        assert _reason(e) == "ProofRegistry: identity cancelled"
    with pytest.raises(ContractReverted) as e:
        bt.trigger_failsafe(token, reason)
    assert _reason(e) == "IdentityNFT: identity not active"
    with pytest.raises(ContractReverted) as e:
        bt.mint_identity(wallet)
    assert _reason(e) == "IdentityNFT: wallet already has an identity"
    assert bt.get_proof(doc) == record  # earlier proofs stay on record


@pytest.mark.slow
def test_failsafe_by_wallet(bt: BlocktrustContracts) -> None:
    wallet = _wallet()
    token = bt.mint_identity(wallet).token_id
    fs = bt.contract("FailSafe").functions
    bt.client.transact(fs.triggerForWallet(wallet, _doc("r")), "FailSafe.triggerForWallet")
    assert bt.status_of(token) is IdentityStatus.CANCELLED
    with pytest.raises(ContractReverted) as e:
        bt.client.transact(fs.triggerForWallet(_wallet(), _doc("r")), "triggerForWallet")
    assert _reason(e) == "FailSafe: wallet has no identity"


# -- RFC 6962 Merkle trees, written here from the RFC so the contract is checked independently


def _leaf(d: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + d).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1 Merkle Tree Hash."""
    if len(leaves) == 1:
        return _leaf(leaves[0])
    k = _split(len(leaves))
    return _node(mth(leaves[:k]), mth(leaves[k:]))


def audit_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 section 2.1.1 PATH(m, D[n])."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return [*audit_path(m, leaves[:k]), mth(leaves[k:])]
    return [*audit_path(m - k, leaves[k:]), mth(leaves[:k])]


def verify_rfc9162(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2, verifying an inclusion proof."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, _leaf(leaf)
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def test_python_reference_tree_matches_rfc_shape() -> None:
    d = [bytes([i]) * 32 for i in range(3)]
    assert mth(d) == _node(_node(_leaf(d[0]), _leaf(d[1])), _leaf(d[2]))
    assert audit_path(2, d) == [_node(_leaf(d[0]), _leaf(d[1]))]
    assert audit_path(0, d) == [_leaf(d[1]), _leaf(d[2])]
    for n in range(1, 12):
        leaves = [bytes([i]) * 32 for i in range(n)]
        for m in range(n):
            assert verify_rfc9162(leaves[m], m, n, audit_path(m, leaves), mth(leaves))
            assert not verify_rfc9162(leaves[m], m, n, audit_path(m, leaves), _flip(mth(leaves)))


def _flip(b: bytes) -> bytes:
    return bytes([b[0] ^ 1]) + b[1:]


def _verify_many(anvil: Anvil, bt: BlocktrustContracts, cases: list[tuple[Any, ...]]) -> list[bool]:
    """ProofRegistry.verifyInclusion for many (leaf, index, size, path, root) in one JSON-RPC batch
    (web3's per-call overhead would make the thousands of cases below slow)."""
    registry = bt.contract("ProofRegistry")
    batch = [
        {
            "jsonrpc": "2.0",
            "id": i,
            "method": "eth_call",
            "params": [
                {"to": registry.address, "data": registry.encode_abi("verifyInclusion", case)},
                "latest",
            ],
        }
        for i, case in enumerate(cases)
    ]
    req = urllib.request.Request(
        anvil.rpc_url, json.dumps(batch).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        replies = sorted(json.loads(resp.read()), key=lambda r: r["id"])
    assert len(replies) == len(cases)
    return [int(r["result"], 16) == 1 for r in replies]


@pytest.mark.slow
def test_onchain_inclusion_agrees_with_rfc6962_for_every_leaf(
    bt: BlocktrustContracts, anvil: Anvil
) -> None:
    registry = bt.contract("ProofRegistry").functions
    fitting = 0
    for n in range(1, 21):
        leaves = [_doc(f"doc {n}/{i}") for i in range(n)]
        root = mth(leaves)
        valid: list[tuple[Any, ...]] = []
        must_fail: list[tuple[Any, ...]] = []
        shape: list[tuple[Any, ...]] = []
        for m in range(n):
            path = audit_path(m, leaves)
            # Through the client, as an application would call it.
            assert bt.verify_inclusion(leaves[m], m, n, path, root), (n, m)
            ok, computed = registry.rootFromInclusionProof(leaves[m], m, n, path).call()
            assert ok
            assert computed == root
            valid.append((leaves[m], m, n, path, root))
            # Changes of hashed content must be rejected.
            must_fail += [
                (_flip(leaves[m]), m, n, path, root),  # another document
                (leaves[m], n, n, path, root),  # index out of range
                (leaves[m], m, n, [*path, root], root),  # an extra node
                (leaves[m], m, n, path, _flip(root)),  # another root
                *([(leaves[m], m, n, path[:-1], root)] if path else []),  # a missing node
                *(
                    (leaves[m], m, n, [*path[:i], _flip(p), *path[i + 1 :]], root)
                    for i, p in enumerate(path)
                ),
            ]
            # Another position or size: the proof fits only where the shapes coincide (the root,
            # not the size, is the commitment); the contract must agree with RFC 9162 exactly.
            shape += [
                (leaves[m], om, on, path, root)
                for om, on in ((m ^ 1, n), (m, n + 1), (m, n - 1), (m + 1, n), (m, 2 * n))
                if on >= 1
            ]
        assert all(_verify_many(anvil, bt, valid)), n  # the batch path itself can say yes
        assert not any(_verify_many(anvil, bt, must_fail)), n
        expected = [verify_rfc9162(*case) for case in shape]
        assert _verify_many(anvil, bt, shape) == expected, n
        fitting += sum(expected)
    # Some other shapes do fit (e.g. the last leaf of 3 proves as the last of 4): without them
    # the comparison would prove little.
    assert fitting > 20


@pytest.mark.slow
def test_anchored_batch_verifies_its_leaves(bt: BlocktrustContracts, as_account: Any) -> None:
    leaves = [_doc(f"batch doc {i}") for i in range(7)]
    root = mth(leaves)
    batch_id, receipt = bt.anchor_batch(root, len(leaves))
    assert bt.events(receipt, "ProofRegistry", "BatchAnchored") == [
        {"batchId": batch_id, "root": root, "treeSize": 7}
    ]
    batch = bt.get_batch(batch_id)
    assert batch is not None
    assert (batch.root, batch.tree_size, batch.block_number) == (
        "0x" + root.hex(),
        7,
        receipt.block_number,
    )
    assert bt.contract("ProofRegistry").functions.batchOfRoot(root).call() == batch_id
    for m, leaf in enumerate(leaves):
        path = audit_path(m, leaves)
        assert bt.verify_anchored_inclusion(batch_id, leaf, m, path)
        # Anyone can verify (a view): a stranger's client gets the same answer.
        assert as_account(8).verify_anchored_inclusion(batch_id, leaf, m, path)
        assert not bt.verify_anchored_inclusion(batch_id, _flip(leaf), m, path)
        assert not bt.verify_anchored_inclusion(batch_id + 1, leaf, m, path)
    assert bt.get_batch(batch_id + 1) is None
    for args, reason in [
        ((root, 7), "ProofRegistry: root already anchored"),
        ((ZERO32, 7), "ProofRegistry: empty root"),
    ]:
        with pytest.raises(ContractReverted) as e:
            bt.anchor_batch(*args)
        assert _reason(e) == reason
    with pytest.raises(ConfigError):
        bt.anchor_batch(_doc("r"), 0)


@pytest.mark.slow
def test_node_tools_install_is_idempotent() -> None:
    if shutil.which("npm") is None:
        pytest.skip("npm not installed (scripts/setup installs it)")
    ensure_node_tools(quiet=True)
    assert ensure_node_tools(quiet=True) is False  # up to date: npm is not run again
    assert anvil_path().is_file()
    out = subprocess.run(
        [str(anvil_path()), "--version"], capture_output=True, text=True, check=True
    ).stdout
    pinned = json.loads((PACKAGE_DIR / "package.json").read_text())["devDependencies"]
    assert pinned["@foundry-rs/anvil-linux-amd64"] in out


@pytest.mark.slow
def test_admin_grants_and_revokes_roles_with_events(
    bt: BlocktrustContracts, as_account: Any
) -> None:
    helper = as_account(6)
    who = helper.client.address
    receipt = bt.grant_role("IdentityNFT", "MINTER_ROLE", who)
    minter_role = bt.role_id("IdentityNFT", "MINTER_ROLE")
    assert bt.events(receipt, "IdentityNFT", "RoleGranted") == [
        {"role": minter_role, "account": who, "sender": bt.client.address}
    ]
    helper.mint_identity(_wallet())  # now allowed
    revoke = bt.contract("IdentityNFT").functions.revokeRole(minter_role, who)
    receipt = bt.client.transact(revoke, "IdentityNFT.revokeRole")
    assert bt.events(receipt, "IdentityNFT", "RoleRevoked") == [
        {"role": minter_role, "account": who, "sender": bt.client.address}
    ]
    with pytest.raises(ContractReverted) as e:
        helper.mint_identity(_wallet())
    assert _reason(e) == "IdentityNFT: caller is not a minter"
