"""The listener worker's settings from the environment, and its process entry point.

    DATABASE_URL            PostgreSQL (required)
    RPC_URL                 JSON-RPC endpoint (required; POLYGON_RPC_URL is accepted instead)
    CONTRACTS_CONFIG        contracts_config.json (default: ./contracts_config.json)
    LISTENER_POLL_INTERVAL  seconds between polls once caught up (default 15)
    LISTENER_CONFIRMATIONS  blocks behind the head when there is no finalized block (default 2)
    LISTENER_FINALITY       auto | finalized | confirmations (default auto)
    LISTENER_MAX_RANGE      largest eth_getLogs range in blocks (default 2000)
    LISTENER_NAME           checkpoint name (default blocktrust)

Every problem is reported at once; values of secrets (the URLs) are never printed.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from blocktrust_native.errors import ConfigError, Error
from blocktrust_native.listener.listener import FINALITY_MODES

__all__ = ["ListenerSettings", "main"]

log = logging.getLogger("blocktrust_native.listener")


@dataclass(frozen=True)
class ListenerSettings:
    """What ``python -m blocktrust_native.listener`` runs with; URLs hidden from the repr."""

    database_url: str = field(repr=False)
    rpc_url: str = field(repr=False)
    contracts_config: str = "contracts_config.json"
    poll_interval: float = 15.0
    confirmations: int = 2
    finality: str = "auto"
    max_range: int = 2000
    name: str = "blocktrust"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ListenerSettings:
        """Reads the variables of the module docstring; ConfigError lists every problem."""
        env = os.environ if env is None else env
        problems: list[str] = []
        values: dict[str, Any] = {}
        values["database_url"] = env.get("DATABASE_URL", "")
        if not values["database_url"]:
            problems.append("DATABASE_URL is not set")
        values["rpc_url"] = env.get("RPC_URL") or env.get("POLYGON_RPC_URL") or ""
        if not values["rpc_url"]:
            problems.append("RPC_URL (or POLYGON_RPC_URL) is not set")
        values["contracts_config"] = env.get("CONTRACTS_CONFIG") or cls.contracts_config

        def number(var: str, kind: type[int] | type[float], least: float, default: Any) -> Any:
            """``var`` as a ``kind`` >= ``least`` (> 0 for a float), else a problem."""
            raw = env.get(var)
            if raw is None or raw == "":
                return default
            try:
                value = kind(raw)
            except ValueError:
                problems.append(f"{var} must be a number, got {raw!r}")
                return default
            if value < least or (kind is float and value <= 0):
                problems.append(f"{var} must be {'> 0' if kind is float else f'>= {least}'}")
            return value

        values["poll_interval"] = number("LISTENER_POLL_INTERVAL", float, 0, cls.poll_interval)
        values["confirmations"] = number("LISTENER_CONFIRMATIONS", int, 0, cls.confirmations)
        values["max_range"] = number("LISTENER_MAX_RANGE", int, 1, cls.max_range)
        values["finality"] = env.get("LISTENER_FINALITY") or cls.finality
        if values["finality"] not in FINALITY_MODES:
            problems.append(f"LISTENER_FINALITY must be one of {', '.join(FINALITY_MODES)}")
        values["name"] = env.get("LISTENER_NAME") or cls.name
        if problems:
            raise ConfigError("listener settings: " + "; ".join(problems))
        return cls(**values)


def main(env: Mapping[str, str] | None = None) -> int:
    """Runs the listener from the environment until SIGINT or SIGTERM; 0 on a clean stop, 2 when
    the settings or the contracts config are unusable, 1 when the node or database fails."""
    from blocktrust_native.listener.contracts import load_contracts_config
    from blocktrust_native.listener.listener import Listener
    from blocktrust_native.pool import Pool

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        settings = ListenerSettings.from_env(env)
        config = load_contracts_config(settings.contracts_config)
    except (ConfigError, OSError) as exc:
        print(f"listener: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        # Three sessions: the leader lock's, the poll's, and one spare.
        with Pool(settings.database_url, min_size=1, max_size=3, wait=True) as pool:
            listener = Listener(
                pool,
                settings.rpc_url,
                config,
                name=settings.name,
                confirmations=settings.confirmations,
                finality=settings.finality,
                poll_interval=settings.poll_interval,
                max_range=settings.max_range,
            )
            log.info(
                "listener %r following chain %d at %s from %s (finality %s)",
                settings.name,
                listener.chain_id,
                listener.rpc.url,
                pool.dsn,
                settings.finality,
            )
            listener.start()
            stop.wait()
            log.info("stopping after the range in progress")
            listener.stop()
    except ConfigError as exc:
        print(f"listener: {exc}", file=sys.stderr)
        return 2
    except Error as exc:
        print(f"listener: {exc}", file=sys.stderr)
        return 1
    return 0
