"""A local EVM node: anvil (npm ``@foundry-rs/anvil-linux-amd64``) on a free 127.0.0.1 port.

Used by the embedded stack and the tests so neither depends on a node that happens to run on the
machine. Accounts come from a known mnemonic (anvil's public test mnemonic by default), so they are
funded and predictable; their keys are for this throwaway chain only and never printed by ``repr``.

    with Anvil() as node:
        print(node.rpc_url, node.accounts[0])
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from blocktrust_native.errors import JsonRpcError
from blocktrust_native.jsonrpc import JsonRpcClient
from validate_all_flows.embedded.node_deps import anvil_path
from validate_all_flows.embedded.postgres import free_port

__all__ = ["ANVIL_CHAIN_ID", "DEFAULT_MNEMONIC", "Anvil", "AnvilError", "find_anvil"]

#: anvil's own well-known test mnemonic: its accounts are public, never use them on a real network.
DEFAULT_MNEMONIC = "test test test test test test test test test test test junk"
#: The chain id anvil uses unless told otherwise.
ANVIL_CHAIN_ID = 31337


# anvil prints the accounts' private keys and the mnemonic at start-up.
_SECRET_LINE = re.compile(r"(0x)?[0-9a-fA-F]{64}|mnemonic", re.IGNORECASE)


class AnvilError(RuntimeError):
    """Raised when anvil cannot be found, started or reached; names the step and shows its log."""


def find_anvil() -> Path:
    """The anvil binary: ``$BLOCKTRUST_ANVIL``, else the one ``npm ci`` installed, else ``anvil``
    on PATH."""
    env = os.environ.get("BLOCKTRUST_ANVIL")
    if env:
        if not os.access(env, os.X_OK):
            raise AnvilError(f"BLOCKTRUST_ANVIL={env} is not an executable file")
        return Path(env)
    local = anvil_path()
    if local.is_file():
        return local
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise AnvilError(
        f"anvil not found (looked for {local} and on PATH); run "
        "`python -m validate_all_flows.embedded.node_deps` to install it"
    )


def _die_with_parent() -> None:
    # Linux: deliver SIGTERM to anvil if the Python process dies without calling stop().
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Anvil:
    """An anvil process on 127.0.0.1:<free port>; ``stop()`` (or leaving ``with``) ends it.

    Two instances never share a port: each picks a free one and retries if it was taken meanwhile.
    """

    def __init__(
        self,
        *,
        chain_id: int = ANVIL_CHAIN_ID,
        accounts: int = 10,
        mnemonic: str = DEFAULT_MNEMONIC,
        block_time: float | None = None,
        startup_timeout: float = 20.0,
    ) -> None:
        if not isinstance(chain_id, int) or chain_id <= 0:
            raise AnvilError(f"chain id must be a positive integer, got {chain_id!r}")
        if not isinstance(accounts, int) or not 1 <= accounts <= 1000:
            raise AnvilError(f"accounts must be 1..1000, got {accounts!r}")
        self.chain_id = chain_id
        self.n_accounts = accounts
        self._mnemonic = mnemonic
        self.block_time = block_time
        self.startup_timeout = startup_timeout
        self.port = 0
        self.binary = find_anvil()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None
        self._keys: list[str] = []
        #: Checksummed addresses of the funded accounts, in mnemonic order.
        self.accounts: list[str] = []

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Anvil:
        """Starts anvil and waits until it answers JSON-RPC; returns self."""
        if self._proc is not None:
            raise AnvilError("anvil already started")
        fd, log = tempfile.mkstemp(prefix="blocktrust-anvil-", suffix=".log")
        os.close(fd)
        self._log_path = Path(log)
        last = ""
        try:
            for _attempt in range(5):
                self.port = free_port()
                if self._spawn_and_wait():
                    self._derive_accounts()
                    return self
                last = self.log_tail()
                if "in use" not in last.lower():
                    break
        except BaseException:
            self.stop()
            raise
        self.stop()
        raise AnvilError(f"anvil did not start on 127.0.0.1; its log ends with:\n{last}")

    def _spawn_and_wait(self) -> bool:
        args = [
            str(self.binary),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--accounts",
            str(self.n_accounts),
            "--mnemonic",
            self._mnemonic,
        ]
        if self.block_time is not None:
            args += ["--block-time", str(self.block_time)]
        assert self._log_path is not None
        with open(self._log_path, "ab") as log:
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                return False
            # Our own log must say we bound the port: a probe alone could reach another process
            # that took the port first (and then ours exits with "address in use").
            if f"Listening on 127.0.0.1:{self.port}" in self._read_log():
                with contextlib.suppress(OSError, AnvilError, ValueError):
                    if int(self.rpc("eth_chainId", timeout=0.5), 16) == self.chain_id:
                        return True
            time.sleep(0.05)
        self._kill()
        raise AnvilError(
            f"anvil on port {self.port} not ready after {self.startup_timeout}s; log:\n"
            + self.log_tail()
        )

    def _derive_accounts(self) -> None:
        from eth_account import (
            Account,  # the embedded extra; imported late so find_anvil works alone
        )

        Account.enable_unaudited_hdwallet_features()
        self._keys, self.accounts = [], []
        for i in range(self.n_accounts):
            acct = Account.from_mnemonic(self._mnemonic, account_path=f"m/44'/60'/0'/0/{i}")
            self._keys.append("0x" + bytes(acct.key).hex())
            self.accounts.append(acct.address)
        served = [a.lower() for a in self.rpc("eth_accounts")]
        if served != [a.lower() for a in self.accounts]:
            raise AnvilError("anvil's accounts do not match the ones derived from the mnemonic")

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def stop(self) -> None:
        """Stops anvil (SIGTERM, then SIGKILL after 5 s) and deletes its log; safe to call twice."""
        self._kill()
        if self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"Anvil(rpc_url={self.rpc_url!r}, chain_id={self.chain_id}, {state})"

    # -- use -------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the anvil process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The anvil process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    @property
    def rpc_url(self) -> str:
        """The HTTP JSON-RPC endpoint, e.g. ``http://127.0.0.1:41234``."""
        return f"http://127.0.0.1:{self.port}"

    def private_key(self, index: int) -> str:
        """The 0x-hex private key of funded account ``index`` (a key of this throwaway chain)."""
        if not self._keys:
            raise AnvilError("anvil is not started")
        return self._keys[index]

    def rpc(self, method: str, params: list[Any] | None = None, timeout: float = 10.0) -> Any:
        """Calls one JSON-RPC method and returns its result; AnvilError on a JSON-RPC error,
        ChainConnectionError (an OSError) when anvil does not answer."""
        client = JsonRpcClient(self.rpc_url, connect_timeout=timeout, request_timeout=timeout)
        try:
            return client.call(method, params or [])
        except JsonRpcError as exc:
            raise AnvilError(f"{method}: {exc.message}") from None

    def snapshot(self) -> str:
        """Takes a snapshot of the chain state (``evm_snapshot``); returns its id."""
        return str(self.rpc("evm_snapshot"))

    def revert(self, snapshot_id: str) -> None:
        """Reverts the chain to ``snapshot_id`` (a reorganisation, seen from a listener)."""
        if self.rpc("evm_revert", [snapshot_id]) is not True:
            raise AnvilError(f"evm_revert to snapshot {snapshot_id} refused")

    def mine(self, blocks: int = 1) -> None:
        """Mines ``blocks`` empty blocks."""
        self.rpc("anvil_mine", [hex(blocks)])

    def _read_log(self) -> str:
        if self._log_path is None:
            return ""
        try:
            return self._log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, chars: int = 2000) -> str:
        """The end of anvil's own log (for error messages), without keys or the mnemonic."""
        lines = [
            "<redacted>" if _SECRET_LINE.search(line) else line
            for line in self._read_log().splitlines()
        ]
        return "\n".join(lines)[-chars:]
