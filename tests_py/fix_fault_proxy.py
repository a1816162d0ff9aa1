"""A loopback JSON-RPC proxy in front of a real node that misbehaves like real providers and chains.

- ``fail_rate``: that share of calls fails, in turn as an HTTP 503, a connection held open past
  the client's timeout (``hang_s``), or a connection reset (RST) — the calls are still forwarded
  first when ``forward_failed`` (a write the node accepted whose answer is lost);
- ``poa``: every block in an answer gets 97 bytes of ``extraData``, as Polygon's Bor serves them.

    with FaultProxy(anvil.rpc_url, fail_rate=0.3, seed=1) as proxy:
        ChainClient(proxy.url, key, timeout=2)
"""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["BOR_EXTRA_DATA", "FaultProxy"]

#: 32 bytes of vanity plus a 65-byte seal: the extraData length of a Bor block.
BOR_EXTRA_DATA = "0x" + "d9" * 32 + "ab" * 65


class FaultProxy:
    """Start with ``with``; ``calls`` and ``failures`` (by kind) count what happened."""

    def __init__(
        self,
        upstream: str,
        *,
        fail_rate: float = 0.0,
        hang_s: float = 3.0,
        poa: bool = False,
        seed: int = 0,
        forward_failed: bool = True,
    ) -> None:
        self.upstream = upstream
        self.fail_rate, self.hang_s, self.poa = fail_rate, hang_s, poa
        self.forward_failed = forward_failed
        self.calls = 0
        self.failures: dict[str, int] = {"503": 0, "hang": 0, "reset": 0}
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                fault = proxy._draw()
                answer = b""
                if fault is None or proxy.forward_failed:
                    answer = proxy._forward(body)
                if fault == "503":
                    self._reply(503, b"Service Unavailable", "text/plain")
                elif fault == "hang":
                    proxy._closing.wait(proxy.hang_s)
                    self.close_connection = True
                elif fault == "reset":
                    # SO_LINGER 0: close sends RST, the client sees "connection reset by peer".
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                else:
                    self._reply(200, proxy._rewrite(answer), "application/json")

            def _reply(self, status: int, data: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The proxy's endpoint."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def _draw(self) -> str | None:
        with self._lock:
            self.calls += 1
            if self._rng.random() >= self.fail_rate:
                return None
            kind = self._rng.choice(("503", "hang", "reset"))
            self.failures[kind] += 1
            return kind

    def _forward(self, body: bytes) -> bytes:
        req = urllib.request.Request(self.upstream, body, {"Content-Type": "application/json"})
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    return resp.read()  # type: ignore[no-any-return]
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _rewrite(self, answer: bytes) -> bytes:
        if not self.poa:
            return answer
        data = json.loads(answer)
        for item in data if isinstance(data, list) else [data]:
            result = item.get("result") if isinstance(item, dict) else None
            if isinstance(result, dict) and "extraData" in result and "miner" in result:
                result["extraData"] = BOR_EXTRA_DATA
        return json.dumps(data).encode()
