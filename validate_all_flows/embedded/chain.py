"""Chain client of the embedded stack: deploys and drives IdentityNFT, ProofRegistry and FailSafe.

Built on web3.py / eth-account. Transactions are signed locally with the configured private key,
which never reaches a log, a ``repr`` or an error message. RPC URL and chain id are configurable:

- the embedded stack and the tests use anvil (chain id 31337, see ``embedded.anvil``);
- Polygon Amoy (chain id 80002, :data:`AMOY_CHAIN_ID`) is the public test network (Mumbai is gone);
- Polygon PoS mainnet is chain id 137.

    client = ChainClient(rpc_url, private_key, chain_id=AMOY_CHAIN_ID)
    config = deploy_contracts(client)            # deploys the three contracts and wires their roles
    config.write("contracts_config.json")         # the operators' format
    bt = BlocktrustContracts(client, load_contracts_config("contracts_config.json"))
    token_id = bt.mint_identity(wallet).token_id

Errors (``blocktrust_native.errors``): ConfigError (bad key, URL or chain id), ChainConnectionError,
ChainIdMismatch, ContractReverted (``.reason`` is the documented revert reason), TransactionFailed,
ContractsConfigError, FileReadError.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import json
import logging
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import (
    ContractLogicError,
    TimeExhausted,
    Web3Exception,
    Web3RPCError,
    Web3TypeError,
    Web3ValidationError,
    Web3ValueError,
)
from web3.logs import DISCARD

from blocktrust_native.errors import (
    ChainConnectionError,
    ChainError,
    ChainIdMismatch,
    ConfigError,
    ContractReverted,
    ContractsConfigError,
    FileReadError,
    TransactionFailed,
)
from blocktrust_native.listener.contracts import (
    CONTRACT_NAMES,
    ContractEntry,
    ContractsConfig,
    load_contracts_config,
)
from validate_all_flows.redact import redact_url  # the tool's one redaction (re-exported)

__all__ = [
    "AMOY_CHAIN_ID",
    "ANVIL_CHAIN_ID",
    "ARTIFACTS_DIR",
    "CONTRACT_NAMES",
    "POLYGON_CHAIN_ID",
    "BatchRecord",
    "BlocktrustContracts",
    "ChainClient",
    "ChainSettings",
    "ContractEntry",
    "ContractsConfig",
    "IdentityStatus",
    "Minted",
    "ProofRecord",
    "Receipt",
    "deploy_contracts",
    "load_artifact",
    "load_contracts_config",
    "redact_url",
]

log = logging.getLogger(__name__)

#: Polygon Amoy, the public Polygon test network.
AMOY_CHAIN_ID = 80002
#: Polygon PoS mainnet.
POLYGON_CHAIN_ID = 137
#: anvil's default chain id (the embedded stack and the tests).
ANVIL_CHAIN_ID = 31337
#: Where build.mjs writes the committed artifacts (abi + bytecode).
ARTIFACTS_DIR = Path(__file__).resolve().parent / "contracts" / "artifacts"

_KEY_RE = re.compile(r"(0x)?[0-9a-fA-F]{64}")
_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")
_ZERO_ADDRESS = "0x" + "00" * 20


class IdentityStatus(enum.IntEnum):
    """IdentityNFT.Status: NONE (never minted), ACTIVE, CANCELLED."""

    NONE = 0
    ACTIVE = 1
    CANCELLED = 2


class _RedactUrlSecrets(logging.Filter):
    """Rewrites log records of web3 and urllib3, which log request URLs at DEBUG, so the secret
    parts of our RPC URLs (API keys in the path or query, credentials) never reach a handler."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, url: str) -> None:
        parts = urlsplit(url)
        found = {parts.password or "", parts.username or "", parts.query}
        if parts.path.strip("/"):
            found.add(parts.path)
        with self._lock:
            self.secrets |= {x for x in found if len(x) >= 3}

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            text = record.getMessage()
            redacted = text
            for secret in sorted(self.secrets, key=len, reverse=True):
                redacted = redacted.replace(secret, "…")
            if redacted != text:
                record.msg, record.args = redacted, None
        return True


_URL_FILTER = _RedactUrlSecrets()
# The loggers that print request URLs (web3 7-8, urllib3 2).
for _name in (
    "web3.providers.HTTPProvider",
    "web3._utils.http_session_manager.HTTPSessionManager",
    "urllib3.connectionpool",
):
    logging.getLogger(_name).addFilter(_URL_FILTER)


def _hex32(value: bytes | str, what: str) -> bytes:
    """A 32-byte value from bytes or (0x-)hex; ConfigError naming ``what`` otherwise."""
    if isinstance(value, str):
        text = value[2:] if value.startswith(("0x", "0X")) else value
        try:
            value = bytes.fromhex(text)
        except ValueError:
            raise ConfigError(f"{what} must be 32 bytes of hex, got {value[:80]!r}") from None
    if not isinstance(value, bytes | bytearray):
        raise ConfigError(f"{what} must be 32 bytes or hex text, got {type(value).__name__}")
    if len(value) != 32:
        raise ConfigError(f"{what} must be 32 bytes, got {len(value)}")
    return bytes(value)


def _checksum(address: str, what: str) -> str:
    if not isinstance(address, str) or not _ADDRESS_RE.fullmatch(address):
        raise ConfigError(f"{what} must be a 0x-prefixed 20-byte hex address, got {address!r}")
    return Web3.to_checksum_address(address)


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


# -- settings and client -----------------------------------------------------------------------


class _Secret:
    """Holds the signing account; its repr never shows the key."""

    __slots__ = ("account",)

    def __init__(self, private_key: str) -> None:
        if not isinstance(private_key, str) or not _KEY_RE.fullmatch(private_key.strip()):
            raise ConfigError(
                "private key must be 32 bytes of hex (64 hex digits, optional 0x); value not shown"
            )
        try:
            self.account: LocalAccount = Account.from_key(private_key.strip())
        except (ValueError, Web3Exception):
            raise ConfigError("private key is not a valid secp256k1 key; value not shown") from None

    def __repr__(self) -> str:
        return "<redacted private key>"

    def __reduce__(self) -> Any:
        raise TypeError("the private key holder cannot be pickled")


@dataclass(frozen=True)
class ChainSettings:
    """Where and how to reach the chain; ``private_key`` is never shown by repr.

    From the environment (:meth:`from_env`): ``RPC_URL`` (required), ``CHAIN_ID`` (required;
    80002 for Polygon Amoy, 31337 for anvil), ``CHAIN_PRIVATE_KEY`` (required), ``CHAIN_TIMEOUT``
    (seconds, default 60), ``CONTRACTS_CONFIG`` (path, default ``contracts_config.json``).
    """

    rpc_url: str
    chain_id: int
    private_key: str = field(repr=False)
    timeout: float = 60.0
    contracts_config: str = "contracts_config.json"

    def __repr__(self) -> str:
        return (
            f"ChainSettings(rpc_url={redact_url(self.rpc_url)!r}, chain_id={self.chain_id}, "
            f"private_key=<redacted>, timeout={self.timeout}, "
            f"contracts_config={self.contracts_config!r})"
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ChainSettings:
        """Reads the settings; one ConfigError lists every missing or bad variable.
        ``POLYGON_RPC_URL`` and ``DEPLOYER_PRIVATE_KEY`` (the names of Blocktrust v1.4's deploy
        documents) are accepted as aliases of ``RPC_URL`` and ``CHAIN_PRIVATE_KEY``."""
        from validate_all_flows.envcheck import EnvSchema

        env, _ = EnvSchema.builtin().resolve_aliases(os.environ if env is None else env)
        problems = [f"{v} is not set" for v in ("RPC_URL", "CHAIN_ID", "CHAIN_PRIVATE_KEY")]
        problems = [p for p in problems if not env.get(p.split()[0])]
        chain_id, timeout = 0, 60.0
        if env.get("CHAIN_ID"):
            try:
                chain_id = int(env["CHAIN_ID"])
                if chain_id <= 0:
                    raise ValueError
            except ValueError:
                problems.append(f"CHAIN_ID must be a positive integer, got {env['CHAIN_ID']!r}")
        if env.get("CHAIN_TIMEOUT"):
            try:
                timeout = float(env["CHAIN_TIMEOUT"])
            except ValueError:
                problems.append(f"CHAIN_TIMEOUT must be seconds, got {env['CHAIN_TIMEOUT']!r}")
        key = env.get("CHAIN_PRIVATE_KEY", "")
        if key and not _KEY_RE.fullmatch(key.strip()):
            problems.append("CHAIN_PRIVATE_KEY must be 64 hex digits (value not shown)")
        if problems:
            raise ConfigError("chain settings: " + "; ".join(problems))
        return cls(
            rpc_url=env["RPC_URL"],
            chain_id=chain_id,
            private_key=key,
            timeout=timeout,
            contracts_config=env.get("CONTRACTS_CONFIG", "contracts_config.json"),
        )


@dataclass(frozen=True)
class Receipt:
    """A mined transaction: hash, block, gas used and the raw web3 receipt (for event decoding)."""

    tx_hash: str
    block_number: int
    block_hash: str
    gas_used: int
    contract_address: str | None = None
    raw: Any = field(default=None, repr=False, compare=False)


def _revert_reason(e: ContractLogicError) -> str:
    text = str(e.message or e)
    return text.removeprefix("execution reverted: ").removeprefix("execution reverted")


@contextlib.contextmanager
def _translated(label: str, where: str, refused: type[ChainError] = ChainError) -> Iterator[None]:
    """Turns web3 / transport exceptions into ours; ``refused`` is raised when the node answers
    with a JSON-RPC error. Messages name the step and the redacted URL, never the key."""
    try:
        yield
    except TimeExhausted:
        raise  # the caller reports it with the transaction hash
    except ContractLogicError as e:
        raise ContractReverted(label, _revert_reason(e)) from None
    except Web3RPCError as e:
        raise refused(f"{label}: the node at {where} refused: {e.message or e}") from None
    except (Web3ValidationError, Web3TypeError, Web3ValueError) as e:
        raise ConfigError(f"{label}: invalid arguments: {e}") from None
    except (OSError, Web3Exception) as e:
        raise ChainConnectionError(f"{label}: {where} failed: {type(e).__name__}") from None


def _uint(value: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**256:
        raise ConfigError(f"{what} must be a non-negative integer, got {value!r}")
    return value


class ChainClient:
    """A JSON-RPC connection plus the signing account; thread-safe (sends are serialised).

    ``chain_id``: when given, the node's chain id must match (ChainIdMismatch otherwise); when None
    the node's is used. ``timeout``: seconds for each RPC call and for waiting for a receipt.
    """

    def __init__(
        self,
        rpc_url: str,
        private_key: str,
        *,
        chain_id: int | None = None,
        timeout: float = 60.0,
    ) -> None:
        parts = urlsplit(rpc_url) if isinstance(rpc_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            shown = redact_url(rpc_url) if isinstance(rpc_url, str) else repr(rpc_url)
            raise ConfigError(f"RPC URL must be http(s)://host[:port][/path], got {shown!r}")
        if timeout <= 0:
            raise ConfigError(f"chain timeout must be positive, got {timeout}")
        self._secret = _Secret(private_key)
        _URL_FILTER.add(rpc_url)
        self.rpc_url_redacted = redact_url(rpc_url)
        self.timeout = timeout
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
        self._send_lock = threading.Lock()
        try:
            served = int(self.w3.eth.chain_id)
        except (OSError, Web3Exception) as e:
            raise ChainConnectionError(
                f"cannot reach the JSON-RPC endpoint {self.rpc_url_redacted}: {type(e).__name__}"
            ) from None
        if chain_id is not None and served != chain_id:
            raise ChainIdMismatch(
                f"{self.rpc_url_redacted} serves chain id {served}, configured {chain_id}"
            )
        self.chain_id = served

    @classmethod
    def from_settings(cls, settings: ChainSettings) -> ChainClient:
        """A client for :class:`ChainSettings`."""
        return cls(
            settings.rpc_url,
            settings.private_key,
            chain_id=settings.chain_id,
            timeout=settings.timeout,
        )

    def __repr__(self) -> str:
        return (
            f"ChainClient(rpc_url={self.rpc_url_redacted!r}, chain_id={self.chain_id}, "
            f"address={self.address})"
        )

    @property
    def address(self) -> str:
        """Checksummed address of the signing account."""
        return str(self._secret.account.address)

    def balance(self, address: str | None = None) -> int:
        """Balance in wei of ``address`` (default: the signing account)."""
        return int(self.w3.eth.get_balance(_checksum(address or self.address, "address")))

    def block_number(self) -> int:
        """The latest block number."""
        return int(self.w3.eth.block_number)

    def contract(self, address: str, abi: list[dict[str, Any]]) -> Any:
        """A web3 contract object for ``address`` / ``abi``."""
        return self.w3.eth.contract(address=_checksum(address, "contract address"), abi=abi)

    def view(self, call: Any, label: str) -> Any:
        """Runs a read-only contract ``call`` (eth_call) with our error types."""
        with _translated(label, self.rpc_url_redacted):
            return call.call()

    def _fees(self) -> dict[str, int]:
        latest = self.w3.eth.get_block("latest")
        base = latest.get("baseFeePerGas")
        if base is None:  # pre-London chain: legacy pricing
            return {"gasPrice": int(self.w3.eth.gas_price)}
        tip = int(self.w3.eth.max_priority_fee)
        return {"maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * int(base) + tip}

    def transact(self, call: Any, label: str) -> Receipt:
        """Estimates, signs, sends ``call`` (a web3 contract function or constructor call) and waits
        for its receipt; ContractReverted with the reason if it would revert."""
        sender = self.address
        where = self.rpc_url_redacted
        with self._send_lock, _translated(label, where, TransactionFailed):
            gas = int(call.estimate_gas({"from": sender}))
            tx = call.build_transaction(
                {
                    "from": sender,
                    "nonce": self.w3.eth.get_transaction_count(sender, "pending"),
                    "gas": gas + gas // 5 + 10_000,  # head-room: estimates can be tight
                    "chainId": self.chain_id,
                    **self._fees(),
                }
            )
            signed = self._secret.account.sign_transaction(tx)
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        hex_hash = "0x" + bytes(tx_hash).hex()
        log.debug("sent %s from %s as %s", label, sender, hex_hash)
        try:
            with _translated(label, where, TransactionFailed):
                raw = self.w3.eth.wait_for_transaction_receipt(
                    tx_hash, timeout=self.timeout, poll_latency=0.05
                )
        except TimeExhausted:
            raise TransactionFailed(
                f"{label}: transaction {hex_hash} not mined within {self.timeout}s"
            ) from None
        receipt = Receipt(
            tx_hash=hex_hash,
            block_number=int(raw["blockNumber"]),
            block_hash="0x" + bytes(raw["blockHash"]).hex(),
            gas_used=int(raw["gasUsed"]),
            contract_address=raw.get("contractAddress"),
            raw=raw,
        )
        if raw["status"] != 1:
            raise TransactionFailed(
                f"{label}: transaction {hex_hash} failed (status 0) in block {receipt.block_number}"
            )
        log.info("%s mined in block %d (%s)", label, receipt.block_number, hex_hash)
        return receipt

    def deploy(self, name: str, *args: Any, artifacts_dir: Path = ARTIFACTS_DIR) -> Receipt:
        """Deploys artifact ``name`` with constructor ``args``; the receipt names the address."""
        art = load_artifact(name, artifacts_dir)
        factory = self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        receipt = self.transact(factory.constructor(*args), f"deploy {name}")
        if not receipt.contract_address:
            raise TransactionFailed(f"deploy {name}: receipt {receipt.tx_hash} has no address")
        return receipt


# -- deployment and operations -----------------------------------------------------------------


def deploy_contracts(
    client: ChainClient,
    *,
    admin: str | None = None,
    operator: str | None = None,
    artifacts_dir: Path = ARTIFACTS_DIR,
) -> ContractsConfig:
    """Deploys IdentityNFT, ProofRegistry and FailSafe and wires their roles.

    ``admin`` (default: the client's account) holds ADMIN_ROLE of all three. ``operator`` (default:
    the client's account; the backend) gets IdentityNFT.MINTER_ROLE, ProofRegistry.REGISTRAR_ROLE
    and FailSafe.TRIGGER_ROLE. The FailSafe contract gets IdentityNFT.FAILSAFE_ROLE. Role grants
    need the client's account to be ``admin``; with another admin they are left to that admin.
    """
    admin = _checksum(admin or client.address, "admin")
    operator = _checksum(operator or client.address, "operator")
    abis = {n: load_artifact(n, artifacts_dir)["abi"] for n in CONTRACT_NAMES}
    nft_r = client.deploy("IdentityNFT", admin, artifacts_dir=artifacts_dir)
    reg_r = client.deploy(
        "ProofRegistry", nft_r.contract_address, admin, artifacts_dir=artifacts_dir
    )
    fs_r = client.deploy("FailSafe", nft_r.contract_address, admin, artifacts_dir=artifacts_dir)
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
        bt.grant_role("IdentityNFT", "FAILSAFE_ROLE", fs_r.contract_address)
        bt.grant_role("IdentityNFT", "MINTER_ROLE", operator)
        bt.grant_role("ProofRegistry", "REGISTRAR_ROLE", operator)
        bt.grant_role("FailSafe", "TRIGGER_ROLE", operator)
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
            if len(client.w3.eth.get_code(_checksum(entry.address, f"{name}.address"))) == 0:
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
        call = fn(self.role_id(contract, role), _checksum(account, "account"))
        return bool(self.client.view(call, f"{contract}.hasRole"))

    def grant_role(self, contract: str, role: str, account: str) -> Receipt:
        """Grants ``role`` on ``contract`` to ``account`` (the client must be admin)."""
        fn = self.contract(contract).functions.grantRole
        call = fn(self.role_id(contract, role), _checksum(account, "account"))
        return self.client.transact(call, f"{contract}.grantRole({role})")

    # -- IdentityNFT

    def mint_identity(self, wallet: str) -> Minted:
        """Mints the identity token of ``wallet`` (MINTER_ROLE)."""
        wallet = _checksum(wallet, "wallet")
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
        call = self._c["IdentityNFT"].functions.tokenOf(_checksum(wallet, "wallet"))
        return int(self.client.view(call, "IdentityNFT.tokenOf"))

    def status_of(self, token_id: int) -> IdentityStatus:
        """The status of identity ``token_id``."""
        call = self._c["IdentityNFT"].functions.statusOf(_uint(token_id, "token id"))
        return IdentityStatus(int(self.client.view(call, "IdentityNFT.statusOf")))

    def is_active(self, wallet: str) -> bool:
        """True when ``wallet`` holds an active identity."""
        call = self._c["IdentityNFT"].functions.isActive(_checksum(wallet, "wallet"))
        return bool(self.client.view(call, "IdentityNFT.isActive"))

    # -- FailSafe

    def trigger_failsafe(self, token_id: int, reason_hash: bytes | str) -> Receipt:
        """Cancels identity ``token_id`` through FailSafe for a 32-byte ``reason_hash``."""
        reason = _hex32(reason_hash, "reason hash")
        call = self._c["FailSafe"].functions.trigger(_uint(token_id, "token id"), reason)
        return self.client.transact(call, "FailSafe.trigger")

    # -- ProofRegistry

    def register_proof(self, document_hash: bytes | str, signer: str | None = None) -> Receipt:
        """Records ``document_hash``; signed by ``signer`` (REGISTRAR_ROLE registers for it), or by
        the client's own account when ``signer`` is None."""
        doc = _hex32(document_hash, "document hash")
        fns = self._c["ProofRegistry"].functions
        if signer is None:
            return self.client.transact(fns.registerProof(doc), "ProofRegistry.registerProof")
        call = fns.registerProofFor(_checksum(signer, "signer"), doc)
        return self.client.transact(call, "ProofRegistry.registerProofFor")

    def get_proof(self, document_hash: bytes | str) -> ProofRecord | None:
        """The record of ``document_hash``, or None when it was never registered."""
        doc = _hex32(document_hash, "document hash")
        call = self._c["ProofRegistry"].functions.getProof(doc)
        signer, token_id, ts, block = self.client.view(call, "ProofRegistry.getProof")
        if signer == _ZERO_ADDRESS:
            return None
        return ProofRecord("0x" + doc.hex(), signer, int(token_id), int(ts), int(block))

    def anchor_batch(self, root: bytes | str, tree_size: int) -> tuple[int, Receipt]:
        """Anchors a batch's RFC 6962 Merkle ``root`` over ``tree_size`` leaves; returns its id."""
        if not isinstance(tree_size, int) or not 0 < tree_size < 2**64:
            raise ConfigError(f"tree size must be a positive 64-bit integer, got {tree_size!r}")
        call = self._c["ProofRegistry"].functions.anchorBatch(_hex32(root, "root"), tree_size)
        receipt = self.client.transact(call, "ProofRegistry.anchorBatch")
        anchored = self.events(receipt, "ProofRegistry", "BatchAnchored")
        if len(anchored) != 1:
            raise TransactionFailed(f"anchorBatch: {receipt.tx_hash} emitted no BatchAnchored")
        return int(anchored[0]["batchId"]), receipt

    def get_batch(self, batch_id: int) -> BatchRecord | None:
        """Anchored batch ``batch_id``, or None when unknown."""
        call = self._c["ProofRegistry"].functions.getBatch(_uint(batch_id, "batch id"))
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
        nodes = [_hex32(p, f"path[{i}]") for i, p in enumerate(path)]
        call = self._c["ProofRegistry"].functions.verifyInclusion(
            _hex32(document_hash, "document hash"),
            _uint(leaf_index, "leaf index"),
            _uint(tree_size, "tree size"),
            nodes,
            _hex32(root, "root"),
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
        nodes = [_hex32(p, f"path[{i}]") for i, p in enumerate(path)]
        call = self._c["ProofRegistry"].functions.verifyAnchoredInclusion(
            _uint(batch_id, "batch id"),
            _hex32(document_hash, "document hash"),
            _uint(leaf_index, "leaf index"),
            nodes,
        )
        return bool(self.client.view(call, "ProofRegistry.verifyAnchoredInclusion"))
