"""The exceptions blocktrust_native raises; every one derives from :class:`Error`.

Messages name the input that was wrong and never contain a secret (passwords, keys, tokens, DSN
passwords are redacted before they reach a message).
"""

from __future__ import annotations

import errno

__all__ = [
    "ChainConnectionError",
    "ChainError",
    "ChainIdMismatch",
    "ConfigError",
    "ContractsConfigError",
    "DatabaseError",
    "Error",
    "FileAccessError",
    "FileReadError",
    "FlowSpecError",
    "HistogramFormatError",
    "HttpConfigError",
    "IntegrityError",
    "InvalidApiKey",
    "InvalidPasswordHash",
    "InvalidProof",
    "JsonRpcError",
    "LeadershipLost",
    "LeafIndexError",
    "MissingFileError",
    "NotBytesLike",
    "OperationalError",
    "PasswordError",
    "PoolClosed",
    "PoolTimeout",
    "RateLimitExceeded",
    "RedisConnectionError",
    "RedisError",
]


class Error(Exception):
    """Root of every exception blocktrust_native raises; catch it to catch them all."""


class ConfigError(Error, ValueError):
    """Raised when a setting or argument is invalid (unknown algorithm, short secret, bad rule)."""


class FileReadError(Error, OSError):
    """Raised when a file cannot be opened or read; ``filename`` names it, ``errno`` says why.

    Like ``open()``, a missing file is also a :class:`FileNotFoundError` and a refused one a
    :class:`PermissionError`: ``FileReadError(errno, message, filename)`` picks
    :class:`MissingFileError` or :class:`FileAccessError` from the errno, as ``OSError`` does.
    """

    def __new__(cls, *args: object, **kwargs: object) -> FileReadError:
        if cls is FileReadError and len(args) >= 2 and isinstance(args[0], int):
            cls = _FILE_ERRORS_BY_ERRNO.get(args[0], cls)
        return super().__new__(cls, *args, **kwargs)


class MissingFileError(FileReadError, FileNotFoundError):
    """Raised when the file to read does not exist (a FileReadError and a FileNotFoundError)."""


class FileAccessError(FileReadError, PermissionError):
    """Raised when reading the file is not permitted (a FileReadError and a PermissionError)."""


_FILE_ERRORS_BY_ERRNO: dict[int, type[FileReadError]] = {
    errno.ENOENT: MissingFileError,
    errno.EACCES: FileAccessError,
    errno.EPERM: FileAccessError,
}


# --- http


class HttpConfigError(ConfigError):
    """Raised for an HTTP request that cannot be sent at all (a malformed URL, an unsupported
    scheme, a CA file that cannot be loaded); also a :class:`ConfigError`."""


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


# --- chain


class ChainError(Error):
    """Root of the chain client's errors (validate_all_flows.embedded.chain); names the step."""


class ChainConnectionError(ChainError, ConnectionError):
    """Raised when the JSON-RPC endpoint cannot be reached or answers something that is not
    JSON-RPC; names the URL without its secrets (``http_status`` when set: the HTTP status, 0 when
    no answer arrived)."""


class ChainIdMismatch(ChainError):
    """Raised when the node's chain id differs from the configured one (wrong network)."""


class JsonRpcError(ChainError):
    """Raised when a JSON-RPC node answers an error object: ``code`` and ``message`` are the
    node's, ``data`` its extra detail as JSON text (or None); URL secrets are scrubbed out."""

    def __init__(
        self, what: str, code: int = 0, message: str = "", data: str | None = None
    ) -> None:
        super().__init__(what)
        self.code = code
        self.message = message
        self.data = data


class ContractsConfigError(ConfigError):
    """Raised when contracts_config.json is unreadable, malformed or lacks a contract or field."""


# --- leader (listener, monitor)


class LeadershipLost(Error):
    """Raised inside a worker's write when its process no longer holds the leader lock (the
    transaction is rolled back: a paused ex-leader never writes after a standby took over)."""


# --- ratelimit


class RateLimitExceeded(Error):
    """Raised by ``check(key)`` of a rate limiter when the hit is denied; carries ``decision``."""

    def __init__(self, decision: object) -> None:
        retry = getattr(decision, "retry_after", 0.0)
        super().__init__(f"rate limit exceeded; retry after {retry:.3f}s")
        self.decision = decision


# --- redis


class RedisError(Error):
    """Raised when Redis answers a command with an error reply (the reply's text is the message)."""


class RedisConnectionError(RedisError, ConnectionError):
    """Raised when Redis cannot be reached, refuses AUTH, or a connection breaks or times out."""


# --- passwords


class InvalidPasswordHash(Error, ValueError):
    """Raised when a stored password hash is not a well-formed Argon2 PHC string."""


class PasswordError(Error, ValueError):
    """Raised for an unusable password: too long, or a duress password equal to the normal one."""


# --- digest


class NotBytesLike(Error, TypeError):
    """Raised when data to hash or a Merkle leaf is not a bytes-like object (encode str first)."""


class InvalidProof(Error, ValueError):
    """Raised for a malformed Merkle proof: bad JSON, a hash that is not 32 bytes, a bad index."""


class LeafIndexError(Error, IndexError):
    """Raised when a Merkle proof or leaf hash is asked for an index outside the tree."""


# --- apikeys


class InvalidApiKey(Error, ValueError):
    """Raised when an API key is malformed (prefix, length, characters, checksum); not echoed."""


# --- flows


class FlowSpecError(Error, ValueError):
    """Raised when a flow spec is invalid; the message names the place (``steps[2].capture.x``)."""


class HistogramFormatError(Error, ValueError):
    """Raised when bytes given to ``Histogram.from_bytes`` are not a serialised histogram."""
