"""TCP keepalives and the user timeout of the pool's sessions: the settings reach the socket, and
they end a session whose server vanished without a FIN (a black hole in the kernel, not a mute
proxy whose kernel still acknowledges everything). Real PostgreSQL, started by the fixtures."""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.parse

import pytest
from fix_blackhole import BlackHoleLink

from blocktrust_native.pool import Connection, OperationalError, Pool

pytestmark = pytest.mark.pg


def _socket_of(conn: Connection) -> socket.socket:
    """A duplicate of this process's descriptor for the session's TCP socket (matched by the
    client port the server sees)."""
    [(port,)] = conn.execute("SELECT inet_client_port()")
    assert port, "not a TCP session"
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                continue
            s = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            if s.family in (socket.AF_INET, socket.AF_INET6) and s.getsockname()[1] == port:
                return s
        except OSError:
            pass
        s.close()
    raise AssertionError(f"no socket of this process has local port {port}")


def _tcp_settings(s: socket.socket) -> dict[str, int]:
    return {
        "keepalive": s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        "idle": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        "interval": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
        "count": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
        "user_timeout_ms": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
    }


def _with_params(dsn: str, **params: object) -> str:
    u = urllib.parse.urlsplit(dsn)
    query = "&".join([*filter(None, [u.query]), *(f"{k}={v}" for k, v in params.items())])
    return urllib.parse.urlunsplit(u._replace(query=query))


def test_the_pools_keepalive_and_user_timeout_reach_the_socket(pg_dsn: str) -> None:
    with Pool(pg_dsn, min_size=0, max_size=1) as pool, pool.connection() as conn:
        s = _socket_of(conn)
        with s:
            settings = _tcp_settings(s)
    # Not the kernel's defaults (no keepalive; 7200 s, 75 s, 9 probes; no user timeout).
    assert settings == {
        "keepalive": 1,
        "idle": 15,
        "interval": 5,
        "count": 3,
        "user_timeout_ms": 30000,
    }


def test_the_dsns_own_keepalive_settings_win(pg_dsn: str) -> None:
    dsn = _with_params(pg_dsn, keepalives_idle=7, keepalives_count=4, tcp_user_timeout=4500)
    with Pool(dsn, min_size=0, max_size=1) as pool, pool.connection() as conn:
        s = _socket_of(conn)
        with s:
            settings = _tcp_settings(s)
    assert settings == {
        "keepalive": 1,
        "idle": 7,
        "interval": 5,
        "count": 4,
        "user_timeout_ms": 4500,
    }


def test_keepalives_off_keep_the_user_timeout(pg_dsn: str) -> None:
    # libpq alone drops tcp_user_timeout when keepalives=0; the pool applies it itself.
    for params, user_timeout in (({}, 30000), ({"tcp_user_timeout": 2500}, 2500)):
        dsn = _with_params(pg_dsn, keepalives=0, **params)
        with Pool(dsn, min_size=0, max_size=1) as pool, pool.connection() as conn:
            s = _socket_of(conn)
            with s:
                settings = _tcp_settings(s)
        assert settings["keepalive"] == 0
        assert settings["user_timeout_ms"] == user_timeout


def test_keepalives_end_an_idle_listen_session_in_a_black_hole(
    blackhole_link: BlackHoleLink,
) -> None:
    link = blackhole_link
    # Keepalives alone (no user timeout): an idle session sends nothing, so only the probes
    # can find out that the server is gone: after 1 s idle, 2 probes 1 s apart.
    dsn = link.dsn(
        link.dbname,
        keepalives_idle=1,
        keepalives_interval=1,
        keepalives_count=2,
        tcp_user_timeout=0,
    )
    with Pool(dsn, min_size=0, max_size=1) as pool:
        conn = pool.acquire()
        conn.keep_out_of_pool()
        conn.execute("LISTEN bt_keepalive")
        assert link.hole(b"LISTEN") == 1
        deadline = time.monotonic() + 20
        lost = None
        while time.monotonic() < deadline:
            try:
                assert conn.notifications(timeout=0.5) == []
            except OperationalError as e:
                lost = e
                break
        conn.release()
        assert lost is not None, "the session in the black hole was never found dead"
        assert "connection lost" in str(lost)
        # The pool goes on with a fresh session (this one has no hole).
        assert pool.execute("SELECT 1") == [(1,)]


def test_the_user_timeout_ends_a_statement_sent_into_a_black_hole(
    blackhole_link: BlackHoleLink,
) -> None:
    link = blackhole_link
    # No keepalives: the unacknowledged statement is what fails, after tcp_user_timeout (without
    # it the kernel would retransmit for some fifteen minutes). libpq alone would ignore the user
    # timeout here (it applies it only with keepalives on); the pool sets it on the socket.
    dsn = link.dsn(link.dbname, keepalives=0, tcp_user_timeout=1500)
    with Pool(dsn, min_size=0, max_size=1) as pool:
        conn = pool.acquire()
        conn.keep_out_of_pool()
        conn.execute("LISTEN bt_user_timeout")
        assert link.hole(b"LISTEN") == 1
        outcome: list[BaseException | object] = []

        def run() -> None:
            try:
                outcome.append(conn.execute("SELECT 1"))
            except BaseException as e:
                outcome.append(e)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        t.join(20)
        if t.is_alive():
            link.heal()  # let the stuck thread finish before the pool closes
        assert outcome, "the statement in the black hole never failed"
        assert isinstance(outcome[0], OperationalError), outcome
        conn.release()
        assert pool.execute("SELECT 1") == [(1,)]
