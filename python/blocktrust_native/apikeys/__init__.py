"""API keys: prefixed random tokens with a checksum, stored only as HMAC-SHA256 digests.

    from blocktrust_native import apikeys

    codec = apikeys.ApiKeyCodec(prefix="btk_live", secret=server_secret)  # >= 32 bytes
    key = codec.generate(role="client", expires=timedelta(days=90))
    store(key.key_id, key.digest, key.role, key.expires_at)  # never the token
    # later, on a request:
    parsed = codec.parse(token)                 # InvalidApiKey before any lookup or HMAC
    row = load(parsed.key_id)
    codec.verify(token, row.digest)             # constant-time

Token: ``<prefix>_<key id: 12 base62><secret: 28 base62><checksum: 6 base62>``, matching
:data:`TOKEN_REGEX`. The key id is public (random, independent of the secret part, which keeps
~166.7 bits); the checksum is CRC32 of ``<prefix>_<key id><secret>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from blocktrust_native.apikeys.codec import (
    MIN_SECRET_BYTES,
    TOKEN_REGEX,
    ApiKey,
    ApiKeyCodec,
    KeyRing,
    ParsedApiKey,
    Role,
    token_regex,
)
from blocktrust_native.errors import InvalidApiKey

__all__ = [
    "MIN_SECRET_BYTES",
    "TOKEN_REGEX",
    "ApiKey",
    "ApiKeyCodec",
    "InvalidApiKey",
    "IssuedKey",
    "KeyInfo",
    "KeyRing",
    "ParsedApiKey",
    "PgKeyStore",
    "Role",
    "token_regex",
]

if TYPE_CHECKING:
    from blocktrust_native.apikeys.store import IssuedKey, KeyInfo, PgKeyStore

_STORE_NAMES = {"IssuedKey", "KeyInfo", "PgKeyStore"}


def __getattr__(name: str) -> object:
    # The PostgreSQL store pulls in the pool (and asyncio): loaded on first use, not on import.
    if name in _STORE_NAMES:
        from blocktrust_native.apikeys import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
