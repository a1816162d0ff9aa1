"""Loopback proxies in front of real servers, with fault hooks: the one forwarding loop behind the
misbehaving networks and providers of the tests.

:class:`LoopbackProxy` listens on 127.0.0.1 (a free port), serves each client connection on a
thread of its own and stops on leaving its ``with`` block. On it:

- :class:`FreezingProxy` (TCP bytes both ways): ``freeze(marker)`` makes the connections whose
  client sent ``marker`` vanish without a FIN, like a dead NAT entry or a DROP rule;
- :class:`ResettingProxy` (HTTP/1.1 requests): every ``every``-th request is read whole and
  answered with a TCP reset, the fault of a flaky load balancer;
- :class:`JsonRpcProxy` (JSON-RPC): forwards every call and counts them by method;
- :class:`RpcProxy` (JSON-RPC): a picky provider (getLogs ranges too wide, no ``finalized``
  block, no batches);
- :class:`FaultProxy` (JSON-RPC): a failing provider (503, a connection held open, a reset) and a
  Polygon-like chain (97 bytes of ``extraData``);
- :class:`HttpFaultProxy` (HTTP reverse proxy): a load balancer in front of a service that
  answers chosen paths itself (a 5xx, or a reset).

    with RpcProxy(anvil.rpc_url, max_range=4) as proxy:
        Listener(pool, proxy.url, config)
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import json
import random
import re
import socket
import struct
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "BOR_EXTRA_DATA",
    "FaultProxy",
    "FreezingProxy",
    "HttpFaultProxy",
    "JsonRpcProxy",
    "LoopbackProxy",
    "ResettingProxy",
    "RpcProxy",
]


def _reset_on_close(sock: socket.socket) -> None:
    """Linger 0: closing ``sock`` sends RST, not FIN (the peer sees "connection reset")."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class LoopbackProxy:
    """Listens on 127.0.0.1 (``port``, ``url``) and runs :meth:`serve` for each client
    connection on a daemon thread, from entering its ``with`` block until leaving it."""

    def __init__(self, backlog: int = 64) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=backlog)
        self.port: int = self._listener.getsockname()[1]
        self._closing = threading.Event()

    @property
    def url(self) -> str:
        """The proxy's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Any:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, address = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(client, address), daemon=True).start()

    def serve(self, client: socket.socket, address: Any) -> None:
        """Serves one client connection (the proxy's kind decides how)."""
        raise NotImplementedError


# -- TCP: bytes both ways


class _Link:
    def __init__(self) -> None:
        self.sent = bytearray()  # what the client sent (first 64 KiB), to match markers on
        self.frozen = False


class FreezingProxy(LoopbackProxy):
    """``with FreezingProxy(upstream_port) as p:`` then connect to ``p.port``; every byte goes
    through until :meth:`freeze`. Leaving the block closes every connection."""

    def __init__(self, upstream_port: int) -> None:
        super().__init__()
        self.upstream_port = upstream_port
        self._links: list[_Link] = []
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        with self._lock:
            for s in self._sockets:
                s.close()

    def freeze(self, marker: bytes) -> int:
        """Silences every connection whose client sent ``marker``; returns how many. Bytes in
        both directions are swallowed and nothing is closed (no FIN, no RST)."""
        n = 0
        with self._lock:
            for link in self._links:
                if marker in link.sent and not link.frozen:
                    link.frozen = True
                    n += 1
        return n

    def serve(self, client: socket.socket, address: Any) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        link = _Link()
        with self._lock:
            self._links.append(link)
            self._sockets += [client, upstream]
        threading.Thread(
            target=self._pump, args=(upstream, client, link, False), daemon=True
        ).start()
        self._pump(client, upstream, link, True)

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


# -- HTTP/1.1 requests (Content-Length bodies) over one upstream connection per client


def _read_message(sock: socket.socket, buf: bytearray) -> bytes | None:
    """One whole HTTP message from ``sock`` (head and Content-Length body); None at its end."""
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
    message = bytes(buf[: head_end + length])
    del buf[: head_end + length]
    return message


class ResettingProxy(LoopbackProxy):
    """``with ResettingProxy(upstream_port, every=4) as p: p.url``; every ``every``-th request
    (counted over all connections) is read whole and answered with a TCP reset: the request was
    sent, no byte of an answer came back. Counters: ``seen`` requests received,
    ``reset_fresh`` / ``reset_reused`` resets on a connection's first request / on a kept-alive
    connection that had already answered."""

    def __init__(self, upstream_port: int, every: int) -> None:
        super().__init__(backlog=256)
        self.upstream_port = upstream_port
        self.every = every
        self.seen = 0
        self.reset_fresh = 0
        self.reset_reused = 0
        self._lock = threading.Lock()

    @property
    def resets(self) -> int:
        """Every reset so far."""
        return self.reset_fresh + self.reset_reused

    def serve(self, client: socket.socket, address: Any) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        buf, ubuf = bytearray(), bytearray()
        served = 0
        try:
            while True:
                request = _read_message(client, buf)
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
                    _reset_on_close(client)  # no byte of an answer went out
                    return
                upstream.sendall(request)
                answer = _read_message(upstream, ubuf)  # same framing: head + Content-Length
                if answer is None:
                    return
                client.sendall(answer)
                served += 1
        except OSError:
            return
        finally:
            client.close()
            upstream.close()


# -- HTTP: each request handled by a hook (http.server's parsing, one thread per connection)


class HttpProxy(LoopbackProxy):
    """An HTTP/1.1 endpoint: :meth:`handle` gets each request, whatever its method."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                proxy.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = do_HEAD = _any

            def log_message(self, *args: Any) -> None:
                pass

        self._handler = Handler

    def serve(self, client: socket.socket, address: Any) -> None:
        try:
            self._handler(client, address, self)  # type: ignore[arg-type]  # the server: us
        finally:  # as socketserver ends a request: FIN, then close (RST with linger 0)
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_WR)
            client.close()

    @staticmethod
    def reply(h: BaseHTTPRequestHandler, status: int, data: bytes, ctype: str) -> None:
        """Answers ``h``'s request with ``data``."""
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        """Handles one request (the proxy's kind decides how)."""
        raise NotImplementedError


_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class HttpFaultProxy(HttpProxy):
    """A reverse proxy in front of the service at ``upstream``: every request is forwarded as it
    came (method, path, headers, body) and its answer returned as it came, except on paths
    matching a rule of ``faults`` (a path regex, matched with ``re.match``, to ``"reset"``: the
    connection closed without an answer, or a status such as ``"503"``: a bare answer with a
    short body, as a load balancer gives when the backend is away). ``hits`` counts the faults.

        with HttpFaultProxy(service_url, {"/api/kyc/webhook": "503"}) as proxy:
            Target(base_url=proxy.url)
    """

    def __init__(self, upstream: str, faults: dict[str, str]) -> None:
        super().__init__()
        self.upstream = urlsplit(upstream)
        self.faults = [(re.compile(k), v) for k, v in faults.items()]
        self.hits = 0

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        path = h.path.split("?", 1)[0]
        fault = next((f for rx, f in self.faults if rx.match(path)), None)
        if fault is not None:
            with self._lock:
                self.hits += 1
            if fault == "reset":  # as a crashed or killed backend does
                _reset_on_close(h.connection)
                h.connection.close()
                h.close_connection = True
                return
            status = int(fault)
            self.reply(h, status, f"{status} upstream unavailable\n".encode(), "text/plain")
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


# -- JSON-RPC over HTTP: each call answered by a hook, or forwarded to the node


class JsonRpcProxy(HttpProxy):
    """A JSON-RPC endpoint in front of the node at ``upstream``: :meth:`answer` decides each
    POST (by default: forward it). ``paths`` lists the request paths seen, ``methods`` counts
    the calls by method (each call of a batch)."""

    def __init__(self, upstream: str) -> None:
        super().__init__()
        self.upstream = upstream
        self.paths: list[str] = []
        self.methods: collections.Counter[str] = collections.Counter()

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        if h.command != "POST":
            h.send_error(501, f"Unsupported method ({h.command!r})")
            return
        body = h.rfile.read(int(h.headers.get("Content-Length", "0")))
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        calls = request if isinstance(request, list) else [request]
        with self._lock:
            self.paths.append(h.path)
            self.methods.update(str(c.get("method")) for c in calls if isinstance(c, dict))
        answer = self.answer(body, h.connection)
        if answer is None:  # no answer: the connection goes (the hook said how)
            h.close_connection = True
            return
        status, data = answer
        self.reply(h, status, data, "application/json" if status == 200 else "text/plain")

    def forward(self, body: bytes, *, retry_s: float = 0.0) -> bytes:
        """The node's answer to ``body``; connection failures are retried for ``retry_s``."""
        req = urllib.request.Request(self.upstream, body, {"Content-Type": "application/json"})
        deadline = time.monotonic() + retry_s
        while True:
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    return resp.read()  # type: ignore[no-any-return]
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def answer(self, body: bytes, connection: socket.socket) -> tuple[int, bytes] | None:
        """(status, body) of the answer to a POST of ``body`` on ``connection``; None to close
        the connection without one."""
        return 200, self.forward(body)


class RpcProxy(JsonRpcProxy):
    """A picky provider: forwards every call to ``upstream`` except what it is told to refuse:
    eth_getLogs ranges wider than ``max_range`` blocks (as a JSON-RPC error, or as a bare HTTP
    413), the ``finalized`` block tag (answered null or with an error, like a chain without
    finality), and batches. ``refused`` counts refusals, ``ranges`` lists forwarded getLogs
    ranges, ``get_logs`` every getLogs outcome in order."""

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
        super().__init__(upstream)
        self.max_range, self.refuse_as = max_range, refuse_as
        self.finalized, self.batches = finalized, batches
        self.refused = 0
        self.ranges: list[tuple[int, int]] = []
        # ("ok" | "refused", blocks) per eth_getLogs, in order
        self.get_logs: list[tuple[str, int]] = []

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
        return json.loads(self.forward(json.dumps(call).encode()))  # type: ignore[no-any-return]

    def answer(self, body: bytes, connection: socket.socket) -> tuple[int, bytes]:
        request = json.loads(body)
        too_large = 413, b"Request Entity Too Large"
        if isinstance(request, list):
            if not self.batches:
                error = {"code": -32600, "message": "batch requests are not supported"}
                return 200, json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()
            answers = [self._one(c) for c in request]
            if any(a is None for a in answers):
                return too_large
            return 200, json.dumps(answers).encode()
        one = self._one(request)
        return too_large if one is None else (200, json.dumps(one).encode())


#: 32 bytes of vanity plus a 65-byte seal: the extraData length of a Bor block.
BOR_EXTRA_DATA = "0x" + "d9" * 32 + "ab" * 65


class FaultProxy(JsonRpcProxy):
    """A failing provider and a Polygon-like chain in front of a real node:

    - ``fail_rate``: that share of calls fails, in turn as an HTTP 503, a connection held open
      past the client's timeout (``hang_s``), or a connection reset (RST); the calls are still
      forwarded first when ``forward_failed`` (a write the node accepted whose answer is lost);
    - ``poa``: every block in an answer gets 97 bytes of ``extraData``, as Polygon's Bor serves
      them.

    ``calls`` and ``failures`` (by kind) count what happened.

        with FaultProxy(anvil.rpc_url, fail_rate=0.3, seed=1) as proxy:
            ChainClient(proxy.url, key, timeout=2)
    """

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
        super().__init__(upstream)
        self.fail_rate, self.hang_s, self.poa = fail_rate, hang_s, poa
        self.forward_failed = forward_failed
        self.calls = 0
        self.failures: dict[str, int] = {"503": 0, "hang": 0, "reset": 0}
        self._rng = random.Random(seed)

    def _draw(self) -> str | None:
        with self._lock:
            self.calls += 1
            if self._rng.random() >= self.fail_rate:
                return None
            kind = self._rng.choice(("503", "hang", "reset"))
            self.failures[kind] += 1
            return kind

    def answer(self, body: bytes, connection: socket.socket) -> tuple[int, bytes] | None:
        fault = self._draw()
        answer = b""
        if fault is None or self.forward_failed:
            answer = self.forward(body, retry_s=60)
        if fault == "503":
            return 503, b"Service Unavailable"
        if fault == "hang":
            self._closing.wait(self.hang_s)
            return None
        if fault == "reset":
            _reset_on_close(connection)
            return None
        return 200, self._rewrite(answer)

    def _rewrite(self, answer: bytes) -> bytes:
        if not self.poa:
            return answer
        data = json.loads(answer)
        for item in data if isinstance(data, list) else [data]:
            result = item.get("result") if isinstance(item, dict) else None
            if isinstance(result, dict) and "extraData" in result and "miner" in result:
                result["extraData"] = BOR_EXTRA_DATA
        return json.dumps(data).encode()
