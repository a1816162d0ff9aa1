"""The deployment's logs for the log checks: files (``--logs``) and a command's output
(``--logs-cmd``, e.g. ``journalctl -u api -n 500``), read once before the checks run."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

from validate_all_flows.target import InputError

__all__ = ["LOGS_CMD_TIMEOUT_S", "read_logs"]

LOGS_CMD_TIMEOUT_S = 60.0


def read_logs(paths: Sequence[str], cmd: str | None, prefix: str = "--") -> list[tuple[str, str]]:
    """``(source, text)`` for each file of ``paths`` and for the output of ``cmd`` (run without a
    shell, at most LOGS_CMD_TIMEOUT_S). InputError names the option (``{prefix}logs``,
    ``{prefix}logs-cmd``) and why; the command's stderr is in the message, so a caller whose
    inputs hold secrets redacts it."""
    out = []
    for path in paths:
        try:
            out.append((path, Path(path).read_text(errors="replace")))
        except OSError as exc:
            raise InputError(f"{prefix}logs {path}: {exc.strerror}") from None
    if cmd:
        try:
            argv = shlex.split(cmd)
        except ValueError as exc:
            raise InputError(f"{prefix}logs-cmd: {exc}") from None
        if not argv:
            raise InputError(f"{prefix}logs-cmd: no command given")
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=LOGS_CMD_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise InputError(f"{prefix}logs-cmd failed: {exc}") from None
        if proc.returncode != 0:
            why = proc.stderr.strip()[:200]
            raise InputError(f"{prefix}logs-cmd exited {proc.returncode}: {why}")
        out.append((cmd, proc.stdout))
    return out
