"""The exceptions blocktrust_native raises; every one derives from :class:`Error`.

Messages name the input that was wrong and never contain a secret (passwords, keys, tokens, DSN
passwords are redacted before they reach a message).
"""

from __future__ import annotations

__all__ = ["ConfigError", "Error", "FileReadError"]


class Error(Exception):
    """Root of every exception blocktrust_native raises; catch it to catch them all."""


class ConfigError(Error, ValueError):
    """Raised when a setting or argument is invalid (unknown algorithm, short secret, bad rule)."""


class FileReadError(Error, OSError):
    """Raised when a file cannot be opened or read; ``filename`` names it, ``errno`` says why."""
