"""A generic web3 write client: JSON-RPC connection, signing account, fees, nonces, receipts.

Built on web3.py / eth-account and knows nothing of the Blocktrust contracts (they live in
``embedded.chain``). Transactions are signed locally with the configured private key, which never
reaches a log, a ``repr`` or an error message. RPC URL and chain id are configurable:

- the embedded stack and the tests use anvil (chain id 31337, see ``embedded.anvil``);
- Polygon Amoy (chain id 80002, :data:`AMOY_CHAIN_ID`) is the public test network (Mumbai is gone);
- Polygon PoS mainnet is chain id 137. Polygon is a proof-of-authority chain (Bor) whose blocks
  carry 97 bytes of ``extraData``: the client installs web3's PoA middleware to read them.

Two ways to write: :meth:`ChainClient.transact` (estimate, sign, send, wait: deployments and tools)
and the steps a durable job queue records one by one (:meth:`ChainClient.estimate_gas`,
:meth:`ChainClient.fees`, :meth:`ChainClient.sign` with a nonce the caller allocated,
:meth:`ChainClient.send_raw`, :meth:`ChainClient.receipt`).

Errors: ConfigError, ChainConnectionError, ChainIdMismatch (from ``blocktrust_native.errors``) and,
raised only by this client, :class:`ContractReverted`, :class:`TransactionFailed` and
:class:`NonceTooLow`, all deriving from the library's ``ChainError``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress, HexStr
from web3 import Web3
from web3.exceptions import (
    ContractLogicError,
    TransactionNotFound,
    Web3Exception,
    Web3RPCError,
    Web3TypeError,
    Web3ValidationError,
    Web3ValueError,
)
from web3.middleware import ExtraDataToPOAMiddleware

from blocktrust_native.errors import (
    ChainConnectionError,
    ChainError,
    ChainIdMismatch,
    ConfigError,
)
from validate_all_flows.redact import redact_url  # the tool's one redaction (re-exported)

__all__ = [
    "AMOY_CHAIN_ID",
    "ANVIL_CHAIN_ID",
    "POLYGON_CHAIN_ID",
    "ChainClient",
    "ChainSettings",
    "ContractReverted",
    "Fees",
    "NonceTooLow",
    "Receipt",
    "SignedTx",
    "TransactionFailed",
    "checksum_address",
    "hex32",
    "redact_url",
    "uint256",
]

log = logging.getLogger(__name__)

#: Polygon Amoy, the public Polygon test network.
AMOY_CHAIN_ID = 80002
#: Polygon PoS mainnet.
POLYGON_CHAIN_ID = 137
#: anvil's default chain id (the embedded stack and the tests).
ANVIL_CHAIN_ID = 31337

#: Tries of a read (eth_call, receipts, nonces, fees, estimates) before its failure is reported.
READ_ATTEMPTS = 3

_KEY_RE = re.compile(r"(0x)?[0-9a-fA-F]{64}")
_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")


class ContractReverted(ChainError):
    """Raised when a contract call or transaction reverts; ``reason`` holds the revert reason."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what} reverted: {reason}")
        self.reason = reason


class TransactionFailed(ChainError):
    """Raised when a sent transaction is not mined in time, is mined with status 0, or the node
    refuses it."""


class NonceTooLow(TransactionFailed):
    """Raised by ``send_raw`` when the node already has a transaction with that nonce mined (the
    nonce was spent by another transaction, or by this one)."""


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


def hex32(value: bytes | str, what: str) -> bytes:
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


def checksum_address(address: str, what: str) -> ChecksumAddress:
    """``address`` checksummed; ConfigError naming ``what`` for anything but 0x + 40 hex digits."""
    if not isinstance(address, str) or not _ADDRESS_RE.fullmatch(address):
        raise ConfigError(f"{what} must be a 0x-prefixed 20-byte hex address, got {address!r}")
    return Web3.to_checksum_address(address)


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
    (seconds, default 60), ``CONTRACTS_CONFIG`` (path, default ``contracts_config.json``),
    ``CHAIN_CONFIRMATIONS`` (blocks a receipt needs, default 1), ``CHAIN_MAX_FEE_GWEI`` (the most
    a transaction offers per gas; default: no cap).
    """

    rpc_url: str
    chain_id: int
    private_key: str = field(repr=False)
    timeout: float = 60.0
    contracts_config: str = "contracts_config.json"
    confirmations: int = 1
    max_fee_wei: int | None = None

    def __repr__(self) -> str:
        return (
            f"ChainSettings(rpc_url={redact_url(self.rpc_url)!r}, chain_id={self.chain_id}, "
            f"private_key=<redacted>, timeout={self.timeout}, "
            f"contracts_config={self.contracts_config!r}, confirmations={self.confirmations}, "
            f"max_fee_wei={self.max_fee_wei})"
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
        confirmations, max_fee = 1, None
        if env.get("CHAIN_CONFIRMATIONS"):
            try:
                confirmations = int(env["CHAIN_CONFIRMATIONS"])
                if confirmations < 1:
                    raise ValueError
            except ValueError:
                problems.append(
                    "CHAIN_CONFIRMATIONS must be an integer >= 1, "
                    f"got {env['CHAIN_CONFIRMATIONS']!r}"
                )
        if env.get("CHAIN_MAX_FEE_GWEI"):
            try:
                max_fee = int(float(env["CHAIN_MAX_FEE_GWEI"]) * 10**9)
                if max_fee <= 0:
                    raise ValueError
            except ValueError:
                problems.append(
                    "CHAIN_MAX_FEE_GWEI must be a positive number, "
                    f"got {env['CHAIN_MAX_FEE_GWEI']!r}"
                )
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
            confirmations=confirmations,
            max_fee_wei=max_fee,
        )


@dataclass(frozen=True)
class Receipt:
    """A mined transaction: hash, block, gas used, status (1 success, 0 reverted) and the raw web3
    receipt (for event decoding)."""

    tx_hash: str
    block_number: int
    block_hash: str
    gas_used: int
    contract_address: str | None = None
    status: int = 1
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
    except ContractLogicError as e:
        raise ContractReverted(label, _revert_reason(e)) from None
    except Web3RPCError as e:
        raise refused(f"{label}: the node at {where} refused: {e.message or e}") from None
    except (Web3ValidationError, Web3TypeError, Web3ValueError) as e:
        raise ConfigError(f"{label}: invalid arguments: {e}") from None
    except (OSError, Web3Exception) as e:
        raise ChainConnectionError(f"{label}: {where} failed: {type(e).__name__}") from None


def uint256(value: int, what: str) -> int:
    """``value`` when it fits a uint256; ConfigError naming ``what`` otherwise."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**256:
        raise ConfigError(f"{what} must be a non-negative integer, got {value!r}")
    return value


@dataclass(frozen=True)
class Fees:
    """What a transaction offers to pay: EIP-1559 ``max_fee`` and ``tip`` per gas, or a legacy
    ``gas_price`` on chains without a base fee. Values in wei."""

    max_fee: int = 0
    tip: int = 0
    gas_price: int | None = None

    def fields(self) -> dict[str, int]:
        """The fee fields of a transaction dict."""
        if self.gas_price is not None:
            return {"gasPrice": self.gas_price}
        return {"maxFeePerGas": self.max_fee, "maxPriorityFeePerGas": self.tip}

    def bumped(self, factor: float, cap: int | None) -> Fees:
        """Fees for a replacement: every figure times ``factor`` (nodes want at least +10 %),
        then at most ``cap`` wei per gas."""

        def up(v: int) -> int:
            raised = math.ceil(v * factor) + 1
            return raised if cap is None else min(raised, cap)

        if self.gas_price is not None:
            return replace(self, gas_price=up(self.gas_price))
        return replace(self, max_fee=up(self.max_fee), tip=min(up(self.tip), up(self.max_fee)))

    def at_least(self, other: Fees) -> Fees:
        """The larger of each figure of ``self`` and ``other``."""
        if self.gas_price is not None or other.gas_price is not None:
            return Fees(gas_price=max(self.gas_price or 0, other.gas_price or 0))
        return Fees(max(self.max_fee, other.max_fee), max(self.tip, other.tip))


@dataclass(frozen=True)
class SignedTx:
    """A transaction signed locally and not necessarily sent: its hash, raw bytes (0x-hex), nonce,
    gas limit and fees."""

    tx_hash: str
    raw: str = field(repr=False)
    nonce: int
    gas: int
    fees: Fees


class ChainClient:
    """A JSON-RPC connection plus the signing account; thread-safe (``transact`` is serialised).

    ``chain_id``: when given, the node's chain id must match (ChainIdMismatch otherwise); when None
    the node's is used. ``timeout``: seconds for each RPC call and for waiting for a receipt.
    ``confirmations``: blocks a receipt must have (1 = mined) before :meth:`receipt` returns it.
    ``max_fee``: the most wei per gas a transaction may offer (None: no cap). ``fee_ttl``: seconds
    a fee estimate is reused, so writes do not each read the latest block first.
    """

    def __init__(
        self,
        rpc_url: str,
        private_key: str,
        *,
        chain_id: int | None = None,
        timeout: float = 60.0,
        confirmations: int = 1,
        max_fee: int | None = None,
        fee_ttl: float = 10.0,
    ) -> None:
        parts = urlsplit(rpc_url) if isinstance(rpc_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            shown = redact_url(rpc_url) if isinstance(rpc_url, str) else repr(rpc_url)
            raise ConfigError(f"RPC URL must be http(s)://host[:port][/path], got {shown!r}")
        if timeout <= 0:
            raise ConfigError(f"chain timeout must be positive, got {timeout}")
        if not isinstance(confirmations, int) or confirmations < 1:
            raise ConfigError(f"confirmations must be an integer >= 1, got {confirmations!r}")
        if max_fee is not None and (not isinstance(max_fee, int) or max_fee <= 0):
            raise ConfigError(f"the fee cap must be a positive number of wei, got {max_fee!r}")
        self._secret = _Secret(private_key)
        _URL_FILTER.add(rpc_url)
        self.rpc_url_redacted = redact_url(rpc_url)
        self.timeout = timeout
        self.confirmations = confirmations
        self.max_fee = max_fee
        self.fee_ttl = fee_ttl
        # No retries inside web3: a lost answer is retried by whoever knows what the call was
        # (the chain worker reconciles first), never blindly five times in a row.
        provider = Web3.HTTPProvider(
            rpc_url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None
        )
        self.w3 = Web3(provider)
        # Bor (Polygon PoS, Amoy) blocks carry 97 bytes of extraData, which web3 refuses otherwise;
        # the middleware is harmless on other chains.
        self.w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
        self._send_lock = threading.Lock()
        self._fee_lock = threading.Lock()
        self._fees_cache: tuple[float, Fees] | None = None
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
            confirmations=settings.confirmations,
            max_fee=settings.max_fee_wei,
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
        addr = checksum_address(address or self.address, "address")
        return int(self._read("eth_getBalance", lambda: self.w3.eth.get_balance(addr)))

    def block_number(self) -> int:
        """The latest block number."""
        return int(self._read("eth_blockNumber", lambda: self.w3.eth.block_number))

    def nonce(self, *, pending: bool = False) -> int:
        """Transactions the signing account has mined (``pending``: plus those in the node's pool),
        i.e. the next nonce the chain expects."""
        tag = "pending" if pending else "latest"
        return int(
            self._read(
                "eth_getTransactionCount",
                lambda: self.w3.eth.get_transaction_count(self.address, tag),  # type: ignore[arg-type]
            )
        )

    def code(self, address: str) -> bytes:
        """The code at ``address`` (empty for an account without a contract)."""
        addr = checksum_address(address, "address")
        return bytes(self._read("eth_getCode", lambda: self.w3.eth.get_code(addr)))

    def contract(self, address: str, abi: list[dict[str, Any]]) -> Any:
        """A web3 contract object for ``address`` / ``abi``."""
        return self.w3.eth.contract(address=checksum_address(address, "contract address"), abi=abi)

    def view(self, call: Any, label: str) -> Any:
        """Runs a read-only contract ``call`` (eth_call) with our error types."""
        return self._read(label, call.call)

    def _read(
        self, label: str, fn: Callable[[], Any], refused: type[ChainError] = ChainError
    ) -> Any:
        """Runs a read (idempotent: safe to repeat); a lost connection or answer is retried at
        once up to :data:`READ_ATTEMPTS` times, so one dropped call does not fail a whole job."""
        for attempt in range(READ_ATTEMPTS):
            try:
                with _translated(label, self.rpc_url_redacted, refused):
                    return fn()
            except ChainConnectionError:
                if attempt + 1 == READ_ATTEMPTS:
                    raise
                time.sleep(0.1 * 2**attempt)
        raise AssertionError("unreachable")

    # -- the steps of a write, for callers that record each one

    def fees(self) -> Fees:
        """Fees for a transaction now: EIP-1559 (twice the next base fee plus the node's suggested
        tip) or legacy gas price, at most ``max_fee``; reused for ``fee_ttl`` seconds."""
        with self._fee_lock:
            cached = self._fees_cache
            if cached is not None and time.monotonic() - cached[0] < self.fee_ttl:
                return cached[1]
        history = self._read("eth_feeHistory", lambda: self.w3.eth.fee_history(1, "latest", []))
        bases = history.get("baseFeePerGas") or []
        if not bases or not int(bases[-1]):  # no base fee: a pre-London chain
            price = int(self._read("eth_gasPrice", lambda: self.w3.eth.gas_price))
            fees = Fees(gas_price=self._capped(price))
        else:
            tip = int(self._read("eth_maxPriorityFeePerGas", lambda: self.w3.eth.max_priority_fee))
            max_fee = self._capped(2 * int(bases[-1]) + tip)
            fees = Fees(max_fee, min(tip, max_fee))
        with self._fee_lock:
            self._fees_cache = (time.monotonic(), fees)
        return fees

    def _capped(self, wei: int) -> int:
        if self.max_fee is not None and wei > self.max_fee:
            log.warning("fee %d wei/gas is above the cap %d: offering the cap", wei, self.max_fee)
            return self.max_fee
        return wei

    def estimate_gas(self, call: Any, label: str) -> int:
        """The gas limit for ``call`` with head-room; ContractReverted with the reason when it
        would revert (nothing is sent)."""
        gas = int(
            self._read(label, lambda: call.estimate_gas({"from": self.address}), TransactionFailed)
        )
        return gas + gas // 5 + 10_000  # estimates can be tight

    def sign(self, call: Any, *, nonce: int, gas: int, fees: Fees, label: str) -> SignedTx:
        """Signs ``call`` locally with ``nonce``; nothing reaches the node."""
        with _translated(label, self.rpc_url_redacted, TransactionFailed):
            tx = call.build_transaction(
                {
                    "from": self.address,
                    "nonce": nonce,
                    "gas": gas,
                    "chainId": self.chain_id,
                    **fees.fields(),
                }
            )
        signed = self._secret.account.sign_transaction(tx)
        return SignedTx(
            "0x" + bytes(signed.hash).hex(),
            "0x" + bytes(signed.raw_transaction).hex(),
            nonce,
            gas,
            fees,
        )

    def send_raw(self, tx: SignedTx, label: str) -> None:
        """Hands ``tx`` to the node; sending one the node already has is not an error.
        NonceTooLow when its nonce is spent; TransactionFailed for other refusals (replacement
        underpriced, fee too low, no funds)."""
        try:
            with _translated(label, self.rpc_url_redacted, TransactionFailed):
                self.w3.eth.send_raw_transaction(HexStr(tx.raw))
        except TransactionFailed as e:
            text = str(e).lower()
            if "already known" in text or "already imported" in text:
                return
            if "nonce too low" in text or "nonce has already been used" in text:
                raise NonceTooLow(f"{label}: nonce {tx.nonce} is spent ({tx.tx_hash})") from None
            raise

    def receipt(self, tx_hash: str) -> Receipt | None:
        """The receipt of ``tx_hash`` once it has ``confirmations`` blocks, else None (unknown,
        pending or too recent). A receipt with status 0 is returned: the caller decides."""
        found = self.mined_receipt(tx_hash)
        return found if found is not None and self.is_final(found) else None

    def mined_receipt(self, tx_hash: str) -> Receipt | None:
        """The receipt of ``tx_hash`` as soon as it is in a block (None while unknown or
        pending), whatever its confirmations."""

        def fetch() -> Any:
            try:
                return self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:  # a Web3RPCError: caught before the translation
                return None

        raw = self._read("eth_getTransactionReceipt", fetch)
        if raw is None or raw.get("blockNumber") is None:
            return None
        return _receipt(raw)

    def is_final(self, receipt: Receipt) -> bool:
        """True when ``receipt``'s block has ``confirmations`` blocks (itself included)."""
        if self.confirmations <= 1:
            return True
        return self.block_number() >= receipt.block_number + self.confirmations - 1

    def wait_receipt(self, tx_hash: str, timeout: float | None = None) -> Receipt | None:
        """Polls :meth:`receipt` up to ``timeout`` seconds (default: the client's); None when the
        transaction is not mined (and confirmed) by then."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        delay = 0.05
        while True:
            found = self.receipt(tx_hash)
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 1.5, 1.0)

    # -- one-shot writes (deployments, tools)

    def transact(self, call: Any, label: str) -> Receipt:
        """Estimates, signs, sends ``call`` (a web3 contract function or constructor call) and waits
        for its receipt; ContractReverted with the reason if it would revert. The nonce comes from
        the node: for durable queues, record the steps yourself (see the module doc)."""
        with self._send_lock:
            gas = self.estimate_gas(call, label)
            tx = self.sign(
                call, nonce=self.nonce(pending=True), gas=gas, fees=self.fees(), label=label
            )
            self.send_raw(tx, label)
        log.debug("sent %s from %s as %s", label, self.address, tx.tx_hash)
        receipt = self.wait_receipt(tx.tx_hash)
        if receipt is None:
            raise TransactionFailed(
                f"{label}: transaction {tx.tx_hash} not mined within {self.timeout}s"
            )
        if receipt.status != 1:
            raise TransactionFailed(
                f"{label}: transaction {tx.tx_hash} failed (status 0) "
                f"in block {receipt.block_number}"
            )
        log.info("%s mined in block %d (%s)", label, receipt.block_number, tx.tx_hash)
        return receipt

    def deploy(self, abi: list[dict[str, Any]], bytecode: str, *args: Any, label: str) -> Receipt:
        """Deploys ``bytecode`` with constructor ``args``; the receipt names the address."""
        factory = self.w3.eth.contract(abi=abi, bytecode=bytecode)
        receipt = self.transact(factory.constructor(*args), label)
        if not receipt.contract_address:
            raise TransactionFailed(f"{label}: receipt {receipt.tx_hash} has no address")
        return receipt


def _receipt(raw: Any) -> Receipt:
    return Receipt(
        tx_hash="0x" + bytes(raw["transactionHash"]).hex(),
        block_number=int(raw["blockNumber"]),
        block_hash="0x" + bytes(raw["blockHash"]).hex(),
        gas_used=int(raw["gasUsed"]),
        contract_address=raw.get("contractAddress"),
        status=int(raw["status"]),
        raw=raw,
    )
