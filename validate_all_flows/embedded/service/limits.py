"""Request body caps for the reference service, enforced before any handler reads a byte, and
the cap on password hashes in flight.

A declared ``Content-Length`` over the cap is answered 413 at once (nothing is read); a body
without one (chunked) is counted as it streams and stopped at the cap. Whatever the app then
does with the interrupted body (a form parser's 400, say), the client gets the 413.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

__all__ = ["BodyLimit", "Busy", "HashingGate"]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _TooLarge(Exception):
    """The body passed its cap (raised from receive, so the app stops reading)."""


class BodyLimit:
    """ASGI middleware: at most ``per_path[path]`` bytes of body (``default`` elsewhere)."""

    def __init__(self, app: Any, *, default: int, per_path: Mapping[str, int] | None = None):
        self.app = app
        self.default = default
        self.per_path = dict(per_path or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.per_path.get(scope["path"], self.default)
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _answer(send, 400, "bad Content-Length")
                    return
                if declared > cap:
                    await _answer(send, 413, f"request body larger than {cap} bytes")
                    return
        seen = 0
        over = False
        started = False

        async def counted() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    over = True
                    raise _TooLarge
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if over:
                return  # the app's answer to a cut body is replaced by the 413 below
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except _TooLarge:
            pass
        except Exception:
            if not over:
                raise
        if over and not started:
            await _answer(send, 413, f"request body larger than {cap} bytes")


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class HashingGate:
    """At most ``size`` password hashes at once (Argon2 is memory-hard on purpose: unbounded
    concurrent logins would exhaust the host); counts what passed and the peak in flight."""

    def __init__(self, size: int, wait: float = 10.0) -> None:
        self._sem = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self.wait = wait
        self.in_flight = 0
        self.peak = 0
        self.passed = 0

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` once a slot is free; Busy when none frees up within ``wait`` s."""
        if not self._sem.acquire(timeout=self.wait):
            raise Busy
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.passed += 1
        try:
            return fn(*args)
        finally:
            with self._lock:
                self.in_flight -= 1
            self._sem.release()


class Busy(Exception):
    """Raised by HashingGate.run when every slot stayed taken (answer 503 with Retry-After)."""
