"""A loopback TCP proxy that resets connections: the fault of a flaky load balancer.

It forwards HTTP/1.1 requests (Content-Length bodies) to an upstream server over one upstream
connection per client connection, and every ``every``-th request it receives (counted over all
connections) it reads whole and then answers with a TCP reset instead of forwarding it: the
request was sent, no byte of an answer came back. It counts what it saw, so a test can tell
a counted failure, a counted retry and a silent resend apart.
"""

from __future__ import annotations

import socket
import struct
import threading

__all__ = ["ResettingProxy"]


def _read_request(sock: socket.socket, buf: bytearray) -> bytes | None:
    """One whole request from `sock` (head and Content-Length body); None at end of stream."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk
    head_end = buf.index(b"\r\n\r\n") + 4
    length = 0
    for line in bytes(buf[:head_end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(buf) < head_end + length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk
    request = bytes(buf[: head_end + length])
    del buf[: head_end + length]
    return request


class ResettingProxy:
    """``with ResettingProxy(upstream_port, every=4) as p: p.url``; counters: ``seen`` requests
    received, ``reset_fresh`` / ``reset_reused`` resets on a connection's first request / on a
    kept-alive connection that had already answered."""

    def __init__(self, upstream_port: int, every: int) -> None:
        self.upstream_port = upstream_port
        self.every = every
        self.seen = 0
        self.reset_fresh = 0
        self.reset_reused = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._closing = False

    @property
    def url(self) -> str:
        """Base URL of the proxy."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def resets(self) -> int:
        """Every reset so far."""
        return self.reset_fresh + self.reset_reused

    def __enter__(self) -> ResettingProxy:
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(client,), daemon=True)
            t.start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        buf, ubuf = bytearray(), bytearray()
        served = 0
        try:
            while True:
                request = _read_request(client, buf)
                if request is None:
                    return
                with self._lock:
                    self.seen += 1
                    reset = self.seen % self.every == 0
                    if reset and served:
                        self.reset_reused += 1
                    elif reset:
                        self.reset_fresh += 1
                if reset:
                    # Linger 0: close() sends RST, not FIN; no byte of an answer went out.
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                upstream.sendall(request)
                answer = _read_request(upstream, ubuf)  # same framing: head + Content-Length
                if answer is None:
                    return
                client.sendall(answer)
                served += 1
        except OSError:
            return
        finally:
            client.close()
            upstream.close()
