"""The Blocktrust contracts facade: deploys and drives IdentityNFT, ProofRegistry and FailSafe.

Built on the generic write client of ``embedded.web3_client`` (connection, key, fees, nonces):

    client = ChainClient(rpc_url, private_key, chain_id=AMOY_CHAIN_ID)
    config = deploy_contracts(client)            # deploys the three contracts and wires their roles
    config.write("contracts_config.json")         # the operators' format
    bt = BlocktrustContracts(client, load_contracts_config("contracts_config.json"))
    token_id = bt.mint_identity(wallet).token_id

Errors: ContractsConfigError and FileReadError (``blocktrust_native.errors``) for configs and
artifacts, the client's errors for chain calls.
"""

from __future__ import annotations

import enum
import errno
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3.logs import DISCARD

from blocktrust_native.errors import ConfigError, ContractsConfigError, FileReadError
from blocktrust_native.listener.contracts import (
    CONTRACT_NAMES,
    ContractEntry,
    ContractsConfig,
    load_contracts_config,
)
from validate_all_flows.embedded.web3_client import (
    ChainClient,
    Receipt,
    TransactionFailed,
    checksum_address,
    hex32,
    uint256,
)

__all__ = [
    "ARTIFACTS_DIR",
    "CONTRACT_NAMES",
    "HOT_KEY_ROLES",
    "BatchRecord",
    "BlocktrustContracts",
    "ContractEntry",
    "ContractsConfig",
    "IdentityStatus",
    "Minted",
    "ProofRecord",
    "RoleGrant",
    "deploy_artifact",
    "deploy_contracts",
    "load_artifact",
    "load_contracts_config",
    "role_grants",
]

#: Where build.mjs writes the committed artifacts (abi + bytecode).
ARTIFACTS_DIR = Path(__file__).resolve().parent / "contracts" / "artifacts"

_ZERO_ADDRESS = "0x" + "00" * 20


class IdentityStatus(enum.IntEnum):
    """IdentityNFT.Status: NONE (never minted), ACTIVE, CANCELLED."""

    NONE = 0
    ACTIVE = 1
    CANCELLED = 2


def load_artifact(name: str, artifacts_dir: Path = ARTIFACTS_DIR) -> dict[str, Any]:
    """The compiled artifact of contract ``name`` (``abi``, ``bytecode``, ``compiler``)."""
    path = Path(artifacts_dir) / f"{name}.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except OSError as e:
        raise FileReadError(
            e.errno or errno.EIO, f"cannot read artifact: {e.strerror}", str(path)
        ) from None
    for key in ("abi", "bytecode"):
        if key not in data:
            raise ContractsConfigError(f"{path}: artifact lacks {key!r}")
    return data


def deploy_artifact(
    client: ChainClient, name: str, *args: Any, artifacts_dir: Path = ARTIFACTS_DIR
) -> Receipt:
    """Deploys artifact ``name`` with constructor ``args``; the receipt names the address."""
    art = load_artifact(name, artifacts_dir)
    return client.deploy(art["abi"], art["bytecode"], *args, label=f"deploy {name}")


# -- deployment and operations -----------------------------------------------------------------


#: The roles the service's hot key needs, and no others: it never holds ADMIN_ROLE.
HOT_KEY_ROLES = (
    ("IdentityNFT", "MINTER_ROLE"),
    ("ProofRegistry", "REGISTRAR_ROLE"),
    ("FailSafe", "TRIGGER_ROLE"),
)


@dataclass(frozen=True)
class RoleGrant:
    """One ``grantRole`` the admin must send: where, which role, to whom, and its calldata (for a
    multisig to sign when the admin is not a key this tool holds)."""

    contract: str
    address: str
    role: str
    account: str
    calldata: str


def role_grants(client: ChainClient, config: ContractsConfig, operator: str) -> list[RoleGrant]:
    """The grants that wire a deployment: FAILSAFE_ROLE to the FailSafe contract and
    :data:`HOT_KEY_ROLES` to ``operator`` (the service's hot key)."""
    bt = BlocktrustContracts(client, config)
    operator = checksum_address(operator, "operator")
    wanted = [
        ("IdentityNFT", "FAILSAFE_ROLE", checksum_address(config.fail_safe.address, "FailSafe"))
    ]
    wanted += [(c, r, operator) for c, r in HOT_KEY_ROLES]
    grants = []
    for contract, role, account in wanted:
        data = bt.contract(contract).encode_abi(
            "grantRole", args=[bt.role_id(contract, role), account]
        )
        grants.append(RoleGrant(contract, config.entry(contract).address, role, account, data))
    return grants


def deploy_contracts(
    client: ChainClient,
    *,
    admin: str | None = None,
    operator: str | None = None,
    artifacts_dir: Path = ARTIFACTS_DIR,
) -> ContractsConfig:
    """Deploys IdentityNFT, ProofRegistry and FailSafe and wires their roles.

    ``admin`` (default: the client's account) holds ADMIN_ROLE of all three: a cold key or a
    multisig in production. ``operator`` (default: the client's account; the service's hot key)
    gets only :data:`HOT_KEY_ROLES`; the FailSafe contract gets IdentityNFT.FAILSAFE_ROLE. The
    grants are sent here when the client's account is ``admin``; with another admin they are left
    to it (:func:`role_grants` lists them with their calldata).
    """
    admin = checksum_address(admin or client.address, "admin")
    operator = checksum_address(operator or client.address, "operator")
    abis = {n: load_artifact(n, artifacts_dir)["abi"] for n in CONTRACT_NAMES}
    nft_r = deploy_artifact(client, "IdentityNFT", admin, artifacts_dir=artifacts_dir)
    nft = nft_r.contract_address
    reg_r = deploy_artifact(client, "ProofRegistry", nft, admin, artifacts_dir=artifacts_dir)
    fs_r = deploy_artifact(client, "FailSafe", nft, admin, artifacts_dir=artifacts_dir)
    # deploy() guarantees the addresses; the asserts narrow the types.
    assert nft_r.contract_address
    assert reg_r.contract_address
    assert fs_r.contract_address
    config = ContractsConfig(
        ContractEntry(nft_r.contract_address, abis["IdentityNFT"], nft_r.block_number),
        ContractEntry(reg_r.contract_address, abis["ProofRegistry"], reg_r.block_number),
        ContractEntry(fs_r.contract_address, abis["FailSafe"], fs_r.block_number),
        client.chain_id,
    )
    if admin == client.address:
        bt = BlocktrustContracts(client, config)
        for g in role_grants(client, config, operator):
            bt.grant_role(g.contract, g.role, g.account)
    return config


@dataclass(frozen=True)
class Minted:
    """A minted identity: its token id and the transaction."""

    token_id: int
    wallet: str
    receipt: Receipt


@dataclass(frozen=True)
class ProofRecord:
    """ProofRegistry's record of one document hash."""

    document_hash: str
    signer: str
    token_id: int
    timestamp: int
    block_number: int


@dataclass(frozen=True)
class BatchRecord:
    """An anchored batch: id, Merkle root, tree size and when it was anchored."""

    batch_id: int
    root: str
    tree_size: int
    timestamp: int
    block_number: int


class BlocktrustContracts:
    """The three contracts bound to a client; every write waits for its receipt.

    Checks at construction that each address holds code on the client's chain and that the config's
    chain id (when present) is the client's: a config for another network is a ContractsConfigError.
    """

    def __init__(self, client: ChainClient, config: ContractsConfig) -> None:
        if config.chain_id is not None and config.chain_id != client.chain_id:
            raise ContractsConfigError(
                f"contracts config is for chain id {config.chain_id}, the node serves "
                f"{client.chain_id}"
            )
        self.client = client
        self.config = config
        self._c: dict[str, Any] = {}
        for name in CONTRACT_NAMES:
            entry = config.entry(name)
            if not client.code(checksum_address(entry.address, f"{name}.address")):
                raise ContractsConfigError(
                    f"{name}: no contract code at {entry.address} on chain id {client.chain_id}"
                )
            self._c[name] = client.contract(entry.address, entry.abi)

    def __repr__(self) -> str:
        return (
            f"BlocktrustContracts({self.client!r}, IdentityNFT={self.config.identity_nft.address})"
        )

    def contract(self, name: str) -> Any:
        """The web3 contract object of ``name``."""
        self.config.entry(name)  # typed error for an unknown name
        return self._c[name]

    def events(self, receipt: Receipt, contract: str, event: str) -> list[dict[str, Any]]:
        """The decoded ``event`` logs of ``contract`` in ``receipt`` (their args as dicts)."""
        decoded = getattr(self.contract(contract).events, event)().process_receipt(
            receipt.raw, errors=DISCARD
        )
        return [dict(d["args"]) for d in decoded]

    # -- roles

    def role_id(self, contract: str, role: str) -> bytes:
        """The bytes32 id of ``role`` (e.g. ``"MINTER_ROLE"``) on ``contract``."""
        fns = self.contract(contract).functions
        if role not in {f["name"] for f in self.config.entry(contract).abi if "name" in f}:
            raise ConfigError(f"{contract} has no role {role!r}")
        return bytes(self.client.view(getattr(fns, role)(), f"{contract}.{role}"))

    def has_role(self, contract: str, role: str, account: str) -> bool:
        """True when ``account`` holds ``role`` on ``contract``."""
        fn = self.contract(contract).functions.hasRole
        call = fn(self.role_id(contract, role), checksum_address(account, "account"))
        return bool(self.client.view(call, f"{contract}.hasRole"))

    def grant_role(self, contract: str, role: str, account: str) -> Receipt:
        """Grants ``role`` on ``contract`` to ``account`` (the client must be admin)."""
        fn = self.contract(contract).functions.grantRole
        call = fn(self.role_id(contract, role), checksum_address(account, "account"))
        return self.client.transact(call, f"{contract}.grantRole({role})")

    # -- IdentityNFT

    def mint_identity(self, wallet: str) -> Minted:
        """Mints the identity token of ``wallet`` (MINTER_ROLE)."""
        wallet = checksum_address(wallet, "wallet")
        receipt = self.client.transact(
            self._c["IdentityNFT"].functions.mint(wallet), "IdentityNFT.mint"
        )
        minted = self.events(receipt, "IdentityNFT", "IdentityMinted")
        if len(minted) != 1:
            raise TransactionFailed(
                f"IdentityNFT.mint: {receipt.tx_hash} emitted no IdentityMinted"
            )
        return Minted(int(minted[0]["tokenId"]), wallet, receipt)

    def token_of(self, wallet: str) -> int:
        """The identity token id of ``wallet`` (0 when it has none)."""
        call = self._c["IdentityNFT"].functions.tokenOf(checksum_address(wallet, "wallet"))
        return int(self.client.view(call, "IdentityNFT.tokenOf"))

    def status_of(self, token_id: int) -> IdentityStatus:
        """The status of identity ``token_id``."""
        call = self._c["IdentityNFT"].functions.statusOf(uint256(token_id, "token id"))
        return IdentityStatus(int(self.client.view(call, "IdentityNFT.statusOf")))

    def is_active(self, wallet: str) -> bool:
        """True when ``wallet`` holds an active identity."""
        call = self._c["IdentityNFT"].functions.isActive(checksum_address(wallet, "wallet"))
        return bool(self.client.view(call, "IdentityNFT.isActive"))

    # -- FailSafe

    def trigger_failsafe(self, token_id: int, reason_hash: bytes | str) -> Receipt:
        """Cancels identity ``token_id`` through FailSafe for a 32-byte ``reason_hash``."""
        reason = hex32(reason_hash, "reason hash")
        call = self._c["FailSafe"].functions.trigger(uint256(token_id, "token id"), reason)
        return self.client.transact(call, "FailSafe.trigger")

    # -- ProofRegistry

    def register_proof(self, document_hash: bytes | str, signer: str | None = None) -> Receipt:
        """Records ``document_hash``; signed by ``signer`` (REGISTRAR_ROLE registers for it), or by
        the client's own account when ``signer`` is None."""
        doc = hex32(document_hash, "document hash")
        fns = self._c["ProofRegistry"].functions
        if signer is None:
            return self.client.transact(fns.registerProof(doc), "ProofRegistry.registerProof")
        call = fns.registerProofFor(checksum_address(signer, "signer"), doc)
        return self.client.transact(call, "ProofRegistry.registerProofFor")

    def get_proof(self, document_hash: bytes | str) -> ProofRecord | None:
        """The record of ``document_hash``, or None when it was never registered."""
        doc = hex32(document_hash, "document hash")
        call = self._c["ProofRegistry"].functions.getProof(doc)
        signer, token_id, ts, block = self.client.view(call, "ProofRegistry.getProof")
        if signer == _ZERO_ADDRESS:
            return None
        return ProofRecord("0x" + doc.hex(), signer, int(token_id), int(ts), int(block))

    def anchor_batch(self, root: bytes | str, tree_size: int) -> tuple[int, Receipt]:
        """Anchors a batch's RFC 6962 Merkle ``root`` over ``tree_size`` leaves; returns its id."""
        if not isinstance(tree_size, int) or not 0 < tree_size < 2**64:
            raise ConfigError(f"tree size must be a positive 64-bit integer, got {tree_size!r}")
        call = self._c["ProofRegistry"].functions.anchorBatch(hex32(root, "root"), tree_size)
        receipt = self.client.transact(call, "ProofRegistry.anchorBatch")
        anchored = self.events(receipt, "ProofRegistry", "BatchAnchored")
        if len(anchored) != 1:
            raise TransactionFailed(f"anchorBatch: {receipt.tx_hash} emitted no BatchAnchored")
        return int(anchored[0]["batchId"]), receipt

    def get_batch(self, batch_id: int) -> BatchRecord | None:
        """Anchored batch ``batch_id``, or None when unknown."""
        call = self._c["ProofRegistry"].functions.getBatch(uint256(batch_id, "batch id"))
        root, size, ts, block = self.client.view(call, "ProofRegistry.getBatch")
        if size == 0:
            return None
        return BatchRecord(batch_id, "0x" + bytes(root).hex(), int(size), int(ts), int(block))

    def verify_inclusion(
        self,
        document_hash: bytes | str,
        leaf_index: int,
        tree_size: int,
        path: Sequence[bytes | str],
        root: bytes | str,
    ) -> bool:
        """Checks an RFC 6962 inclusion proof on chain (ProofRegistry.verifyInclusion, a view)."""
        nodes = [hex32(p, f"path[{i}]") for i, p in enumerate(path)]
        call = self._c["ProofRegistry"].functions.verifyInclusion(
            hex32(document_hash, "document hash"),
            uint256(leaf_index, "leaf index"),
            uint256(tree_size, "tree size"),
            nodes,
            hex32(root, "root"),
        )
        return bool(self.client.view(call, "ProofRegistry.verifyInclusion"))

    def verify_anchored_inclusion(
        self,
        batch_id: int,
        document_hash: bytes | str,
        leaf_index: int,
        path: Sequence[bytes | str],
    ) -> bool:
        """Checks an inclusion proof against anchored batch ``batch_id`` on chain."""
        nodes = [hex32(p, f"path[{i}]") for i, p in enumerate(path)]
        call = self._c["ProofRegistry"].functions.verifyAnchoredInclusion(
            uint256(batch_id, "batch id"),
            hex32(document_hash, "document hash"),
            uint256(leaf_index, "leaf index"),
            nodes,
        )
        return bool(self.client.view(call, "ProofRegistry.verifyAnchoredInclusion"))
