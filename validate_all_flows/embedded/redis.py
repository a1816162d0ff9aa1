"""A throwaway Redis server for tests and benchmarks: Debian's ``redis-server`` in a temp dir on
127.0.0.1:<free port>, no persistence. Never the server that may run on 6379."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from validate_all_flows.embedded.postgres import free_port

__all__ = ["RedisServerError", "TempRedis", "find_redis_server"]


class RedisServerError(RuntimeError):
    """Raised when redis-server is missing or does not come up; the message says why."""


def find_redis_server() -> str:
    """The path of ``redis-server`` (Debian package ``redis-server``)."""
    path = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if path is None:
        raise RedisServerError("redis-server not found: install Debian's redis-server package")
    return path


class TempRedis:
    """A private redis-server; ``start()`` / ``stop()`` (or ``with``), ``kill()`` (SIGKILL,
    the port is kept) and ``restart()`` (same port, empty data: what a crash without persistence
    leaves). ``password`` turns on AUTH (``requirepass``)."""

    def __init__(self, *, password: str | None = None, extra: list[str] | None = None) -> None:
        self.binary = find_redis_server()
        self.password = password
        self.extra = list(extra or [])
        self.port = 0
        self.root: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The redis:// URL of this server (with the password when there is one)."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> TempRedis:
        """Starts the server on a free port and waits until it answers; returns self."""
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="blocktrust-redis-"))
        for attempt in range(5):
            if not self.port or attempt:
                self.port = self._pick_port()
            try:
                self._launch()
                return self
            except RedisServerError:
                if attempt == 4 or "in use" not in self.log():
                    self.stop()
                    raise
        return self

    def _pick_port(self) -> int:
        # A cluster node also listens on port + 10000 (its bus), so it needs a port below 55536.
        cluster = "--cluster-enabled" in self.extra
        for _ in range(200):
            port = free_port()
            if not cluster or port <= 55535:
                return port
        raise RedisServerError("no free port below 55536 for a cluster node")

    def _launch(self, deadline_s: float = 30.0) -> None:
        assert self.root is not None
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.root),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--logfile", str(self.root / "server.log"),
            "--maxclients", "1000",
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        args += self.extra
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RedisServerError(f"redis-server exited: {self.log()[-500:]}")
            if "Ready to accept connections" in self.log():
                return
            time.sleep(0.02)
        raise RedisServerError("redis-server did not come up within 30 s")

    def kill(self) -> None:
        """SIGKILL: the server dies at once, connections break, the data is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        # The port is free again once nothing listens (no TIME_WAIT on a listening socket).
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
            raise RedisServerError("the killed server still listens")

    def restart(self) -> None:
        """Starts again on the same port (empty: no persistence)."""
        self.kill()
        if self.root is not None:
            (self.root / "server.log").unlink(missing_ok=True)
        self._launch()

    def stop(self) -> None:
        """Stops the server and deletes its directory."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def log(self) -> str:
        """The server's log so far."""
        if self.root is None:
            return ""
        try:
            return (self.root / "server.log").read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> TempRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"TempRedis(127.0.0.1:{self.port})" if self.proc else "TempRedis(stopped)"
