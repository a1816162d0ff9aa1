"""The chain listener: contracts' logs into PostgreSQL through the pool.

    from blocktrust_native.listener import Listener, load_contracts_config
    listener = Listener(pool, rpc_url, load_contracts_config("contracts_config.json")).start()

or as a process: ``python -m blocktrust_native.listener`` (DATABASE_URL, RPC_URL or
POLYGON_RPC_URL, CONTRACTS_CONFIG, LISTENER_*; see :mod:`.settings`). JSON-RPC goes through the
native client (:mod:`blocktrust_native.jsonrpc`); web3 is not needed.

The follower is generic: it is given a :class:`Subscription` (the contracts, and the
:class:`Projection` of their logs onto the application's tables); a ``ContractsConfig`` stands
for the three Blocktrust contracts and their projection (:mod:`.blocktrust`, which updates the
Blocktrust tables of the embedded stack's migrations). Its own tables are the library's
(:mod:`.schema`), created when missing.
"""

from blocktrust_native.listener.contracts import (
    CONTRACT_NAMES,
    ContractEntry,
    ContractsConfig,
    load_contracts_config,
)
from blocktrust_native.listener.listener import FINALITY_MODES, Listener
from blocktrust_native.listener.settings import ListenerSettings, main
from blocktrust_native.listener.subscription import Projection, Subscription

__all__ = [
    "CONTRACT_NAMES",
    "FINALITY_MODES",
    "ContractEntry",
    "ContractsConfig",
    "Listener",
    "ListenerSettings",
    "Projection",
    "Subscription",
    "load_contracts_config",
    "main",
]
