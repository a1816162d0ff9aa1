"""A small HTTP/1.1 server of our own that misbehaves on demand, for the flow runner's tests.

Runs an asyncio loop in a background thread on 127.0.0.1 (optionally TLS). Routes:
/json, /echo, /chunked, /status/NNN, /login (sets a cookie, returns a token), /me (needs the cookie
or the bearer token), /redirect, /big, /garbage, /reset (resets mid-body), /endless-headers,
/trickle (one byte every 0.2 s), /serial?ms=N (one request at a time: an overloadable server),
/ready-after/N/KEY ({"ready": false} until its N-th hit, then true: something to poll),
/echo/... (as /echo, under any path), /redirect-to?url=U&status=S (a redirect to U),
/set-cookie/...?h=V&h=W (one Set-Cookie header per h, under any path; echoes the headers).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import struct
import threading
import uuid
from urllib.parse import parse_qs, urlsplit

__all__ = ["MisbehavingServer"]


class MisbehavingServer:
    """Start with ``with MisbehavingServer() as srv: srv.url``; counts requests per path."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self.hits: dict[str, int] = {}
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._serial = asyncio.Lock()
        self.port = 0
        self.sessions: dict[str, str] = {}
        self.polls: dict[str, int] = {}

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:41234."""
        scheme = "https" if self.ssl_context else "http"
        host = "localhost" if self.ssl_context else "127.0.0.1"
        return f"{scheme}://{host}:{self.port}"

    def __enter__(self) -> MisbehavingServer:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        fut.result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            for t in asyncio.all_tasks():
                if t is not asyncio.current_task():
                    t.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(
            self._conn, "127.0.0.1", 0, ssl=self.ssl_context, backlog=1024
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _conn(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                line = await r.readline()
                if not line:
                    return
                method, target, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    h = await r.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = b""
                if "content-length" in headers:
                    body = await r.readexactly(int(headers["content-length"]))
                keep = await self._route(method, target, headers, body, w)
                await w.drain()
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            w.close()

    def _send(
        self, w: asyncio.StreamWriter, status: int, body: bytes, extra: list[tuple[str, str]] = ()
    ) -> None:
        head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in extra]
        w.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    async def _route(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        w: asyncio.StreamWriter,
    ) -> bool:
        u = urlsplit(target)
        q = parse_qs(u.query)
        path = u.path
        key = "/" + path.split("/")[1]
        self.hits[key] = self.hits.get(key, 0) + 1
        jh = [("Content-Type", "application/json")]
        if path == "/json":
            self._send(w, 200, json.dumps({"me": "alice", "n": 5, "items": [1, 2]}).encode(), jh)
        elif path == "/echo" or path.startswith("/echo/"):
            doc = {
                "method": method,
                "path": target,
                "headers": headers,
                "body": body.decode("utf-8", "replace"),
            }
            self._send(w, 200, json.dumps(doc).encode(), jh)
        elif path == "/chunked":
            payload = json.dumps({"chunked": True, "pad": "x" * 3000}).encode()
            w.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                b"Content-Type: application/json\r\n\r\n"
            )
            for i in range(0, len(payload), 1000):
                part = payload[i : i + 1000]
                w.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                await w.drain()
                await asyncio.sleep(0.01)  # chunks arrive apart: the client must join them
            w.write(b"0\r\n\r\n")
        elif path.startswith("/status/"):
            self._send(w, int(path.split("/")[2]), b"{}", jh)
        elif path == "/login":
            doc = json.loads(body or b"{}")
            token = uuid.uuid4().hex
            sid = uuid.uuid4().hex
            self.sessions[sid] = doc.get("user", "")
            self.sessions[token] = doc.get("user", "")
            self._send(
                w,
                200,
                json.dumps({"access_token": token}).encode(),
                [*jh, ("Set-Cookie", f"sid={sid}; Path=/; HttpOnly")],
            )
        elif path == "/me":
            user = None
            auth = headers.get("authorization", "")
            if auth.startswith("Bearer "):
                user = self.sessions.get(auth[7:])
            for part in headers.get("cookie", "").split(";"):
                k, _, v = part.strip().partition("=")
                if k == "sid" and v in self.sessions:
                    user = self.sessions[v]
            if user is None:
                self._send(w, 401, b'{"error": "no session"}', jh)
            else:
                self._send(w, 200, json.dumps({"me": user}).encode(), jh)
        elif path == "/redirect":
            self._send(w, 302, b"", [("Location", "/json")])
        elif path == "/redirect-to":
            status = int(q.get("status", ["302"])[0])
            self._send(w, status, b"", [("Location", q["url"][0])])
        elif path == "/set-cookie" or path.startswith("/set-cookie/"):
            doc = json.dumps({"headers": headers}).encode()  # and what it was sent, as /echo
            self._send(w, 200, doc, [*jh, *(("Set-Cookie", v) for v in q.get("h", []))])
        elif path == "/big":
            self._send(w, 200, b"x" * (int(q.get("n", ["10000000"])[0])))
        elif path == "/garbage":
            w.write(os.urandom(512))
            return False
        elif path == "/reset":
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"y" * 1000)
            await w.drain()
            sock = w.get_extra_info("socket")
            if sock is not None:  # linger 0: close sends RST, not FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            w.transport.abort()
            return False
        elif path == "/endless-headers":
            w.write(b"HTTP/1.1 200 OK\r\n")
            for i in range(10_000_000):
                w.write(f"X-Filler-{i}: {'z' * 100}\r\n".encode())
                await w.drain()
            return False
        elif path == "/trickle":
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            for _ in range(100000):
                w.write(b"t")
                await w.drain()
                await asyncio.sleep(0.2)  # one byte per 0.2 s: only a timeout ends the read
            return False
        elif path.startswith("/ready-after/"):
            self.polls[path] = self.polls.get(path, 0) + 1
            ready = self.polls[path] >= int(path.split("/")[2])
            doc = {"ready": ready, "hits": self.polls[path]}
            self._send(w, 200, json.dumps(doc).encode(), [*jh, ("X-Poll", str(self.polls[path]))])
        elif path == "/serial":
            async with self._serial:
                await asyncio.sleep(int(q.get("ms", ["20"])[0]) / 1000)
            self._send(w, 200, b'{"ok": true}', jh)
        else:
            self._send(w, 404, b'{"error": "not found"}', jh)
        return True
