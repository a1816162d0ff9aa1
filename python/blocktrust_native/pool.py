"""A PostgreSQL connection pool on a native (libpqxx) core, for threads and asyncio alike.

    with Pool("postgresql://app@db/app", max_size=8) as pool:
        with pool.connection() as conn:
            with conn.transaction():
                conn.execute("INSERT INTO t (id, doc) VALUES ($1, $2)", (1, {"a": 1}))
        rows = pool.execute("SELECT id, doc FROM t WHERE id = $1", (1,), as_dict=True)

Every network wait (connecting, waiting for a free connection, running a statement) releases the
GIL. The ``*_async`` methods run the same calls on the pool's own worker threads, so the event loop
never blocks and one pool serves both worlds.

A pool made before ``fork()`` (gunicorn's pre-fork workers, ``multiprocessing``) works in the
child: there it opens the child's own connections at first use and never speaks on the parent's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from blocktrust_native._native import pool as _native
from blocktrust_native.errors import (
    ConfigError,
    DatabaseError,
    IntegrityError,
    OperationalError,
    PoolClosed,
    PoolTimeout,
)

if TYPE_CHECKING:
    import concurrent.futures

    from typing_extensions import Unpack

# asyncio, concurrent.futures and traceback are imported where they are used: a program that
# never awaits the pool does not pay for them at import time (asyncio alone is ~50 ms).

__all__ = [
    "AsyncConnection",
    "Connection",
    "DatabaseError",
    "IntegrityError",
    "OperationalError",
    "Pool",
    "PoolClosed",
    "PoolConfig",
    "PoolConfigArgs",
    "PoolTimeout",
    "redact_dsn",
]

log = logging.getLogger("blocktrust_native.pool")

redact_dsn = _native.redact_dsn

#: Settings of a :class:`Pool` (seconds; ``None`` switches an optional feature off), immutable:
#: ``PoolConfig(max_size=8)``. Every field not given keeps the core's default (min_size 1,
#: max_size 10, acquire_timeout 30, max_lifetime 1800, idle_timeout 600, validation_threshold 1,
#: connect_timeout 10, statement_cache_size 128, maintenance_interval 0.5; no leak warnings, no
#: statement_timeout, the DSN's application_name else "blocktrust_native").
PoolConfig = _native.PoolConfig


class PoolConfigArgs(TypedDict, total=False):
    """The fields of :class:`PoolConfig`, as keyword arguments of :class:`Pool`."""

    min_size: int
    max_size: int
    acquire_timeout: float
    max_waiting: int
    max_lifetime: float | None
    idle_timeout: float | None
    validation_threshold: float
    leak_threshold: float | None
    statement_timeout: float | None
    application_name: str | None
    connect_timeout: int
    pgbouncer: bool
    statement_cache_size: int
    maintenance_interval: float


def pool_config(config: PoolConfig | None, overrides: dict[str, Any]) -> PoolConfig:
    """``config`` (else the defaults) with ``overrides`` (keywords named as its fields) applied."""
    if not overrides:
        return config if config is not None else PoolConfig()
    if config is None:
        return PoolConfig(**overrides)
    fields = {name: getattr(config, name) for name in PoolConfigArgs.__annotations__}
    return PoolConfig(**(fields | overrides))


def _log_leak(where: str, held: float, conn_id: int) -> None:
    log.warning(
        "pooled connection %d held for %.1fs without being returned; acquired at:\n%s",
        conn_id,
        held,
        where or "(unknown: set leak_threshold before acquiring)",
    )


class Connection:
    """A connection leased from a :class:`Pool`; use it from one thread at a time.

    ``release()`` (or leaving ``with pool.connection()``) returns it; a connection returned inside
    a transaction is rolled back, and one that cannot be rolled back is closed.
    """

    __slots__ = ("__weakref__", "_depth", "_native")

    def __init__(self, native: _native.Connection) -> None:
        self._native = native
        self._depth = 0

    def execute(
        self, sql: str, params: Sequence[Any] | None = None, *, as_dict: bool = False
    ) -> list[Any]:
        """Runs one statement with ``$1..$n`` parameters; returns rows as tuples (or dicts)."""
        return self._native.execute(sql, params, as_dict)

    def execute_many(self, sql: str, params_seq: Iterable[Sequence[Any]]) -> int:
        """Runs ``sql`` once per parameter set; returns the total of affected rows."""
        return self._native.execute_many(sql, params_seq)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Commits on success, rolls back on an exception; nested blocks use savepoints."""
        depth = self._depth
        self._native.execute("BEGIN" if depth == 0 else f"SAVEPOINT bt_sp_{depth}")
        self._depth = depth + 1
        try:
            yield self
        except BaseException:
            # A lost connection cannot roll back; the original error is the one to see.
            with contextlib.suppress(DatabaseError):
                self._native.execute(
                    "ROLLBACK" if depth == 0 else f"ROLLBACK TO SAVEPOINT bt_sp_{depth}"
                )
            raise
        else:
            self._native.execute("COMMIT" if depth == 0 else f"RELEASE SAVEPOINT bt_sp_{depth}")
        finally:
            self._depth = depth

    def notifications(self, timeout: float = 1.0) -> list[tuple[str, str, int]]:
        """Waits up to ``timeout`` s for NOTIFY messages on channels this session LISTENs to;
        returns ``[(channel, payload, sender_backend_pid), ...]`` (empty on timeout)."""
        return self._native.wait_notifications(timeout)

    def keep_out_of_pool(self) -> None:
        """Makes this a dedicated session (for LISTEN or session settings): it is never
        reported as a leak and is closed, not pooled, when released."""
        self._native.keep_out_of_pool()

    def cancel(self) -> None:
        """Asks the server to cancel the running statement (safe from any thread)."""
        self._native.cancel()

    def release(self) -> None:
        """Returns the connection to its pool; further use raises an error."""
        self._native.release()

    close = release

    @property
    def rowcount(self) -> int:
        """Rows affected by the last statement (-1 when not applicable)."""
        return self._native.rowcount

    @property
    def tx_status(self) -> str:
        """The server's transaction state: idle, active, intrans, inerror or unknown."""
        return self._native.tx_status

    @property
    def backend_pid(self) -> int:
        """The server process id of this session."""
        return self._native.backend_pid

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        state = self.tx_status if self._native.active else "released"
        return f"<Connection {self._native.id} {state}>"


class AsyncConnection:
    """The asyncio face of a leased connection: statements run on the pool's worker threads.

    Cancelling a task that awaits ``execute`` sends a cancel request to the server; the connection
    goes back to the pool once the statement has stopped.
    """

    __slots__ = ("_native", "_pending", "_pool", "_sync")

    def __init__(self, pool: Pool, native: _native.Connection) -> None:
        self._pool = pool
        self._native = native
        self._sync = Connection(native)
        self._pending: concurrent.futures.Future[Any] | None = None

    async def _run(self, fn: Any, *args: Any) -> Any:
        if self._pending is not None and not self._pending.done():
            raise OperationalError("a cancelled statement is still running on this connection")
        import asyncio

        cf = self._pool._ops().submit(fn, *args)
        self._pending = cf
        try:
            return await asyncio.wrap_future(cf)
        except asyncio.CancelledError:
            self._native.cancel()
            raise

    async def execute(
        self, sql: str, params: Sequence[Any] | None = None, *, as_dict: bool = False
    ) -> list[Any]:
        """Runs one statement without blocking the event loop; returns the rows."""
        return await self._run(self._native.execute, sql, params, as_dict)  # type: ignore[no-any-return]

    async def execute_many(self, sql: str, params_seq: Iterable[Sequence[Any]]) -> int:
        """Runs ``sql`` once per parameter set; returns the total of affected rows."""
        return await self._run(self._native.execute_many, sql, list(params_seq))  # type: ignore[no-any-return]

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """Commits on success, rolls back on an exception (including cancellation)."""
        await self.execute("BEGIN")
        try:
            yield self
        except BaseException as exc:
            # After a cancellation the cancelled statement may still be stopping: release()
            # rolls back then. Otherwise roll back now so the connection stays usable.
            idle = self._pending is None or self._pending.done()
            if idle and not isinstance(exc, _cancelled_error()):
                with contextlib.suppress(DatabaseError):
                    await self.execute("ROLLBACK")
            raise
        else:
            await self.execute("COMMIT")

    def cancel(self) -> None:
        """Asks the server to cancel the running statement."""
        self._native.cancel()

    async def release(self) -> None:
        """Returns the connection once any running statement has stopped (never blocks the loop)."""
        pending = self._pending
        native = self._native
        if pending is not None and not pending.done():
            native.cancel()
            pending.add_done_callback(lambda _f: native.release())
            return
        if native.tx_status == "idle":
            native.release()  # no network round trip on this path
        else:
            import asyncio

            await asyncio.wrap_future(self._pool._ops().submit(native.release))

    @property
    def rowcount(self) -> int:
        """Rows affected by the last statement (-1 when not applicable)."""
        return self._native.rowcount

    @property
    def tx_status(self) -> str:
        """The server's transaction state: idle, active, intrans, inerror or unknown."""
        return self._native.tx_status

    def __repr__(self) -> str:
        return f"<AsyncConnection {self._native.id}>"


class Pool:
    """A bounded, thread-safe PostgreSQL connection pool (see the module docstring).

    Durations are in seconds; ``None`` switches an optional feature off. The pool starts filling
    ``min_size`` connections in the background; ``wait=True`` blocks until they are open (and
    raises :class:`OperationalError` if the server cannot be reached).
    """

    def __init__(
        self,
        dsn: str,
        *,
        config: PoolConfig | None = None,
        wait: bool = False,
        **settings: Unpack[PoolConfigArgs],
    ) -> None:
        """``config`` (or keyword arguments named as its fields, e.g. ``max_size=8``) sets the
        pool up; see :class:`PoolConfig` for each setting and its default."""
        if not isinstance(dsn, str):
            raise ConfigError("pool: dsn must be a str")
        cfg = pool_config(config, dict(settings))
        self._native = _native.Pool(dsn, cfg)
        self.config = cfg
        self._track_where = bool(cfg.leak_threshold)
        if self._track_where:
            self._native.set_leak_handler(_log_leak)
        self.max_size = cfg.max_size
        self.acquire_timeout = cfg.acquire_timeout
        self._lock = threading.Lock()
        self._acq_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._ops_executor: concurrent.futures.ThreadPoolExecutor | None = None
        # Close at interpreter exit even if the pool is never closed explicitly.
        self._finalizer = weakref.finalize(self, Pool._shutdown, self._native, [])
        _POOLS.add(self)
        if wait:
            self._native.open_min(cfg.acquire_timeout)

    def _after_fork_in_child(self) -> None:
        """A forked child has none of the parent's threads: the worker threads of the
        ``*_async`` methods are started afresh (the native pool opens the child's own
        connections at its first use, and never touches the parent's)."""
        self._lock = threading.Lock()
        self._acq_executor = self._ops_executor = None
        if self._finalizer.detach() is not None:
            self._finalizer = weakref.finalize(self, Pool._shutdown, self._native, [])

    # -- lifecycle ------------------------------------------------------------------------------

    @staticmethod
    def _shutdown(
        native: _native.Pool,
        executors: list[concurrent.futures.ThreadPoolExecutor],
        deadline: float = 0.0,
    ) -> None:
        native.close(deadline)
        for ex in executors:
            ex.shutdown(wait=False, cancel_futures=True)

    def close(self, deadline: float = 5.0) -> None:
        """Refuses new acquires, waits up to ``deadline`` s for leased connections, closes all."""
        self._finalizer.detach()
        executors = [e for e in (self._acq_executor, self._ops_executor) if e is not None]
        Pool._shutdown(self._native, executors, deadline)

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Pool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        import asyncio

        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def __repr__(self) -> str:
        s = self._native.stats()
        state = "closed" if s["closed"] else f"size={s['size']}/{s['max_size']} idle={s['idle']}"
        return f"<Pool {self._native.redacted_dsn} {state}>"

    # -- threads --------------------------------------------------------------------------------

    def acquire(self, timeout: float | None = None) -> Connection:
        """Waits (FIFO) up to ``timeout`` (default ``acquire_timeout``) s for a connection; the
        caller must ``release()`` it. Prefer ``with pool.connection()``."""
        native = self._native.acquire(timeout)
        if self._track_where:
            native.set_where(_where())
        return Connection(native)

    @contextlib.contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[Connection]:
        """``with pool.connection() as conn:`` leases a connection for the block."""
        conn = self.acquire(timeout)
        try:
            yield conn
        finally:
            conn._native.release()

    def execute(
        self, sql: str, params: Sequence[Any] | None = None, *, as_dict: bool = False
    ) -> list[Any]:
        """Runs one statement on any free connection; returns the rows."""
        return self._native.execute(sql, params, as_dict)

    def execute_many(self, sql: str, params_seq: Iterable[Sequence[Any]]) -> int:
        """Runs ``sql`` once per parameter set on one connection; returns affected rows."""
        with self.connection() as conn:
            return conn.execute_many(sql, params_seq)

    def stats(self) -> dict[str, Any]:
        """size, idle, in_use, waiting, acquired, timeouts, errors, wait_p50/p90/p99/max, ..."""
        return self._native.stats()

    def check(self, timeout: float = 5.0) -> dict[str, Any]:
        """A health probe for readiness endpoints: ``{"ok", "seconds", "error", "stats"}``."""
        result = self._native.check(timeout)
        result["stats"] = self._native.stats()
        return result

    @property
    def dsn(self) -> str:
        """The DSN with its password replaced by ***."""
        return self._native.redacted_dsn

    # -- asyncio --------------------------------------------------------------------------------

    def _executor(self, which: str) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            attr = f"_{which}_executor"
            ex: concurrent.futures.ThreadPoolExecutor | None = getattr(self, attr)
            if ex is None:
                import concurrent.futures

                # Waiting for a connection and running statements use separate threads, so
                # tasks queued for a connection can never starve the holders of connections.
                ex = concurrent.futures.ThreadPoolExecutor(
                    max_workers=max(1, self.max_size), thread_name_prefix=f"bt-pool-{which}"
                )
                setattr(self, attr, ex)
                self._finalizer.detach()
                executors = [e for e in (self._acq_executor, self._ops_executor) if e]
                self._finalizer = weakref.finalize(self, Pool._shutdown, self._native, executors)
            return ex

    def _ops(self) -> concurrent.futures.ThreadPoolExecutor:
        return self._executor("ops")

    async def acquire_async(self, timeout: float | None = None) -> AsyncConnection:
        """Awaits a connection without blocking the event loop; release with ``await
        conn.release()`` (or use ``async with pool.connection_async()``)."""
        budget = self.acquire_timeout if timeout is None else timeout
        deadline = time.monotonic() + budget

        def wait() -> _native.Connection:
            left = deadline - time.monotonic()
            if left <= 0:
                raise PoolTimeout(f"no connection available after {budget:.3f}s", budget)
            native = self._native.acquire(left)
            if self._track_where:
                native.set_where(_where())
            return native

        import asyncio

        cf = self._executor("acq").submit(wait)
        try:
            native = await asyncio.wrap_future(cf)
        except asyncio.CancelledError:
            # The wait may already be running: whatever it gets goes straight back.
            cf.add_done_callback(_release_result)
            raise
        return AsyncConnection(self, native)

    @contextlib.asynccontextmanager
    async def connection_async(
        self, timeout: float | None = None
    ) -> AsyncIterator[AsyncConnection]:
        """``async with pool.connection_async() as conn:`` leases a connection for the block."""
        conn = await self.acquire_async(timeout)
        try:
            yield conn
        finally:
            await conn.release()

    async def execute_async(
        self, sql: str, params: Sequence[Any] | None = None, *, as_dict: bool = False
    ) -> list[Any]:
        """Runs one statement on any free connection without blocking the event loop."""
        async with self.connection_async() as conn:
            return await conn.execute(sql, params, as_dict=as_dict)


def _where() -> str:
    """The caller's stack, for the leak report."""
    import traceback

    return "".join(traceback.format_stack(sys._getframe(2), limit=12))


def _cancelled_error() -> type[BaseException]:
    import asyncio

    return asyncio.CancelledError


def _release_result(f: concurrent.futures.Future[Any]) -> None:
    if not f.cancelled() and f.exception() is None:
        f.result().release()


# Every live pool, so a forked child (gunicorn's pre-fork workers) can drop the parent's threads.
_POOLS: weakref.WeakSet[Pool] = weakref.WeakSet()


def _reset_pools_in_child() -> None:
    for pool in list(_POOLS):
        pool._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_pools_in_child)
