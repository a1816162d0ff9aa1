"""The API-key codec: generate, parse and verify tokens under one secret or a ring of them."""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from blocktrust_native._native import apikeys as _native
from blocktrust_native.errors import ConfigError, InvalidApiKey

__all__ = [
    "MIN_SECRET_BYTES",
    "TOKEN_REGEX",
    "ApiKey",
    "ApiKeyCodec",
    "InvalidApiKey",
    "KeyRing",
    "ParsedApiKey",
    "Role",
    "token_regex",
]

#: Shortest accepted server secret, in bytes.
MIN_SECRET_BYTES: int = _native.MIN_SECRET_BYTES
_BODY = _native.KEY_ID_CHARS + _native.SECRET_CHARS + _native.CHECKSUM_CHARS
#: Matches every token of every prefix, for secret scanners (gitleaks, trufflehog, GitHub).
TOKEN_REGEX: str = rf"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)*_[0-9A-Za-z]{{{_BODY}}}\b"


def token_regex(prefix: str) -> str:
    """The scanner regex for the tokens of one prefix, e.g. ``btk_live_[0-9A-Za-z]{46}``."""
    return rf"\b{re.escape(prefix)}_[0-9A-Za-z]{{{_BODY}}}\b"


class Role(str, enum.Enum):
    """What a key may do; stored beside its digest."""

    ADMIN = "admin"
    AUDITOR = "auditor"
    CLIENT = "client"


@dataclass(frozen=True)
class ParsedApiKey:
    """The public parts of a well-formed token."""

    prefix: str
    key_id: str


@dataclass(frozen=True)
class ApiKey:
    """A freshly generated key: show ``token`` once to its owner, store the rest."""

    token: str = field(repr=False)
    key_id: str
    digest: bytes = field(repr=False)
    prefix: str
    role: Role
    created_at: datetime
    expires_at: datetime | None

    def is_expired(self, now: datetime | None = None) -> bool:
        """True when ``expires_at`` has passed (never for a key without expiry)."""
        if self.expires_at is None:
            return False
        return (now or datetime.now(timezone.utc)) >= self.expires_at


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise ConfigError(
            f"unknown API key role {role!r} (expected admin, auditor or client)"
        ) from None


def _expiry(expires: datetime | timedelta | None, now: datetime) -> datetime | None:
    if expires is None:
        return None
    if isinstance(expires, timedelta):
        expires = now + expires
    elif not isinstance(expires, datetime):
        raise ConfigError(f"expires must be a datetime or timedelta, not {type(expires).__name__}")
    elif expires.tzinfo is None:
        raise ConfigError("expires must be timezone-aware (e.g. datetime.now(timezone.utc) + ...)")
    if expires <= now:
        raise ConfigError("expires must be in the future")
    return expires


class ApiKeyCodec(_native.ApiKeyCodec):
    """Makes, parses, digests and verifies the API keys of one prefix under one server secret.

    Thread-safe. ``secret`` is bytes (or str, taken as UTF-8) of at least 32 bytes, else
    ConfigError; the prefix must match ``[a-z][a-z0-9]*(_[a-z0-9]+)*``.
    """

    def __init__(self, prefix: str, secret: bytes | str) -> None:
        super().__init__(prefix, secret)

    def __repr__(self) -> str:
        return f"ApiKeyCodec(prefix={self.prefix!r})"

    def generate(
        self, role: Role | str = Role.CLIENT, expires: datetime | timedelta | None = None
    ) -> ApiKey:
        """A new key with ``role`` and optional expiry (a datetime or a delta from now)."""
        checked = _role(role)
        now = datetime.now(timezone.utc)
        expires_at = _expiry(expires, now)
        token = self._new_token()
        return ApiKey(
            token=token,
            key_id=self._key_id(token),
            digest=self.digest(token),
            prefix=self.prefix,
            role=checked,
            created_at=now,
            expires_at=expires_at,
        )

    def parse(self, token: str) -> ParsedApiKey:
        """The public parts of ``token``; InvalidApiKey (with the reason) when it is malformed."""
        return ParsedApiKey(self.prefix, self._key_id(token))


class KeyRing:
    """The current server secret and previous ones, accepted during a rotation window.

    New keys and digests use the current secret. When :meth:`match` says a key matched a
    previous secret (index > 0), store ``ring.digest(token)`` in place of the old digest.
    """

    def __init__(self, prefix: str, current: bytes | str, *previous: bytes | str) -> None:
        self.codec = ApiKeyCodec(prefix, current)
        self._ring = _native.KeyRing(prefix, [current, *previous])

    def __repr__(self) -> str:
        return f"KeyRing(prefix={self.codec.prefix!r}, secrets={len(self._ring)})"

    def __len__(self) -> int:
        return len(self._ring)

    def generate(
        self, role: Role | str = Role.CLIENT, expires: datetime | timedelta | None = None
    ) -> ApiKey:
        """A new key under the current secret."""
        return self.codec.generate(role, expires)

    def parse(self, token: str) -> ParsedApiKey:
        """The public parts of ``token``; InvalidApiKey when it is malformed."""
        return self.codec.parse(token)

    def digest(self, token: str) -> bytes:
        """The digest of ``token`` under the current secret."""
        return self.codec.digest(token)

    def match(self, token: str, digest: bytes) -> int | None:
        """Index of the secret ``digest`` was made with (0 = current), or None; tries all."""
        return self._ring.match(token, digest)

    def verify(self, token: str, digest: bytes) -> bool:
        """True when ``digest`` matches ``token`` under any secret of the ring."""
        return self._ring.match(token, digest) is not None

    def verify_many(self, tokens: Sequence[str], digests: Sequence[bytes]) -> list[bool]:
        """Batch verify under the current secret only (rotate stored digests first)."""
        return self.codec.verify_many(tokens, digests)
