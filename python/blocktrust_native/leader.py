"""One leader among the processes of a worker on one database: a PostgreSQL session advisory lock.

The listener and the monitor use it. Every process runs the same loop; before each step it makes
sure it holds the lock of its name (e.g. ``listener:<chain id>:<name>``) on a dedicated session
(``pg_try_advisory_lock``: standbys never block, they try again each interval). When the leader
dies, PostgreSQL ends its session and frees the lock, so a standby takes over on its next try
(within two intervals). No coordinator of our own: the database the workers already share.

Fencing: the lock alone cannot stop a leader that was paused (SIGSTOP, a long GC, a frozen VM)
while its session was ended and a standby took over: when it wakes it would finish the write it
had started. So every write transaction checks, after locking the checkpoint row and again just
before writing the checkpoint, that this process's lock session still holds the lock
(``pg_locks``), and raises :class:`LeadershipLost` (rolling everything back) if it does not. The
checkpoint row lock orders the two leaders' transactions, so what the old one committed before
losing the lock is exactly what the new one reads.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging

from blocktrust_native.errors import Error, LeadershipLost
from blocktrust_native.pool import Connection, Pool

__all__ = ["Leader", "LeadershipLost"]

log = logging.getLogger("blocktrust_native.leader")

_HOLDS = """
SELECT 1 FROM pg_locks
WHERE locktype = 'advisory' AND granted AND pid = $1 AND objsubid = 1
  AND classid::bigint = $2 AND objid::bigint = $3
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


class Leader:
    """The leader lock of ``name`` (e.g. "listener:137:blocktrust") on ``pool``'s database."""

    def __init__(self, pool: Pool, name: str) -> None:
        self.pool = pool
        self.name = name
        digest = hashlib.sha256(f"blocktrust.leader:{name}".encode()).digest()
        #: The advisory lock key (a signed 64-bit integer).
        self.key = int.from_bytes(digest[:8], "big", signed=True)
        unsigned = self.key & 0xFFFF_FFFF_FFFF_FFFF
        self._parts = (unsigned >> 32, unsigned & 0xFFFF_FFFF)  # pg_locks: classid, objid
        self._conn: Connection | None = None
        #: The backend pid of the session holding the lock while this process leads.
        self.pid: int | None = None
        self._standing_by = False
        #: Why the last ensure() could not ask the database (None when it could).
        self.last_error: Exception | None = None

    @property
    def leading(self) -> bool:
        """True while this process holds the lock (as far as it knows)."""
        return self.pid is not None

    def ensure(self) -> bool:
        """Takes the lock if free, or checks that the session holding it is alive; True when
        this process leads. Never blocks on another leader; a database error means False, with
        ``last_error`` set (None after an answer: then False means another process leads)."""
        self.last_error = None
        try:
            if self._conn is None:
                conn = self.pool.acquire()
                conn.keep_out_of_pool()
                self._conn = conn
            if self.pid is not None:
                self._conn.execute("SELECT 1")
                return True
            ((got,),) = self._conn.execute("SELECT pg_try_advisory_lock($1)", [self.key])
        except Error as exc:
            if self.pid is not None:
                log.warning("%s: leader session lost (%s); standing by", self.name, exc)
            self.last_error = exc
            self._drop()
            return False
        if got:
            self.pid = self._conn.backend_pid
            self._standing_by = False
            log.info("%s: leading (lock session %d)", self.name, self.pid)
            return True
        if not self._standing_by:
            log.info("%s: another process leads; standing by", self.name)
            self._standing_by = True
        return False

    def fence(self, conn: Connection) -> None:
        """Raises :class:`LeadershipLost` unless this process's lock session still holds the
        lock; call it inside the transaction that writes, on that transaction's connection."""
        pid = self.pid
        if pid is None or not conn.execute(_HOLDS, [pid, *self._parts]):
            if pid is not None:
                log.warning("%s: the leader lock is gone; not writing", self.name)
            self._drop()
            raise LeadershipLost(f"{self.name}: this process no longer leads")

    def release(self) -> None:
        """Gives the lock up (a standby takes over on its next try)."""
        conn = self._conn
        if conn is not None and self.pid is not None:
            with contextlib.suppress(Error):  # a session that is gone took the lock with it
                conn.execute("SELECT pg_advisory_unlock($1)", [self.key])
        self._drop()

    def _drop(self) -> None:
        self.pid = None
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Error):
                conn.release()  # kept out of the pool: closing it ends the session
