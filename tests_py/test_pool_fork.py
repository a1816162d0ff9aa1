"""The pool across fork(), as gunicorn's pre-fork workers use it: the parent creates the pool
(and may have used it), then forks. A child never uses, closes or cancels through the parent's
sessions; it opens its own, transparently; the parent's sessions keep working after it. Real
PostgreSQL, started by the fixtures."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import uuid

import pytest
from fix_fork import Channel, Forked
from fix_wait import wait_until

from blocktrust_native.pool import OperationalError, Pool, PoolClosed

pytestmark = [
    pytest.mark.pg,
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()"),
]


def _hold(pool: Pool, n: int) -> list[int]:
    """Backend pids of `n` connections leased at once (then returned)."""
    conns = [pool.acquire() for _ in range(n)]
    try:
        return sorted(c.backend_pid for c in conns)
    finally:
        for c in conns:
            c.release()


def _parent_sessions_intact(pool: Pool, pids: list[int]) -> None:
    """The pool still hands out exactly the sessions it had, and each answers."""
    conns = [pool.acquire() for _ in pids]
    try:
        assert sorted(c.backend_pid for c in conns) == pids
        for c in conns:
            assert c.execute("SELECT 1") == [(1,)]
    finally:
        for c in conns:
            c.release()


def test_a_pool_made_before_fork_works_in_the_child_from_many_threads_at_once(
    pg_dsn: str,
) -> None:
    with Pool(pg_dsn, min_size=2, max_size=8, wait=True) as pool:
        parent = _hold(pool, 2)

        def child(_: Channel) -> list[int]:
            # The first use in the child comes from eight threads at once (a threaded gunicorn
            # worker's first requests): every one must get one of the child's own sessions.
            start = threading.Barrier(8)
            pids: list[int] = []
            errors: list[str] = []

            def worker() -> None:
                start.wait()
                try:
                    [(pid,)] = pool.execute("SELECT pg_backend_pid()")
                    pids.append(pid)
                except Exception as e:
                    errors.append(repr(e))

            threads = [threading.Thread(target=worker) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert errors == []
            with pool.connection() as conn:
                pids.append(conn.backend_pid)
            pool.close()  # what the child's interpreter does at exit
            return pids

        child_pids = Forked(child).result()
        assert len(child_pids) == 9
        assert not set(child_pids) & set(parent)  # its own sessions, never the parent's
        _parent_sessions_intact(pool, parent)


def test_closing_the_pool_in_a_child_that_never_used_it_leaves_the_parents_sessions(
    pg_dsn: str,
) -> None:
    with Pool(pg_dsn, min_size=2, max_size=4, wait=True) as pool:
        parent = _hold(pool, 2)

        def child(_: Channel) -> bool:
            pool.close()
            with pytest.raises(PoolClosed):
                pool.execute("SELECT 1")
            return True

        assert Forked(child).result() is True
        _parent_sessions_intact(pool, parent)


def test_a_child_exiting_normally_sends_nothing_on_the_parents_sessions(pg_dsn: str) -> None:
    # A real interpreter exit in the child (atexit, the pool's finalizer, garbage collection),
    # not os._exit: the parent's sessions must survive it.
    script = textwrap.dedent(
        """
        import os, sys, warnings
        from blocktrust_native.pool import Pool

        pool = Pool(sys.argv[1], min_size=2, max_size=4, wait=True)
        conns = [pool.acquire() for _ in range(2)]
        before = sorted(c.backend_pid for c in conns)
        for c in conns:
            c.release()
        leased = pool.acquire()  # held across fork: the child's copy is dropped at its exit
        warnings.simplefilter("ignore", DeprecationWarning)
        child = os.fork()
        if child == 0:
            sys.exit(0)  # a normal exit: finalizers and atexit run in the child
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        assert leased.execute("SELECT 1") == [(1,)]
        leased.release()
        conns = [pool.acquire() for _ in range(2)]
        after = sorted(c.backend_pid for c in conns)
        for c in conns:
            assert c.execute("SELECT 1") == [(1,)]
            c.release()
        assert after == before, (before, after)
        print("intact")
        """
    )
    env = dict(os.environ)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(here, "python"), here])
    out = subprocess.run(
        [sys.executable, "-c", script, pg_dsn],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "intact"


def test_a_connection_leased_before_fork_is_refused_in_the_child_and_never_cancels(
    pg_dsn: str,
) -> None:
    lock_key = uuid.uuid4().int & 0x7FFFFFFF
    with (
        Pool(pg_dsn, min_size=0, max_size=4) as pool,
        Pool(pg_dsn, min_size=0, max_size=2) as admin,
        admin.connection() as blocker,
    ):
        blocker.execute("SELECT pg_advisory_lock($1)", (lock_key,))
        conn = pool.acquire()
        waiting_pid = conn.backend_pid
        got: list[object] = []
        # The parent's statement waits on the lock (this thread holds the lease meanwhile).
        t = threading.Thread(
            target=lambda: got.append(conn.execute("SELECT pg_advisory_lock($1)", (lock_key,)))
        )
        t.start()
        wait_until(
            lambda: (
                admin.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", (waiting_pid,)
                )
                == [("Lock",)]
            ),
            timeout=10,
            what="the parent's statement to wait on the lock",
        )

        def child(_: Channel) -> dict[str, object]:
            with pytest.raises(OperationalError) as e:
                conn.execute("SELECT 1")
            conn.cancel()  # must not reach the parent's statement
            conn.release()  # must neither block on the parent's running statement nor send
            [(mine,)] = pool.execute("SELECT pg_backend_pid()")
            return {"sqlstate": e.value.sqlstate, "message": str(e.value), "mine": mine}

        r = Forked(child).result()
        assert r["sqlstate"] == "08003"
        assert "before fork()" in str(r["message"])
        assert r["mine"] != waiting_pid
        # The child's cancel() did nothing: the parent's statement still waits, then succeeds.
        assert admin.execute(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", (waiting_pid,)
        ) == [("Lock",)]
        blocker.execute("SELECT pg_advisory_unlock($1)", (lock_key,))
        t.join(10)
        assert got == [[(None,)]]
        assert conn.execute("SELECT 1") == [(1,)]
        conn.release()


def test_the_async_api_works_in_a_child_when_the_parent_used_it_first(pg_dsn: str) -> None:
    with Pool(pg_dsn, min_size=1, max_size=4, wait=True) as pool:
        assert asyncio.run(pool.execute_async("SELECT 1")) == [(1,)]  # starts the worker threads

        def child(_: Channel) -> list[list[int]]:
            # The parent's executor threads do not exist here: the child must get its own.
            return [list(r) for r in asyncio.run(pool.execute_async("SELECT 2"))]

        assert Forked(child).result() == [[2]]
        assert asyncio.run(pool.execute_async("SELECT 3")) == [(3,)]
