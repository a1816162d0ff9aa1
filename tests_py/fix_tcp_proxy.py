"""A loopback TCP proxy that can make chosen connections vanish without a FIN.

``freeze(marker)`` turns every connection whose client has sent ``marker`` (e.g. ``b'LISTEN'``)
silent: bytes in both directions are swallowed, nothing is closed (no FIN, no RST). To both
ends the peer looks alive and mute, like a connection behind a dead NAT entry or a DROP rule.
"""

from __future__ import annotations

import socket
import threading

__all__ = ["FreezingProxy"]


class _Link:
    def __init__(self) -> None:
        self.sent = bytearray()  # what the client sent (first 64 KiB), to match markers on
        self.frozen = False


class FreezingProxy:
    """``with FreezingProxy(upstream_port) as p:`` then connect to ``p.port``."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self._listener.getsockname()[1]
        self._links: list[_Link] = []
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []

    def __enter__(self) -> FreezingProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()
        with self._lock:
            for s in self._sockets:
                s.close()

    def freeze(self, marker: bytes) -> int:
        """Silences every connection whose client sent ``marker``; returns how many."""
        n = 0
        with self._lock:
            for link in self._links:
                if marker in link.sent and not link.frozen:
                    link.frozen = True
                    n += 1
        return n

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            link = _Link()
            with self._lock:
                self._links.append(link)
                self._sockets += [client, upstream]
            threading.Thread(
                target=self._pump, args=(client, upstream, link, True), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(upstream, client, link, False), daemon=True
            ).start()

    def _pump(self, src: socket.socket, dst: socket.socket, link: _Link, from_client: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    if not link.frozen:
                        dst.shutdown(socket.SHUT_WR)
                    return
                if from_client and len(link.sent) < 65536:
                    link.sent += data
                if not link.frozen:  # frozen: swallowed, and nothing is ever closed
                    dst.sendall(data)
        except OSError:
            return
