"""A throwaway PostgreSQL cluster: initdb + pg_ctl in a temporary directory, on 127.0.0.1.

Used by the embedded stack and by the tests, so neither depends on a server that happens to run on
the machine. PostgreSQL refuses to run as root; when we are root the server runs as the ``postgres``
user (created by Debian's ``postgresql`` package) through ``runuser``.

    with TempPostgres() as pg:
        dsn = pg.create_database("blocktrust")
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["PostgresError", "TempPostgres", "find_bindir", "free_port"]


class PostgresError(RuntimeError):
    """Raised when the throwaway cluster cannot be created, started or used; names the step."""


def find_bindir() -> Path:
    """The directory holding initdb and pg_ctl: ``$BLOCKTRUST_PG_BINDIR``, else the newest
    ``/usr/lib/postgresql/<major>/bin``, else ``pg_config --bindir``."""
    env = os.environ.get("BLOCKTRUST_PG_BINDIR")
    candidates = [Path(env)] if env else []
    candidates += sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    for c in candidates:
        if (c / "initdb").is_file() and (c / "pg_ctl").is_file():
            return c
    raise PostgresError(
        "no PostgreSQL server binaries found (initdb, pg_ctl); install Debian's 'postgresql' "
        "package (scripts/setup does) or set BLOCKTRUST_PG_BINDIR"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the caller retries if it is taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TempPostgres:
    """A private PostgreSQL cluster in a temp dir, listening on 127.0.0.1:<free port>, trust auth.

    Tuned for tests (fsync off): never put data you want to keep in it. ``stop()`` (or leaving the
    ``with`` block) stops the server and deletes the directory.
    """

    def __init__(self, *, log: Callable[[str], None] | None = None) -> None:
        self.bindir = find_bindir()
        self.port = 0
        self.root: Path | None = None
        self._log = log or (lambda _msg: None)
        self._as_postgres = os.geteuid() == 0

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> TempPostgres:
        """Creates the cluster and starts the server; returns self."""
        self.root = Path(tempfile.mkdtemp(prefix="blocktrust-pg-"))
        try:
            data, sock = self.root / "data", self.root / "sock"
            sock.mkdir()
            if self._as_postgres:
                pw = pwd.getpwnam("postgres")
                for p in (self.root, sock):
                    os.chown(p, pw.pw_uid, pw.pw_gid)
            self._log("initdb")
            self._run(
                "initdb",
                [
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "-N",
                ],
            )
            for attempt in range(5):
                self.port = free_port()
                opts = (
                    f"-c listen_addresses=127.0.0.1 -p {self.port} -k {sock} -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
                )
                self._log(f"starting PostgreSQL on 127.0.0.1:{self.port}")
                try:
                    self._run(
                        "pg_ctl",
                        [
                            "-D",
                            str(data),
                            "-l",
                            str(self.root / "server.log"),
                            "-o",
                            opts,
                            "-w",
                            "-t",
                            "60",
                            "start",
                        ],
                    )
                    return self
                except PostgresError:
                    if attempt == 4 or "could not bind" not in self.server_log():
                        raise
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stops the server (immediately: the data is throwaway) and deletes the directory."""
        if self.root is None:
            return
        data = self.root / "data"
        if (data / "postmaster.pid").exists():
            with contextlib.suppress(PostgresError):
                self._run("pg_ctl", ["-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> TempPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"127.0.0.1:{self.port}" if self.root else "stopped"
        return f"TempPostgres({state})"

    # -- use -------------------------------------------------------------------------------------

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq URL for ``dbname`` on this cluster (user postgres, no password: trust auth)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Runs ``sql`` with psql (stops at the first error) and returns its unaligned output."""
        out = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                self.dsn(dbname),
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise PostgresError(f"psql failed: {out.stderr.strip()}")
        return out.stdout

    def create_database(self, name: str) -> str:
        """Creates database ``name`` (letters, digits, underscore) and returns its DSN."""
        if not name.replace("_", "").isalnum() or not name[0].isalpha():
            raise PostgresError(f"invalid database name {name!r}: use letters, digits, underscore")
        self.psql(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def server_log(self) -> str:
        """The server's log so far ('' when there is none)."""
        if self.root is None:
            return ""
        try:
            return (self.root / "server.log").read_text(errors="replace")
        except OSError:
            return ""

    def _run(self, tool: str, args: list[str]) -> None:
        cmd = [str(self.bindir / tool), *args]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        started = time.monotonic()
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd="/")
        if out.returncode != 0:
            detail = (out.stderr or out.stdout).strip()[-2000:]
            raise PostgresError(
                f"{tool} failed after {time.monotonic() - started:.1f}s (exit {out.returncode}): "
                f"{detail}"
            )
