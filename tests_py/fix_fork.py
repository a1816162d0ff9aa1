"""Running a function in a forked child, the way gunicorn's pre-fork workers start.

``child = Forked(fn)`` forks at once; the child runs ``fn(channel)`` and leaves with ``os._exit``
(never through pytest's teardown or the parent's atexit handlers). ``child.result(timeout)``
waits for it and returns what ``fn`` returned (a JSON value), or raises ``AssertionError`` with
the child's traceback, or when it did not end in time (it is then killed: a child that hangs is a
failure). While it runs, ``child.send(v)`` / ``channel.recv()`` and ``channel.send(v)`` /
``child.recv(timeout)`` pass JSON values both ways.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["Channel", "Forked"]


class Channel:
    """One end of the message line between parent and child (JSON values, one per line)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = b""

    def send(self, value: Any) -> None:
        """Sends one JSON value to the other end."""
        self._sock.sendall((json.dumps(value) + "\n").encode())

    def recv(self, timeout: float = 30.0) -> Any:
        """The next value from the other end; AssertionError when none came within ``timeout``."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._sock], [], [], left)[0]:
                raise AssertionError(f"no message from the other process within {timeout}s")
            chunk = self._sock.recv(65536)
            if not chunk:
                raise AssertionError("the other process closed the channel")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return json.loads(line)

    def close(self) -> None:
        self._sock.close()


class Forked:
    """A forked child running ``fn(channel)``; see the module docstring."""

    def __init__(self, fn: Callable[[Channel], Any]) -> None:
        mine, theirs = socket.socketpair()
        out_r, out_w = os.pipe()
        with warnings.catch_warnings():
            # Python 3.12+ warns when a process with threads forks (the pool's maintainer is one):
            # that is exactly the gunicorn situation these tests reproduce.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                mine.close()
                os.close(out_r)
                try:
                    value = {"ok": fn(Channel(theirs))}
                except BaseException:
                    value = {"error": traceback.format_exc()}
                data = memoryview(json.dumps(value).encode())
                while data:
                    data = data[os.write(out_w, data) :]
                code = 0
            finally:
                os._exit(code)
        theirs.close()
        os.close(out_w)
        os.set_blocking(out_r, False)
        self.pid = pid
        self._out = out_r
        self._channel = Channel(mine)

    def send(self, value: Any) -> None:
        """Passes one JSON value to the child (its ``channel.recv()``)."""
        self._channel.send(value)

    def recv(self, timeout: float = 30.0) -> Any:
        """The next value the child sent with ``channel.send``."""
        return self._channel.recv(timeout)

    def result(self, timeout: float = 30.0) -> Any:
        """Waits up to ``timeout`` s for the child to end; returns what its function returned."""
        deadline = time.monotonic() + timeout
        status = None
        data = b""
        while time.monotonic() < deadline:
            data += self._drain()
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                status = st
                break
            time.sleep(0.02)
        if status is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self._close()
            raise AssertionError(f"the forked child did not end within {timeout}s (it hung)")
        data += self._drain()
        self._close()
        code = os.waitstatus_to_exitcode(status)
        if code != 0 or not data:
            raise AssertionError(f"the forked child ended with {code} and no result")
        value = json.loads(data)
        if "error" in value:
            raise AssertionError("in the forked child:\n" + value["error"])
        return value["ok"]

    def _drain(self) -> bytes:
        data = b""
        while True:
            try:
                chunk = os.read(self._out, 65536)
            except BlockingIOError:
                return data
            if not chunk:
                return data
            data += chunk

    def _close(self) -> None:
        self._channel.close()
        with contextlib.suppress(OSError):
            os.close(self._out)
