"""A background thread that runs one step at a time until stopped (the listener, the chain worker).

A step returns True while it has more to do right away (run again at once) and False when it is
idle (wait ``interval`` seconds, or until ``stop()``). A step that raises is logged (with its
traceback at ERROR when ``tracebacks``, else one WARNING line) and counts as idle, so a worker
outlives a node or database that is briefly away.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["PollingThread"]


class PollingThread:
    """Runs ``step`` on a daemon thread named ``name`` from ``start()`` until ``stop()``."""

    def __init__(
        self,
        step: Callable[[], bool],
        interval: float,
        *,
        name: str,
        log: logging.Logger,
        tracebacks: bool = False,
    ) -> None:
        self._step = step
        self.interval = interval
        self.name = name
        self._log = log
        self._tracebacks = tracebacks
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Starts the thread; a no-op while it runs."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Asks the thread to stop and waits up to ``timeout`` s for the step in progress."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self._step()
            except Exception as exc:  # keep going: the next step retries
                if self._tracebacks:
                    self._log.exception("%s: step failed", self.name)
                else:
                    self._log.warning("%s: step failed: %s", self.name, exc)
                busy = False
            if not busy:
                self._stop.wait(self.interval)
