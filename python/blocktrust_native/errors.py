"""The exceptions blocktrust_native raises; every one derives from :class:`Error`.

Messages name the input that was wrong and never contain a secret (passwords, keys, tokens, DSN
passwords are redacted before they reach a message).
"""

from __future__ import annotations

__all__ = ["ConfigError", "Error", "FileReadError", "RateLimitExceeded"]


class Error(Exception):
    """Root of every exception blocktrust_native raises; catch it to catch them all."""


class ConfigError(Error, ValueError):
    """Raised when a setting or argument is invalid (unknown algorithm, short secret, bad rule)."""


class FileReadError(Error, OSError):
    """Raised when a file cannot be opened or read; ``filename`` names it, ``errno`` says why."""


# --- ratelimit


class RateLimitExceeded(Error):
    """Raised by ``RateLimiter.check`` and the route decorator when a hit is denied."""

    def __init__(self, decision: object) -> None:
        retry = getattr(decision, "retry_after", 0.0)
        super().__init__(f"rate limit exceeded; retry after {retry:.3f}s")
        self.decision = decision
