"""The exceptions blocktrust_native raises; every one derives from :class:`Error`.

Messages name the input that was wrong and never contain a secret (passwords, keys, tokens, DSN
passwords are redacted before they reach a message).
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DatabaseError",
    "Error",
    "FileReadError",
    "IntegrityError",
    "OperationalError",
    "PoolClosed",
    "PoolTimeout",
]


class Error(Exception):
    """Root of every exception blocktrust_native raises; catch it to catch them all."""


class ConfigError(Error, ValueError):
    """Raised when a setting or argument is invalid (unknown algorithm, short secret, bad rule)."""


class FileReadError(Error, OSError):
    """Raised when a file cannot be opened or read; ``filename`` names it, ``errno`` says why."""


# --- pool


class DatabaseError(Error):
    """Raised when PostgreSQL rejects a statement; ``sqlstate``, ``detail`` and ``hint`` say why."""

    def __init__(self, message: str, sqlstate: str = "", detail: str = "", hint: str = "") -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.detail = detail
        self.hint = hint

    def __str__(self) -> str:
        text = str(self.args[0]) if self.args else ""
        if self.sqlstate:
            text += f" (SQLSTATE {self.sqlstate})"
        if self.detail:
            text += f"\nDETAIL: {self.detail}"
        return text


class IntegrityError(DatabaseError):
    """Raised when a statement violates a constraint (unique, foreign key, check; SQLSTATE 23)."""


class OperationalError(DatabaseError):
    """Raised when a connection cannot be opened or is lost, or a statement is cancelled."""


class PoolTimeout(Error, TimeoutError):
    """Raised when no pooled connection came free in time; ``waited`` holds the seconds waited."""

    def __init__(self, message: str, waited: float = 0.0) -> None:
        super().__init__(message)
        self.waited = waited


class PoolClosed(Error):
    """Raised when a connection is asked of a pool that is closed or closing."""
