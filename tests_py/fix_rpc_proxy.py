"""A loopback JSON-RPC proxy in front of a real node that behaves like a picky provider.

It forwards every call to ``upstream`` (anvil) except what it is told to refuse: eth_getLogs ranges
wider than ``max_range`` blocks (as a JSON-RPC error, or as a bare HTTP 413), the ``finalized``
block tag (answered null or with an error, like a chain without finality), and batches.

    with RpcProxy(anvil.rpc_url, max_range=4) as proxy:
        Listener(pool, proxy.url, config)
"""

from __future__ import annotations

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["RpcProxy"]


class RpcProxy:
    """Start with ``with``; ``refused`` counts refusals, ``ranges`` lists forwarded getLogs
    ranges, ``get_logs`` every getLogs outcome in order, ``paths`` the request paths seen."""

    def __init__(
        self,
        upstream: str,
        *,
        max_range: int | None = None,
        refuse_as: str = "rpc",
        finalized: str = "pass",
        batches: bool = True,
    ) -> None:
        assert refuse_as in ("rpc", "http")
        assert finalized in ("pass", "null", "error")
        self.upstream = upstream
        self.max_range, self.refuse_as = max_range, refuse_as
        self.finalized, self.batches = finalized, batches
        self.refused = 0
        self.ranges: list[tuple[int, int]] = []
        # ("ok" | "refused", blocks) per eth_getLogs, in order
        self.get_logs: list[tuple[str, int]] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with proxy._lock:
                    proxy.paths.append(self.path)
                status, text = proxy._answer(json.loads(body))
                data = text.encode()
                self.send_response(status)
                ctype = "application/json" if status == 200 else "text/plain"
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

    def __enter__(self) -> RpcProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def _forward(self, call: dict[str, Any]) -> dict[str, Any]:
        req = urllib.request.Request(
            self.upstream, json.dumps(call).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]

    def _one(self, call: dict[str, Any]) -> dict[str, Any] | None:
        """The answer to one call; None for a refusal that must be a bare HTTP 413."""
        method, params, cid = call["method"], call.get("params") or [], call.get("id")
        if method == "eth_getLogs":
            first, last = int(params[0]["fromBlock"], 16), int(params[0]["toBlock"], 16)
            if self.max_range is not None and last - first + 1 > self.max_range:
                with self._lock:
                    self.refused += 1
                    self.get_logs.append(("refused", last - first + 1))
                if self.refuse_as == "http":
                    return None
                message = "query returned more than 10000 results"
                return {"jsonrpc": "2.0", "id": cid, "error": {"code": -32005, "message": message}}
            with self._lock:
                self.ranges.append((first, last))
                self.get_logs.append(("ok", last - first + 1))
        if method == "eth_getBlockByNumber" and params and params[0] == "finalized":
            if self.finalized == "null":
                return {"jsonrpc": "2.0", "id": cid, "result": None}
            if self.finalized == "error":
                error = {"code": -39001, "message": "finalized block not found"}
                return {"jsonrpc": "2.0", "id": cid, "error": error}
        return self._forward(call)

    def _answer(self, request: Any) -> tuple[int, str]:
        if isinstance(request, list):
            if not self.batches:
                error = {"code": -32600, "message": "batch requests are not supported"}
                return 200, json.dumps({"jsonrpc": "2.0", "id": None, "error": error})
            answers = [self._one(c) for c in request]
            if any(a is None for a in answers):
                return 413, "Request Entity Too Large"
            return 200, json.dumps(answers)
        answer = self._one(request)
        if answer is None:
            return 413, "Request Entity Too Large"
        return 200, json.dumps(answer)
