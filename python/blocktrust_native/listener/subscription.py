"""What a listener is given: the contracts to follow, and what their logs change in the
application's own tables.

The listener itself is generic: it stores every log of the given contracts in ``chain_events``
(its own tables, :mod:`blocktrust_native.listener.schema`), reorganisation-safe and resumable.
What the logs mean to an application is a :class:`Projection`: SQL run in the same transaction
on the rows just inserted, so a replayed range (which inserts nothing) changes nothing. The
Blocktrust contracts' one is :mod:`blocktrust_native.listener.blocktrust`.

    sub = Subscription({"Token": ContractEntry(address, abi, deploy_block)}, chain_id=1,
                       projection=Projection(ctes=("seen AS (UPDATE ... FROM ins i ...)",)))
    Listener(pool, rpc_url, sub).start()
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from blocktrust_native.errors import ConfigError
from blocktrust_native.listener.contracts import ContractEntry

__all__ = ["Projection", "Subscription"]


@dataclass(frozen=True)
class Projection:
    """SQL that keeps an application's tables in step with the logs the listener inserts.

    ``ctes``: common table expressions (``name AS (UPDATE ... RETURNING 1)``) of the statement
    that inserts a range's logs; they see the rows actually inserted as ``ins`` (``tx_hash``,
    ``log_index``, ``block_number``, ``event_name``, ``args``) and the chain id as ``$1``.
    ``after``: ``(event name, statement)`` pairs for updates that may meet a row a CTE changes
    too (one statement cannot change a row twice): each statement runs after the insert, in the
    same transaction, with ``$1`` the chain id and ``$2`` a JSON array of ``[tx_hash, args]`` of
    the inserted logs of that event that were decoded, when there are any.
    """

    ctes: tuple[str, ...] = ()
    after: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Subscription:
    """The contracts a listener follows (name -> :class:`ContractEntry`: address, ABI, and the
    block it was deployed in), the chain they are on (None: not checked) and the application's
    :class:`Projection` of their logs."""

    contracts: Mapping[str, ContractEntry]
    chain_id: int | None = None
    projection: Projection = field(default_factory=Projection)

    def __post_init__(self) -> None:
        if not self.contracts:
            raise ConfigError("a listener needs at least one contract to follow")

    @property
    def start_block(self) -> int:
        """The first block worth reading: the earliest deployment (0 when one is unknown)."""
        return min(e.deploy_block or 0 for e in self.contracts.values())
