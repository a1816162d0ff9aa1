"""The chain listener: the three Blocktrust contracts' logs into PostgreSQL through the pool.

    from blocktrust_native.listener import Listener, load_contracts_config
    listener = Listener(pool, rpc_url, load_contracts_config("contracts_config.json")).start()

or as a process: ``python -m blocktrust_native.listener`` (DATABASE_URL, RPC_URL or
POLYGON_RPC_URL, CONTRACTS_CONFIG, LISTENER_*; see :mod:`.settings`). JSON-RPC goes through the
native client (:mod:`blocktrust_native.jsonrpc`); web3 is not needed. The tables are those of the
embedded stack's migrations (``python -m validate_all_flows.embedded.migrate``).
"""

from blocktrust_native.listener.contracts import (
    CONTRACT_NAMES,
    ContractEntry,
    ContractsConfig,
    load_contracts_config,
)
from blocktrust_native.listener.listener import FINALITY_MODES, Listener
from blocktrust_native.listener.settings import ListenerSettings, main

__all__ = [
    "CONTRACT_NAMES",
    "FINALITY_MODES",
    "ContractEntry",
    "ContractsConfig",
    "Listener",
    "ListenerSettings",
    "load_contracts_config",
    "main",
]
