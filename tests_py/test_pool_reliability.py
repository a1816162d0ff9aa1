"""Pool behaviour against a real cluster: broken connections, restarts, exhaustion, timeouts,
dirty returns, leaks, lifetimes, close() and fork()."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid

import pytest
from fix_wait import wait_until

from blocktrust_native.errors import Error
from blocktrust_native.pool import OperationalError, Pool, PoolClosed, PoolTimeout
from validate_all_flows.embedded.postgres import TempPostgres

pytestmark = pytest.mark.pg


def app_name() -> str:
    return f"bt_{uuid.uuid4().hex[:10]}"


def our_backends(admin: Pool, app: str) -> list[int]:
    rows = admin.execute("SELECT pid FROM pg_stat_activity WHERE application_name = $1", (app,))
    return [r[0] for r in rows]


def terminate(admin: Pool, app: str) -> int:
    rows = admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        (app,),
    )
    return len(rows)


SETTLE_S = 30.0  # how long the pool and the server may take to settle: CI machines are busy


@pytest.fixture
def admin(pg_dsn: str):
    with Pool(pg_dsn, min_size=0, max_size=2, application_name="bt_admin") as p:
        yield p


def _wait_served(counts: dict[str, int], errors: list[BaseException], n: int, what: str) -> None:
    """Waits until the workers counting into ``counts["ok"]`` have run ``n`` more statements than
    now; fails at once with a worker's unexpected error."""
    start = counts["ok"]

    def more() -> bool:
        assert not errors, errors
        return counts["ok"] >= start + n

    wait_until(more, timeout=SETTLE_S, what=what)


def test_terminated_backend_in_flight_raises_then_pool_recovers(pg_dsn: str, admin: Pool) -> None:
    app = app_name()
    with Pool(pg_dsn, min_size=2, max_size=4, application_name=app, wait=True) as pool:
        conn = pool.acquire()
        assert conn.execute("SELECT 1") == [(1,)]
        assert terminate(admin, app) == 2
        with pytest.raises(OperationalError) as ei:
            conn.execute("SELECT 1")
        assert ei.value.sqlstate in ("57P01", "08006")
        conn.release()
        # Later callers succeed on fresh connections.
        for _ in range(5):
            assert pool.execute("SELECT 1") == [(1,)]
        # The maintainer brings back min_size without anyone asking.
        wait_until(
            lambda: len(our_backends(admin, app)) == 2,
            timeout=SETTLE_S,
            what="the maintainer to bring back min_size",
        )
        assert pool.stats()["in_use"] == 0


def test_terminate_under_threaded_load(pg_dsn: str, admin: Pool) -> None:
    app = app_name()
    max_size = 4
    results: dict[str, int] = {"ok": 0, "operational": 0}
    other: list[BaseException] = []
    peak = [0]
    stop = threading.Event()
    lock = threading.Lock()

    with Pool(pg_dsn, min_size=2, max_size=max_size, application_name=app) as pool:

        def worker() -> None:
            while not stop.is_set():
                try:
                    with pool.connection() as conn:
                        conn.execute("SELECT pg_sleep(0.005)")
                    key = "ok"
                except OperationalError:
                    key = "operational"
                except BaseException as e:
                    other.append(e)
                    return
                with lock:
                    results[key] += 1

        def served(n: int, what: str) -> None:
            _wait_served(results, other, n, what)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        try:
            for _ in range(5):
                served(20, "the load to run (again) before the next kill")
                terminate(admin, app)
                peak[0] = max(peak[0], len(our_backends(admin, app)))
            served(20, "the load to run again after the last kill")
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        assert not other, other
        assert results["ok"] > 50
        assert peak[0] <= max_size
        # Once the killing stops, everything works again.
        assert pool.execute("SELECT 1") == [(1,)]
        assert pool.stats()["in_use"] == 0
    wait_until(
        lambda: our_backends(admin, app) == [],
        timeout=SETTLE_S,
        what="every backend of the pool to end",
    )


def _stop(pg: TempPostgres) -> None:
    assert pg.root is not None
    pg._run("pg_ctl", ["-D", str(pg.root / "data"), "-m", "fast", "-w", "stop"])


def _start(pg: TempPostgres) -> None:
    assert pg.root is not None
    data = str(pg.root / "data")
    opts = (
        f"-c listen_addresses=127.0.0.1 -p {pg.port} -k {pg.root / 'sock'} -c fsync=off "
        "-c max_connections=200"
    )
    pg._run("pg_ctl", ["-D", data, "-l", str(pg.root / "server.log"), "-o", opts, "-w", "start"])


@pytest.mark.slow
def test_server_restart_during_load() -> None:
    app = app_name()
    with TempPostgres() as pg:
        max_size = 4
        errors: list[BaseException] = []
        counts = {"ok": 0, "failed": 0}
        last_ok = [0.0]
        stop = threading.Event()
        lock = threading.Lock()
        with Pool(
            pg.dsn(),
            min_size=2,
            max_size=max_size,
            application_name=app,
            connect_timeout=2,
            acquire_timeout=3,
        ) as pool:

            def worker() -> None:
                while not stop.is_set():
                    try:
                        pool.execute("SELECT 1")
                        with lock:
                            counts["ok"] += 1
                            last_ok[0] = time.monotonic()
                    except (OperationalError, PoolTimeout):
                        with lock:
                            counts["failed"] += 1
                        time.sleep(0.01)  # a pause, not a wait: no busy loop while it is down
                    except BaseException as e:
                        errors.append(e)
                        return

            def served(n: int, what: str) -> None:
                _wait_served(counts, errors, n, what)

            threads = [threading.Thread(target=worker) for _ in range(6)]
            for t in threads:
                t.start()
            try:
                served(20, "the load to run")
                _stop(pg)
                wait_until(
                    lambda: counts["failed"] > 0,
                    timeout=SETTLE_S,
                    what="the workers to see the server gone",
                )
                _start(pg)
                back = time.monotonic()
                wait_until(lambda: last_ok[0] > back, timeout=5.0, what="the pool to recover")
                served(20, "the load to run on the recovered pool")
            finally:
                stop.set()
                for t in threads:
                    t.join(30)
            assert not errors, errors
            assert counts["failed"] > 0  # the outage was seen...
            n = int(
                pg.psql(f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}'")
            )
            assert n <= max_size
        # ...and close() leaves nothing behind on the server.
        wait_until(
            lambda: (
                int(
                    pg.psql(
                        f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}'"
                    )
                )
                == 0
            ),
            timeout=SETTLE_S,
            what="every session of the pool to end on the server",
        )


def test_unreachable_server_fails_fast_with_clear_error() -> None:
    pg = TempPostgres().start()
    dsn = pg.dsn()
    pg.stop()
    with Pool(dsn, min_size=1, max_size=2, connect_timeout=2) as pool:
        start = time.monotonic()
        with pytest.raises(OperationalError, match="could not connect"):
            pool.execute("SELECT 1")
        assert time.monotonic() - start < 3
        assert pool.stats()["errors"] >= 1
        assert pool.check(timeout=1)["ok"] is False


def test_exhaustion_fifo_and_timeout(pg_dsn: str) -> None:
    # One connection: each waiter gets it in turn, so the order they record is the hand-over order.
    with Pool(pg_dsn, min_size=0, max_size=1, acquire_timeout=5) as pool:
        held = [pool.acquire()]
        order: list[int] = []
        lock = threading.Lock()

        def waiter(i: int) -> None:
            with pool.connection() as conn:
                with lock:
                    order.append(i)
                conn.execute("SELECT 1")

        threads = []
        for i in range(4):
            t = threading.Thread(target=waiter, args=(i,))
            t.start()
            threads.append(t)
            wait_until(
                lambda n=i + 1: pool.stats()["waiting"] == n,
                timeout=SETTLE_S,
                what=f"waiter {i} to queue",
            )
        for c in held:
            c.release()
        for t in threads:
            t.join(10)
        assert order == [0, 1, 2, 3]

    with Pool(pg_dsn, min_size=0, max_size=2, acquire_timeout=5) as pool:
        held = [pool.acquire(), pool.acquire()]
        start = time.monotonic()
        with pytest.raises(PoolTimeout) as ei:
            pool.acquire(timeout=0.3)
        waited = time.monotonic() - start
        assert 0.25 < waited < 2
        assert 0.25 < ei.value.waited < 2
        assert "size 2/2" in str(ei.value)
        assert "in use 2" in str(ei.value)
        assert isinstance(ei.value, TimeoutError)
        assert pool.stats()["timeouts"] == 1
        for c in held:
            c.release()
        assert pool.stats()["waiting"] == 0
        assert pool.stats()["idle"] == 2  # the timed-out wait leaked nothing


def test_max_waiting_fails_fast(pg_dsn: str) -> None:
    with Pool(pg_dsn, min_size=0, max_size=1, max_waiting=1, acquire_timeout=5) as pool:
        held = pool.acquire()
        t = threading.Thread(target=lambda: pool.acquire(timeout=1).release())
        t.start()
        wait_until(
            lambda: pool.stats()["waiting"] == 1, timeout=SETTLE_S, what="the waiter to queue"
        )
        with pytest.raises(PoolTimeout, match="queue is full"):
            pool.acquire()
        held.release()
        t.join(5)


def test_leak_warning_names_where_acquired(pg_dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="blocktrust_native.pool")
    with Pool(
        pg_dsn, min_size=0, max_size=2, leak_threshold=0.2, maintenance_interval=0.05
    ) as pool:
        conn = pool.acquire()  # the leak warning must point at this line
        wait_until(lambda: pool.stats()["leaks"] == 1, timeout=3, what="the leak warning")
        conn.release()
    msgs = [r.getMessage() for r in caplog.records if r.name == "blocktrust_native.pool"]
    assert any("held for" in m and "test_leak_warning_names_where_acquired" in m for m in msgs)


def test_statement_timeout_cancels_and_connection_stays_usable(pg_dsn: str) -> None:
    with Pool(pg_dsn, min_size=0, max_size=1, statement_timeout=0.2) as pool:
        with pool.connection() as conn:
            pid = conn.backend_pid
            start = time.monotonic()
            with pytest.raises(OperationalError, match="statement timeout") as ei:
                conn.execute("SELECT pg_sleep(5)")
            assert time.monotonic() - start < 2
            assert ei.value.sqlstate == "57014"
            assert conn.execute("SELECT 1") == [(1,)]
        with pool.connection() as conn:
            assert conn.backend_pid == pid  # same session: it was not discarded


def test_dirty_connections_are_never_handed_out(pg_dsn: str) -> None:
    with Pool(pg_dsn, min_size=0, max_size=1) as pool:
        pool.execute("CREATE TABLE IF NOT EXISTS dirty (v int)")
        pool.execute("TRUNCATE dirty")
        conn = pool.acquire()
        pid = conn.backend_pid
        conn.execute("BEGIN")
        conn.execute("INSERT INTO dirty VALUES (1)")
        conn.release()  # open transaction
        with pool.connection() as conn:
            assert conn.tx_status == "idle"
            assert conn.backend_pid == pid
            assert conn.execute("SELECT count(*) FROM dirty") == [(0,)]
            conn.execute("BEGIN")
            with pytest.raises(Error):
                conn.execute("SELECT * FROM no_such_table")
            assert conn.tx_status == "inerror"
        with pool.connection() as conn:  # failed transaction
            assert conn.tx_status == "idle"
            assert conn.execute("SELECT 1") == [(1,)]
        assert pool.stats()["rollbacks"] == 2


def test_validation_only_for_connections_idle_past_threshold(pg_dsn: str) -> None:
    with Pool(pg_dsn, min_size=0, max_size=1, validation_threshold=0.3) as pool:
        pool.execute("SELECT 1")
        before = pool.stats()["validations"]
        for _ in range(5):
            pool.execute("SELECT 1")  # used within the threshold: no round trip
        assert pool.stats()["validations"] == before
        time.sleep(0.5)  # the time must pass: idle past the 0.3 s threshold, checked on acquire
        pool.execute("SELECT 1")
        assert pool.stats()["validations"] == before + 1


def test_max_lifetime_and_idle_timeout(pg_dsn: str, admin: Pool) -> None:
    app = app_name()
    with Pool(
        pg_dsn,
        min_size=0,
        max_size=3,
        max_lifetime=0.4,
        application_name=app,
        maintenance_interval=0.05,
    ) as pool:
        with pool.connection() as conn:
            first = conn.backend_pid
        wait_until(
            lambda: pool.stats()["connections_closed"] == 1,
            timeout=SETTLE_S,
            what="the maintainer to close the connection past its max_lifetime",
        )
        with pool.connection() as conn:
            assert conn.backend_pid != first
    app = app_name()
    with Pool(
        pg_dsn,
        min_size=1,
        max_size=3,
        idle_timeout=0.3,
        application_name=app,
        maintenance_interval=0.05,
    ) as pool:
        held = [pool.acquire() for _ in range(3)]
        for c in held:
            c.release()
        assert pool.stats()["size"] == 3
        wait_until(
            lambda: pool.stats()["size"] == 1,
            timeout=3,
            what="the idle connections to be closed down to min_size",
        )
        wait_until(
            lambda: len(our_backends(admin, app)) == 1,
            timeout=SETTLE_S,
            what="the server to see one backend of the pool",
        )


def test_close_with_deadline_cancels_running_statements(pg_dsn: str, admin: Pool) -> None:
    app = app_name()
    pool = Pool(pg_dsn, min_size=1, max_size=2, application_name=app)
    outcome: list[BaseException | None] = []
    started = threading.Event()

    def long_query() -> None:
        try:
            with pool.connection() as conn:
                started.set()
                conn.execute("SELECT pg_sleep(20)")
            outcome.append(None)
        except BaseException as e:
            outcome.append(e)

    t = threading.Thread(target=long_query)
    t.start()
    assert started.wait(5)
    wait_until(
        lambda: admin.execute(
            "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' "
            "AND query = 'SELECT pg_sleep(20)'",
            (app,),
        ),
        timeout=SETTLE_S,
        what="the long statement to run on the server",
    )
    start = time.monotonic()
    pool.close(deadline=0.5)
    assert time.monotonic() - start < 3
    t.join(5)
    assert isinstance(outcome[0], OperationalError)
    with pytest.raises(PoolClosed):
        pool.acquire()
    assert pool.stats()["closed"] is True
    wait_until(
        lambda: our_backends(admin, app) == [],
        timeout=SETTLE_S,
        what="every backend of the pool to end",
    )


def test_gil_is_released_during_queries(pg_dsn: str) -> None:
    with Pool(pg_dsn, min_size=0, max_size=1) as pool:
        ticks = [0]
        done = threading.Event()

        def spin() -> None:
            while not done.is_set():
                ticks[0] += 1
                time.sleep(0.001)  # a tick per ms while this thread can get the GIL

        t = threading.Thread(target=spin)
        t.start()
        pool.execute("SELECT pg_sleep(0.5)")  # the time must pass: the spinner runs meanwhile
        done.set()
        t.join()
        assert ticks[0] > 20  # about 400 when the GIL is free; 0 if it were held


def test_one_connection_refuses_concurrent_threads(pg_dsn: str, admin: Pool) -> None:
    with Pool(pg_dsn, min_size=0, max_size=1) as pool, pool.connection() as conn:
        errs: list[BaseException] = []
        pid = conn.backend_pid

        def long_query() -> None:
            with contextlib.suppress(OperationalError):  # cancelled once the other was refused
                conn.execute("SELECT pg_sleep(30)")

        t = threading.Thread(target=long_query)
        t.start()
        wait_until(
            lambda: admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", (pid,)
            ),
            timeout=SETTLE_S,
            what="the other thread's statement to run on the server",
        )
        try:
            conn.execute("SELECT 1")
        except Error as e:
            errs.append(e)
        conn.cancel()
        t.join(10)
        assert errs
        assert "another thread" in str(errs[0])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_child_after_fork_opens_its_own_connections(pg_dsn: str) -> None:
    with Pool(pg_dsn, min_size=1, max_size=2, wait=True) as pool:
        with pool.connection() as conn:
            parent_pid = conn.backend_pid
        r, w = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                with pool.connection() as conn:
                    mine = conn.backend_pid
                    ok = conn.execute("SELECT 41 + 1") == [(42,)]
                os.write(w, f"{mine} {int(ok)}".encode())
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        _, status = os.waitpid(child, 0)
        data = os.read(r, 100).decode().split()
        os.close(r)
        assert os.waitstatus_to_exitcode(status) == 0
        child_backend, ok = int(data[0]), data[1]
        assert ok == "1"
        assert child_backend != parent_pid
        # The child never touched the parent's socket: the parent's session still works.
        with pool.connection() as conn:
            assert conn.backend_pid == parent_pid
            assert conn.execute("SELECT 1") == [(1,)]


def test_listen_notify_on_a_dedicated_session(pg_dsn: str) -> None:
    with Pool(
        pg_dsn, min_size=0, max_size=2, leak_threshold=0.1, maintenance_interval=0.05
    ) as pool:
        listener = pool.acquire()
        listener.keep_out_of_pool()
        listener.execute("LISTEN bt_chan")
        assert listener.notifications(timeout=0.05) == []
        pool.execute("SELECT pg_notify('bt_chan', $1)", ("hello",))
        got = listener.notifications(timeout=2)
        assert [(c, p) for c, p, _pid in got] == [("bt_chan", "hello")]
        # The time must pass: held past the 0.1 s leak threshold, maintainer passes every 0.05 s
        # (what is asserted is an absence; no counter shows a maintainer pass).
        time.sleep(0.3)
        assert pool.stats()["leaks"] == 0  # dedicated sessions are not leaks
        pid = listener.backend_pid
        listener.release()
        assert pool.stats()["size"] == 1  # closed, not pooled (the pool_execute one stays)
        with pool.connection() as conn:
            assert conn.backend_pid != pid


def test_signal_ends_a_wait_for_a_connection(pg_dsn: str) -> None:
    import signal

    class Interrupted(Exception):
        pass

    def handler(_signum, _frame):
        raise Interrupted

    old = signal.signal(signal.SIGALRM, handler)
    try:
        with Pool(pg_dsn, min_size=0, max_size=1, acquire_timeout=10) as pool:
            held = pool.acquire()
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            start = time.monotonic()
            with pytest.raises(Interrupted):
                pool.acquire()
            assert time.monotonic() - start < 2
            assert pool.stats()["waiting"] == 0
            held.release()
            assert pool.execute("SELECT 1") == [(1,)]
            assert pool.stats()["in_use"] == 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_connect_timeout_bounds_a_silent_server() -> None:
    import socket

    # A socket that completes the TCP handshake (backlog) but never answers the startup packet.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        dsn = f"postgresql://u:pw_not_shown@127.0.0.1:{port}/db?sslmode=disable"
        with Pool(dsn, min_size=0, max_size=1, connect_timeout=2) as pool:
            start = time.monotonic()
            with pytest.raises(OperationalError) as ei:
                pool.execute("SELECT 1")
            took = time.monotonic() - start
        assert 1.5 < took < 5
        assert "pw_not_shown" not in str(ei.value)
