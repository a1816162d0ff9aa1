"""Argon2id password hashing (PHC strings) and the dual check for normal and duress passwords.

    from blocktrust_native import passwords

    normal, duress = passwords.hash_dual("correct horse", "duress horse")
    passwords.check_dual("duress horse", normal, duress)   # DualResult.DURESS

Hashes are standard PHC strings (``$argon2id$v=19$m=19456,t=2,p=1$salt$hash``) that argon2-cffi,
passlib and libsodium-based code read and write too. Defaults are OWASP's Argon2id parameters
(19 MiB, 2 iterations, 1 lane). Every call releases the GIL while hashing, so threads hash in
parallel.

``check_dual`` always verifies both hashes, in a fixed order, and returns a result of the same
type in every case: neither its timing nor its shape tells which one matched.
"""

from __future__ import annotations

import enum

from blocktrust_native._native import passwords as _native
from blocktrust_native.errors import InvalidPasswordHash, PasswordError

__all__ = [
    "MAX_PASSWORD_BYTES",
    "DualResult",
    "InvalidPasswordHash",
    "Parameters",
    "PasswordError",
    "check_dual",
    "hash_dual",
    "hash_password",
    "needs_rehash",
    "verify_password",
]

Parameters = _native.Parameters
#: Longest password accepted, in bytes; longer ones raise PasswordError.
MAX_PASSWORD_BYTES: int = _native.MAX_PASSWORD_BYTES
_DEFAULT = Parameters()


class DualResult(enum.Enum):
    """Which stored hash a password matched."""

    NORMAL = 0
    DURESS = 1
    REJECTED = 2


def hash_password(password: str | bytes, *, params: Parameters | None = None) -> str:
    """The Argon2id PHC string of ``password`` with a fresh random salt."""
    return _native.hash_password(password, params or _DEFAULT)


def verify_password(password: str | bytes, phc: str) -> bool:
    """True when ``password`` matches ``phc`` (argon2id, argon2i or argon2d PHC strings).

    Raises InvalidPasswordHash when ``phc`` is malformed.
    """
    return _native.verify_password(password, phc)


def needs_rehash(phc: str, *, params: Parameters | None = None) -> bool:
    """True when ``phc`` was made with other parameters (or variant) than ``params``: rehash the
    password at the next successful login."""
    return _native.needs_rehash(phc, params or _DEFAULT)


def check_dual(password: str | bytes, normal_hash: str, duress_hash: str) -> DualResult:
    """NORMAL, DURESS or REJECTED; both hashes are verified on every call, in this order."""
    return DualResult(_native.check_dual(password, normal_hash, duress_hash))


def hash_dual(
    password: str | bytes, duress_password: str | bytes, *, params: Parameters | None = None
) -> tuple[str, str]:
    """Hashes the normal and the duress password; PasswordError when they are equal."""
    normal, duress = _native.hash_dual(password, duress_password, params or _DEFAULT)
    return normal, duress
