"""The asyncio face of the pool: awaitable acquire/execute that never block the event loop, and
cancellation that never leaks a connection."""

from __future__ import annotations

import asyncio
import time

import pytest
from fix_wait import wait_until

from blocktrust_native.pool import OperationalError, Pool, PoolTimeout

pytestmark = pytest.mark.pg


def run(coro):
    return asyncio.run(coro)


def test_many_tasks_share_a_small_pool(pg_dsn: str) -> None:
    async def main(pool: Pool) -> list[int]:
        async def one(i: int) -> int:
            async with pool.connection_async() as conn:
                [(v,)] = await conn.execute("SELECT $1::int * 2", (i,))
                return v

        return await asyncio.gather(*(one(i) for i in range(40)))

    with Pool(pg_dsn, min_size=0, max_size=3) as pool:
        assert run(main(pool)) == [i * 2 for i in range(40)]
        assert pool.stats()["in_use"] == 0
        assert pool.stats()["size"] <= 3
        assert run(pool.execute_async("SELECT 'x'::text", as_dict=False)) == [("x",)]


def test_event_loop_is_not_blocked(pg_dsn: str) -> None:
    async def main(pool: Pool) -> int:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.create_task(ticker())
        await pool.execute_async("SELECT pg_sleep(0.5)")
        stop.set()
        await t
        return ticks

    with Pool(pg_dsn, min_size=0, max_size=1) as pool:
        assert run(main(pool)) > 10  # about 45 when the loop runs freely; 1 if it blocked


def test_cancelled_execute_cancels_on_server_and_returns_connection(pg_dsn: str) -> None:
    async def main(pool: Pool) -> float:
        async def slow() -> None:
            async with pool.connection_async() as conn:
                await conn.execute("SELECT pg_sleep(10)")

        task = asyncio.create_task(slow())
        await asyncio.sleep(0.3)
        start = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The next caller gets the (only) connection quickly: the sleep was cancelled.
        assert await pool.execute_async("SELECT 1") == [(1,)]
        return time.monotonic() - start

    with Pool(pg_dsn, min_size=0, max_size=1, acquire_timeout=5) as pool:
        assert run(main(pool)) < 3
        wait_until(
            lambda: pool.stats()["in_use"] == 0, timeout=5, what="the connection back in the pool"
        )


def test_cancelled_acquire_wait_leaks_nothing(pg_dsn: str) -> None:
    async def main(pool: Pool) -> None:
        held = await pool.acquire_async()
        waiter = asyncio.create_task(pool.acquire_async(timeout=5))
        await asyncio.sleep(0.2)
        assert pool.stats()["waiting"] == 1
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await held.release()  # the cancelled wait may now receive it: it must come back

    with Pool(pg_dsn, min_size=0, max_size=1) as pool:
        run(main(pool))
        wait_until(
            lambda: pool.stats()["in_use"] == 0 and pool.stats()["idle"] == 1,
            timeout=5,
            what="the connection back in the pool, idle",
        )
        assert pool.execute("SELECT 1") == [(1,)]


def test_async_timeout_and_transaction(pg_dsn: str) -> None:
    async def main(pool: Pool) -> None:
        held = await pool.acquire_async()
        with pytest.raises(PoolTimeout):
            await pool.acquire_async(timeout=0.2)
        await held.release()
        await pool.execute_async("CREATE TABLE IF NOT EXISTS atx (v int)")
        await pool.execute_async("TRUNCATE atx")
        async with pool.connection_async() as conn:
            async with conn.transaction():
                await conn.execute("INSERT INTO atx VALUES ($1)", (1,))
            failed = False
            try:
                async with conn.transaction():
                    await conn.execute("INSERT INTO atx VALUES ($1)", (2,))
                    raise RuntimeError("boom")
            except RuntimeError:
                failed = True
            assert failed
            assert conn.tx_status == "idle"
            assert await conn.execute("SELECT 1") == [(1,)]
        assert await pool.execute_async("SELECT v FROM atx") == [(1,)]
        with pytest.raises(OperationalError):
            async with pool.connection_async() as conn:
                await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    with Pool(pg_dsn, min_size=0, max_size=1) as pool:
        run(main(pool))
        assert pool.stats()["in_use"] == 0
