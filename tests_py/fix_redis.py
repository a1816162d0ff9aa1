"""Redis fixtures: a private redis-server per session (never the one that may run on 6379), and a
Sentinel set (a master, a replica and a Sentinel watching them) of a test's own."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fix_wait import wait_until

from blocktrust_native.redis import RedisClient
from validate_all_flows.embedded.postgres import free_port
from validate_all_flows.embedded.redis import TempRedis, find_redis_server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[TempRedis]:
    """The session's redis-server on a free loopback port (tests keep to their own keys)."""
    with TempRedis() as server:
        yield server


@pytest.fixture
def own_redis() -> Iterator[TempRedis]:
    """A redis-server of the test's own, which it may kill and restart."""
    with TempRedis() as server:
        yield server


class SentinelSet:
    """A master and its replica (redis-servers of their own) and one Sentinel watching them as
    ``mymaster`` (quorum 1), each on a free loopback port in a temp dir. ``url`` is the
    ``redis+sentinel://`` URL; ``failover()`` asks the Sentinel to promote the replica now."""

    name = "mymaster"

    def __init__(self) -> None:
        self.master = TempRedis()
        self.replica = TempRedis()
        self.port = 0
        self.root: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis+sentinel://127.0.0.1:<sentinel port>/mymaster``."""
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.name}"

    def start(self) -> SentinelSet:
        """Starts the three and waits until the Sentinel knows the replica."""
        self.master.start()
        self.replica.extra = ["--replicaof", "127.0.0.1", str(self.master.port)]
        self.replica.start()
        master = RedisClient(self.master.url, timeout=1.0)
        wait_until(
            lambda: (
                b"master_link_status:up"
                in RedisClient(self.replica.url, timeout=1.0).execute("INFO", "replication")
            ),
            timeout=30,
            what="the replica in sync",
            ignore=(Exception,),
        )
        wait_until(
            lambda: b"slave0:" in master.execute("INFO"),
            timeout=30,
            what="the master sees its replica",
            ignore=(Exception,),
        )
        self.root = Path(tempfile.mkdtemp(prefix="blocktrust-sentinel-"))
        self.port = free_port()
        conf = self.root / "sentinel.conf"  # the Sentinel rewrites it: its own file
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.root}\n"
            f"logfile {self.root / 'sentinel.log'}\n"
            f"sentinel monitor {self.name} 127.0.0.1 {self.master.port} 1\n"
            f"sentinel down-after-milliseconds {self.name} 1000\n"
            f"sentinel failover-timeout {self.name} 10000\n"
        )
        self.proc = subprocess.Popen(
            [find_redis_server(), str(conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(
            self._knows_replica,
            timeout=30,
            what="the Sentinel knows the replica",
            ignore=(Exception,),
        )
        return self

    def sentinel(self) -> RedisClient:
        """A client of the Sentinel itself (for SENTINEL commands)."""
        return RedisClient(f"redis://127.0.0.1:{self.port}", timeout=1.0)

    def _knows_replica(self) -> bool:
        # Connected to it and seeing it in sync: only such a replica can be promoted.
        for entry in self.sentinel().execute("SENTINEL", "REPLICAS", self.name):
            fields = dict(zip(entry[::2], entry[1::2], strict=True))
            if (
                fields.get(b"port") == str(self.replica.port).encode()
                and fields.get(b"flags") == b"slave"
                and fields.get(b"master-link-status") == b"ok"
            ):
                return True
        return False

    def master_port(self) -> int:
        """The master's port as the Sentinel names it now."""
        _host, port = self.sentinel().execute("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)
        return int(port)

    def failover(self) -> None:
        """SENTINEL FAILOVER: promotes the replica at once (no quorum or down-after wait), then
        waits until the Sentinel names it."""
        self.sentinel().execute("SENTINEL", "FAILOVER", self.name)
        wait_until(
            lambda: self.master_port() == self.replica.port,
            timeout=30,
            what="the Sentinel names the replica",
            ignore=(Exception,),
        )

    def stop(self) -> None:
        """Stops the three and deletes their directories."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
        self.replica.stop()
        self.master.stop()


@pytest.fixture
def redis_sentinel() -> Iterator[SentinelSet]:
    """A master, a replica and a Sentinel of the test's own (it may kill and fail over)."""
    s = SentinelSet()
    try:
        yield s.start()
    finally:
        s.stop()
