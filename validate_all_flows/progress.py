"""Progress of the operator tool's long phases (stack up, load, waiting for a version) on stderr.

On a terminal a phase is one bar redrawn in place; anywhere else (CI logs, pipes, files) each
update is a plain line, at most one a second per phase, so a log stays readable and greppable.
Messages are ``· text`` lines in both cases.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Writes messages and phase bars to ``stream`` (stderr); ``tty`` overrides detection and
    ``quiet`` silences everything; every text passes through ``redact`` (the target's) first.
    Callable as ``progress(message)``."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        quiet: bool = False,
        redact: Callable[[str], str] = lambda s: s,
    ) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.quiet = quiet
        self.redact = redact
        self._open = False  # a bar is drawn on the current line
        self._last_line: dict[str, float] = {}

    def __call__(self, message: str) -> None:
        """One message line (a bar in progress is finished first)."""
        if self.quiet:
            return
        self._close_bar()
        print(f"· {self.redact(message)}", file=self.stream, flush=True)

    def meter(self, label: str, done: float, total: float, note: str = "") -> None:
        """Where phase ``label`` stands: ``done`` of ``total`` (seconds, steps), with a note."""
        if self.quiet:
            return
        frac = 0.0 if total <= 0 else min(max(done / total, 0.0), 1.0)
        label, note = self.redact(label), self.redact(note)
        if not self.tty:
            now = time.monotonic()
            if now - self._last_line.get(label, -1e9) < 1.0 and frac < 1.0:
                return
            self._last_line[label] = now
            print(f"· {label}: {frac:4.0%} {note}".rstrip(), file=self.stream, flush=True)
            return
        cols = shutil.get_terminal_size((100, 20)).columns
        width = 24
        filled = round(frac * width)
        text = f"{label} [{'#' * filled}{'.' * (width - filled)}] {frac:4.0%} {note}"
        self.stream.write("\r\x1b[2K" + text[: cols - 1])
        self.stream.flush()
        self._open = True
        if frac >= 1.0:
            self._close_bar()

    def _close_bar(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
