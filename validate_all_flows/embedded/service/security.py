"""Request security for the reference service: JWTs, Sumsub webhook signatures, upload sniffing."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid

import jwt

__all__ = [
    "UploadRejected",
    "WebhookRejected",
    "decode_token",
    "issue_token",
    "sniff_upload",
    "verify_webhook",
]

_WEBHOOK_ALGS = {
    "HMAC_SHA1_HEX": hashlib.sha1,
    "HMAC_SHA256_HEX": hashlib.sha256,
    "HMAC_SHA512_HEX": hashlib.sha512,
}


class WebhookRejected(ValueError):
    """Raised when a KYC webhook is unsigned or wrongly signed; says which, never the secret."""


class UploadRejected(ValueError):
    """Raised when an upload is too large, empty, of a refused type, or a disguised executable."""


def issue_token(secret: str, user_id: int, ttl: float) -> tuple[str, int]:
    """A signed HS256 JWT for ``user_id`` and its lifetime in seconds."""
    now = int(time.time())
    claims = {"sub": str(user_id), "iat": now, "exp": now + int(ttl), "jti": uuid.uuid4().hex}
    return jwt.encode(claims, secret, algorithm="HS256"), int(ttl)


def decode_token(secret: str, token: str) -> int | None:
    """The user id of a valid, unexpired token; None for anything else."""
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp"]})
        return int(claims["sub"])
    except (jwt.PyJWTError, KeyError, ValueError):
        return None


def verify_webhook(
    secret: str,
    body: bytes,
    digest: str | None,
    alg: str | None,
    *,
    algorithms: frozenset[str] | None = None,
) -> None:
    """Checks a Sumsub-style signature: ``X-Payload-Digest`` is the hex HMAC of the raw body
    with the webhook secret, ``X-Payload-Digest-Alg`` names the hash, one of ``algorithms`` (the
    configured set; default SHA-256 and SHA-512). Constant-time compare; anything malformed
    (non-ASCII included) is a WebhookRejected, never an error of ours."""
    allowed = sorted(algorithms or {"HMAC_SHA256_HEX", "HMAC_SHA512_HEX"})
    if not digest:
        raise WebhookRejected("missing X-Payload-Digest header")
    fn = _WEBHOOK_ALGS.get(alg or "") if (alg or "") in allowed else None
    if fn is None:
        shown = "" if alg is None else f", got {alg[:32].encode('ascii', 'replace').decode()!r}"
        raise WebhookRejected(f"X-Payload-Digest-Alg must be one of {allowed}{shown}")
    given = digest.strip().lower()
    if not given.isascii():
        raise WebhookRejected("X-Payload-Digest is not a hex digest")
    expected = hmac.new(secret.encode(), body, fn).hexdigest()
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise WebhookRejected("X-Payload-Digest does not match the body")


# (media type, magic prefix) of the documents we accept; checked on the bytes, never the MIME
# type the client claims.
_ACCEPTED = [
    ("application/pdf", b"%PDF-"),
    ("image/png", b"\x89PNG\r\n\x1a\n"),
    ("image/jpeg", b"\xff\xd8\xff"),
    ("application/zip", b"PK\x03\x04"),  # docx, xlsx, odt are zip containers
]
_EXECUTABLE = [b"MZ", b"\x7fELF", b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe", b"#!"]


def sniff_upload(data: bytes, max_bytes: int) -> str:
    """The media type of an acceptable document, judged by its bytes; raises UploadRejected."""
    if not data:
        raise UploadRejected("the file is empty")
    if len(data) > max_bytes:
        raise UploadRejected(f"the file is larger than {max_bytes} bytes")
    if any(data.startswith(m) for m in _EXECUTABLE):
        raise UploadRejected("executables are refused, whatever their name or type")
    for media_type, magic in _ACCEPTED:
        if data.startswith(magic):
            return media_type
    head = data[:4096]
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:  # a multibyte character cut at the edge is fine
                raise UploadRejected("unrecognised file type") from None
        return "text/plain"
    raise UploadRejected("unrecognised file type")
