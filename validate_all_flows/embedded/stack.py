"""The whole embedded Blocktrust stack on loopback: cluster, migrations, anvil, contracts, service.

    with Stack(progress=print) as stack:
        print(stack.base_url, stack.database_url, stack.rpc_url)

``python -m validate_all_flows.embedded.stack`` brings it up, prints where each part listens and
keeps it up until Ctrl-C. Every part picks free ports and a temp dir, so two stacks on one machine
never collide. Given ``DATABASE_URL`` (or ``rpc_url``/``private_key``) it uses that infrastructure
instead of starting its own.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from blocktrust_native.apikeys import ApiKeyCodec
from blocktrust_native.apikeys.store import PgKeyStore
from blocktrust_native.listener import Listener
from blocktrust_native.pool import Pool
from validate_all_flows.embedded.anvil import Anvil
from validate_all_flows.embedded.chain import BlocktrustContracts, deploy_contracts
from validate_all_flows.embedded.migrate import apply_migrations, load_migrations
from validate_all_flows.embedded.postgres import TempPostgres, free_port
from validate_all_flows.embedded.web3_client import ChainClient

__all__ = ["Stack", "StackError"]


class StackError(RuntimeError):
    """Raised when a part of the stack cannot be brought up; names the part."""


class Stack:
    """Brings the embedded stack up in ``start()`` and down in ``stop()`` (or with ``with``).

    ``env`` adds or overrides service settings (for example ``BLOCKTRUST_FAULTS``); the secrets
    the stack generates are random per run and exposed in ``service_env`` for tests only.
    """

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        progress: Callable[[str], None] | None = None,
        database_url: str | None = None,
    ) -> None:
        self.extra_env = dict(env or {})
        self._say = progress or (lambda _m: None)
        self._external_db = database_url
        self.pg: TempPostgres | None = None
        self.anvil: Anvil | None = None
        self.pool: Pool | None = None
        self.contracts: BlocktrustContracts | None = None
        self.worker: Any = None
        self.listener: Listener | None = None
        self.keys: PgKeyStore | None = None
        self.admin_key = self.client_key = ""
        self.server: Any = None
        self._server_thread: threading.Thread | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.database_url = ""
        self.base_url = ""
        self.contracts_config = ""
        self.env_file = ""
        self.service_env: dict[str, str] = {}
        self.timings: dict[str, float] = {}

    #: The phases start() reports through ``progress`` ("<name> ..." then "<name>: done in").
    PHASES = ("postgresql", "migrations", "anvil", "contracts", "service")

    def _phase(self, name: str, fn: Callable[[], Any]) -> Any:
        self._say(f"{name} ...")
        t0 = time.monotonic()
        try:
            result = fn()
        except Exception as exc:
            raise StackError(f"{name} failed: {exc}") from exc
        self.timings[name] = time.monotonic() - t0
        self._say(f"{name}: done in {self.timings[name]:.1f}s")
        return result

    def start(self) -> Stack:
        """Brings every part up, in order; on failure tears down what was started and raises."""
        try:
            self._start()
        except ImportError as exc:
            self.stop()
            raise StackError(f"a part of the stack cannot be imported: {exc}") from exc
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from validate_all_flows.embedded.service.app import Services, create_app
        from validate_all_flows.embedded.service.settings import ServiceSettings
        from validate_all_flows.embedded.service.worker import ChainWorker

        self._tmp = tempfile.TemporaryDirectory(prefix="blocktrust-stack-")
        if self._external_db:
            self.database_url = self._external_db
        else:
            self.pg = self._phase("postgresql", lambda: TempPostgres().start())
            self.database_url = self.pg.create_database("blocktrust")
        pool = self.pool = Pool(self.database_url, min_size=2, max_size=16)
        skip = []
        faults = self.extra_env.get("BLOCKTRUST_FAULTS", "")
        if "skip_migration" in faults:
            skip = [load_migrations()[-1].version]
        self._phase("migrations", lambda: apply_migrations(pool, skip=skip))
        anvil = self.anvil = self._phase("anvil", lambda: Anvil().start())
        key = anvil.private_key(0)
        client = ChainClient(anvil.rpc_url, key, chain_id=anvil.chain_id)
        config = self._phase("contracts", lambda: deploy_contracts(client))
        self.contracts_config = str(Path(self._tmp.name) / "contracts_config.json")
        config.write(self.contracts_config)
        self.contracts = BlocktrustContracts(client, config)
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self.service_env = {
            "ENVIRONMENT": "development",
            "DATABASE_URL": self.database_url,
            "JWT_SECRET": secrets.token_hex(32),
            "SUMSUB_APP_TOKEN": "sbx:" + secrets.token_hex(16),
            "SUMSUB_SECRET_KEY": secrets.token_hex(24),
            "API_KEY_SALT": secrets.token_hex(32),
            "RPC_URL": anvil.rpc_url,
            "CHAIN_ID": str(anvil.chain_id),
            "CHAIN_PRIVATE_KEY": key,
            "CONTRACTS_CONFIG": self.contracts_config,
            "CORS_ORIGINS": "http://localhost:3000",
            # Short fail-safe delays and light Argon2 so a validation run takes seconds.
            "FAILSAFE_DELAY_MIN": "0.5",
            "FAILSAFE_DELAY_MAX": "1.5",
            "PASSWORD_MEMORY_KIB": "19456",
            "PASSWORD_ITERATIONS": "2",
            **self.extra_env,
        }
        if self.extra_env.get("BLOCKTRUST_FAULTS"):
            self.service_env.setdefault("BLOCKTRUST_ALLOW_FAULTS", "1")
        # The service's environment, for curl walkthroughs and `--env-file`; readable by us only.
        self.env_file = str(Path(self._tmp.name) / "service.env")
        fd = os.open(self.env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.writelines(f"{k}={v}\n" for k, v in self.service_env.items())
        settings = ServiceSettings.from_env(self.service_env)
        self.keys = PgKeyStore(self.pool, ApiKeyCodec("btk_live", settings.api_key_salt.encode()))
        # Keys for the tests and the validator; tokens are shown only here, never logged.
        self.admin_key = self.keys.issue("admin", "embedded-stack").token
        self.client_key = self.keys.issue("client", "embedded-stack").token
        services = Services(settings, self.pool, self.contracts, self.keys)
        app = self._phase("service", lambda: create_app(services))
        self._serve(app, port)
        self.worker = ChainWorker(self.pool, self.contracts, settings.worker_interval).start()
        if "no_listener" not in settings.faults:
            self.listener = self._phase(
                "listener",
                # anvil's "finalized" block trails the head by 64 blocks: follow the head.
                lambda: Listener(
                    pool,
                    anvil.rpc_url,
                    config,
                    poll_interval=0.5,
                    finality="confirmations",
                ).start(),
            )

    def _serve(self, app: Any, port: int) -> None:
        import uvicorn

        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            workers=1,
            proxy_headers=False,  # the app trusts X-Forwarded-For from TRUSTED_PROXIES only
        )
        self.server = uvicorn.Server(config)
        self._server_thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self._server_thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.server.started:
                return
            if not self._server_thread.is_alive():
                raise StackError("service: uvicorn exited during start-up")
            time.sleep(0.02)
        raise StackError(f"service: not listening on 127.0.0.1:{port} after 20 s")

    def stop(self) -> None:
        """Tears down whatever is up, in reverse order; safe to call twice."""
        if self.listener is not None:
            self.listener.stop()
            self.listener = None
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        if self.server is not None:
            self.server.should_exit = True
            if self._server_thread is not None:
                self._server_thread.join(10)
            self.server = None
        if self.keys is not None:
            self.keys.close()
            self.keys = None
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        if self.anvil is not None:
            self.anvil.stop()
            self.anvil = None
        if self.pg is not None:
            self.pg.stop()
            self.pg = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def rpc_url(self) -> str:
        """The local chain's JSON-RPC URL ('' when down)."""
        return self.anvil.rpc_url if self.anvil is not None else ""


def main() -> int:
    """Brings the stack up, prints where each part listens, and waits for Ctrl-C."""
    stop = threading.Event()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with Stack(progress=lambda m: print(m, file=sys.stderr, flush=True)) as stack:
            print(f"service:     {stack.base_url}")
            print(f"database:    {stack.database_url}")
            chain_id = f" (chain id {stack.contracts.client.chain_id})" if stack.contracts else ""
            print(f"chain:       {stack.rpc_url}{chain_id}")
            print(f"contracts:   {stack.contracts_config}")
            print(f"environment: {stack.env_file} (secrets: mode 0600)")
            print("Ctrl-C stops the stack.", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while not stop.wait(0.5):
                    pass
    except StackError as exc:
        print(f"cannot bring the stack up: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
