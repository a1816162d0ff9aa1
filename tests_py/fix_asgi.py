"""An ASGI app served by uvicorn on a free loopback port for the duration of a test."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn
from fix_wait import wait_until


@contextlib.contextmanager
def serve_asgi(app: Any, **config: Any) -> Iterator[str]:
    """Runs ``app`` under uvicorn (h11, no lifespan, no websockets; ``config`` adds
    ``uvicorn.Config`` options) in a thread on a free loopback port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    options: dict[str, Any] = {
        "log_level": "warning",
        "lifespan": "off",
        "ws": "none",
        "http": "h11",
    }
    server = uvicorn.Server(uvicorn.Config(app, **(options | config)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()

    def started() -> bool:
        assert server.started or thread.is_alive(), "uvicorn exited before it started"
        return bool(server.started)

    wait_until(started, timeout=10, what="uvicorn to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
