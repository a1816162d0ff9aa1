"""A TCP path to PostgreSQL whose chosen connections can become a black hole, in the kernel.

A user-space proxy that stops forwarding (``fix_proxy.FreezingProxy``) still lets its kernel
acknowledge every byte and answer every keepalive probe, so TCP keepalives and
``tcp_user_timeout`` never fire through it. Here the far end lives in a network namespace of its
own (``unshare -n``, joined to this one by a veth pair with private addresses): a forwarder there
accepts TCP on ``198.18.x.2:5432`` and relays to the server's Unix socket. ``hole(marker)`` adds,
in that namespace only, a policy rule that silently discards every packet the forwarder's kernel
sends on the connections whose client sent ``marker`` (acknowledgements, answers, keepalive
replies): to the client the peer has vanished without a FIN or a reset, as behind a dead NAT
entry. Nothing outside the namespace changes (its veth pair goes away with it). Needs root and
``ip`` / ``unshare``; :func:`available` says why not otherwise.

Run as a script, this module is that forwarder (driven by lines on stdin).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

__all__ = ["BlackHoleLink", "available", "blackhole_link"]


def available() -> str | None:
    """None when a BlackHoleLink can be made here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "needs root (a network namespace and a veth pair)"
    for tool in ("ip", "unshare"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class BlackHoleLink:
    """``with BlackHoleLink(unix_socket_path) as link:`` then connect to ``link.host``:5432."""

    def __init__(self, unix_socket: str) -> None:
        self.unix_socket = unix_socket
        self.host = ""
        self.port = 5432
        self.dbname = "postgres"
        self._proc: subprocess.Popen[str] | None = None
        self._iface = ""

    def __enter__(self) -> BlackHoleLink:
        self._proc = subprocess.Popen(
            ["unshare", "-n", sys.executable, os.path.abspath(__file__), self.unix_socket],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert self._ask("ready") == "ready"
            for _attempt in range(10):
                tag = f"{random.getrandbits(24):06x}"
                a, b = random.randrange(256), random.randrange(64) * 4
                here, there = f"198.18.{a}.{b + 1}", f"198.18.{a}.{b + 2}"
                host_if, ns_if = f"bth{tag}", f"btn{tag}"
                try:
                    _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if,
                        "netns", str(self._proc.pid))  # fmt: skip
                    self._iface = host_if
                    _ip("addr", "add", f"{here}/30", "dev", host_if)
                    _ip("link", "set", host_if, "up")
                except subprocess.CalledProcessError:
                    if self._iface:
                        subprocess.run(["ip", "link", "del", self._iface], capture_output=True)
                        self._iface = ""
                    continue  # a name or subnet in use: another draw
                break
            else:
                raise RuntimeError("could not set up a veth pair")
            reply = self._ask(f"up {ns_if} {there}/30 {here}")
            assert reply == "listening", reply
            self.host = there
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            assert self._proc.stdin is not None
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None
        if self._iface:  # normally gone with the namespace
            subprocess.run(["ip", "link", "del", self._iface], capture_output=True)
            self._iface = ""

    def dsn(self, dbname: str, **params: object) -> str:
        """A DSN through this link, with extra libpq parameters (e.g. keepalives_idle=1)."""
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"postgresql://postgres@{self.host}:{self.port}/{dbname}" + (
            f"?{query}" if query else ""
        )

    def hole(self, marker: bytes) -> int:
        """Makes every connection whose client sent ``marker`` a black hole; returns how many."""
        return int(self._ask("hole " + marker.hex()).split()[1])

    def heal(self) -> None:
        """Removes every black hole."""
        assert self._ask("heal") == "healed"

    def count(self, marker: bytes) -> int:
        """How many connections (open or closed) have sent ``marker``."""
        return int(self._ask("count " + marker.hex()).split()[1])

    def _ask(self, line: str) -> str:
        assert self._proc is not None
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        if line != "ready":
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()
        reply = self._proc.stdout.readline().strip()
        if not reply:
            raise RuntimeError(f"the forwarder ended (after {line!r})")
        return reply


@pytest.fixture
def blackhole_link(pg_cluster: Any, fresh_pg_dsn: str) -> Iterator[BlackHoleLink]:
    """A BlackHoleLink to the fresh database's cluster (skipped where one cannot be made);
    ``link.dsn(link.dbname, ...)`` reaches that database."""
    why = available()
    if why:
        pytest.skip(why)
    if pg_cluster is None or pg_cluster.root is None:
        pytest.skip("needs the fixtures' own cluster (its Unix socket)")
    u = urllib.parse.urlsplit(fresh_pg_dsn)
    with BlackHoleLink(str(Path(pg_cluster.root) / "sock" / f".s.PGSQL.{u.port}")) as link:
        link.dbname = u.path.lstrip("/")
        yield link


# ---- the forwarder, in its own network namespace ----------------------------------------------


class _Link:
    def __init__(self, peer_port: int) -> None:
        self.peer_port = peer_port
        self.sent = bytearray()
        self.holed = False


def _pump(src: socket.socket, dst: socket.socket, link: _Link | None) -> None:
    try:
        while data := src.recv(65536):
            if link is not None and len(link.sent) < 65536:
                link.sent += data
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def _forward(unix_socket: str, out: IO[str]) -> None:
    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    say("ready")
    cmd = sys.stdin.readline().split()
    assert cmd[0] == "up", cmd
    iface, addr, _peer = cmd[1], cmd[2], cmd[3]
    for args in (
        ("link", "set", "lo", "up"),
        ("addr", "add", addr, "dev", iface),
        ("link", "set", iface, "up"),
    ):
        _ip(*args)
    listener = socket.create_server((addr.split("/")[0], 5432), backlog=64)
    links: list[_Link] = []
    lock = threading.Lock()

    def accept() -> None:
        while True:
            try:
                client, peer = listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(unix_socket)
            link = _Link(peer[1])
            with lock:
                links.append(link)
            threading.Thread(target=_pump, args=(client, upstream, link), daemon=True).start()
            threading.Thread(target=_pump, args=(upstream, client, None), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    say("listening")
    rules: list[int] = []
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "hole":
            marker, n = bytes.fromhex(cmd[1]), 0
            with lock:
                for link in links:
                    if marker in link.sent and not link.holed:
                        pref = 100 + len(rules)
                        _ip("rule", "add", "pref", str(pref), "ipproto", "tcp", "sport", "5432",
                            "dport", str(link.peer_port), "blackhole")  # fmt: skip
                        rules.append(pref)
                        link.holed = True
                        n += 1
            say(f"holed {n}")
        elif cmd[0] == "heal":
            for pref in rules:
                _ip("rule", "del", "pref", str(pref))
            rules.clear()
            say("healed")
        elif cmd[0] == "count":
            marker = bytes.fromhex(cmd[1])
            with lock:
                say(f"count {sum(marker in link.sent for link in links)}")
    listener.close()


if __name__ == "__main__":
    _forward(sys.argv[1], sys.stdout)
