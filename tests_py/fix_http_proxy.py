"""A loopback HTTP reverse proxy in front of a real service that injects faults on chosen paths.

Every request is forwarded to ``upstream`` as it came (method, path, headers, body) and its answer
returned as it came, except on paths matching a fault rule, which are answered by the proxy
itself: ``"503"`` (or any status as a string: a bare answer with a short body, as a load balancer
gives when the backend is away), ``"reset"`` (the connection closed without an answer).

    with FaultProxy(service_url, {"/api/kyc/webhook": "503"}) as proxy:
        Target(base_url=proxy.url)
"""

from __future__ import annotations

import http.client
import re
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["FaultProxy"]

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class FaultProxy:
    """Start with ``with``; ``faults`` maps a path regex (matched with ``re.match``) to the fault;
    ``hits`` counts the faults injected."""

    def __init__(self, upstream: str, faults: dict[str, str]) -> None:
        self.upstream = urlsplit(upstream)
        self.faults = [(re.compile(k), v) for k, v in faults.items()]
        self.hits = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                proxy._handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = do_HEAD = _any

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The proxy's base URL."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(10)
        self._server.server_close()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        path = h.path.split("?", 1)[0]
        fault = next((f for rx, f in self.faults if rx.match(path)), None)
        if fault is not None:
            with self._lock:
                self.hits += 1
            if fault == "reset":
                # SO_LINGER 0: the close sends a RST, as a crashed or killed backend does.
                h.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                h.connection.close()
                h.close_connection = True
                return
            status = int(fault)
            text = f"{status} upstream unavailable\n".encode()
            h.send_response(status)
            h.send_header("Content-Type", "text/plain")
            h.send_header("Content-Length", str(len(text)))
            h.end_headers()
            h.wfile.write(text)
            return
        conn = http.client.HTTPConnection(
            self.upstream.hostname or "127.0.0.1", self.upstream.port, timeout=30
        )
        try:
            headers = {k: v for k, v in h.headers.items() if k.lower() not in _HOP}
            conn.request(h.command, h.path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            h.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in _HOP:
                    h.send_header(k, v)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        finally:
            conn.close()
