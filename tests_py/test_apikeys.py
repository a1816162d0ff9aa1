"""API keys: shape, checksum, HMAC cross-checks against hmac/zlib, bad input, rotation, threads."""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import zlib
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blocktrust_native import apikeys
from blocktrust_native._native import apikeys as native
from blocktrust_native.apikeys import ApiKeyCodec, InvalidApiKey, KeyRing, Role
from blocktrust_native.errors import ConfigError, Error

SECRET = hashlib.sha256(b"test server secret").digest()
B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def b62(value: int, width: int) -> str:
    out = ""
    for _ in range(width):
        value, r = divmod(value, 62)
        out = B62[r] + out
    return out


@pytest.fixture
def codec() -> ApiKeyCodec:
    return ApiKeyCodec(prefix="btk_live", secret=SECRET)


def test_generated_key_shape_checksum_and_digest(codec: ApiKeyCodec) -> None:
    key = codec.generate(role="admin", expires=timedelta(days=30))
    assert re.fullmatch(apikeys.token_regex("btk_live"), key.token)
    assert re.fullmatch(apikeys.TOKEN_REGEX, key.token)
    assert len(key.token) == codec.token_length == len("btk_live_") + 46
    body = key.token[len("btk_live_") : -6]
    # Checksum: CRC32 of "<prefix>_<body>" as 6 base62 digits, exactly as documented.
    assert key.token[-6:] == b62(zlib.crc32(key.token[:-6].encode()), 6)
    assert key.key_id == body[:12]
    assert key.digest == hmac.digest(SECRET, key.token.encode(), "sha256")
    assert codec.digest(key.token) == key.digest
    assert codec.verify(key.token, key.digest)
    assert codec.parse(key.token) == apikeys.ParsedApiKey("btk_live", key.key_id)
    assert key.role is Role.ADMIN
    assert key.prefix == "btk_live"
    assert key.expires_at is not None
    assert not key.is_expired()
    assert key.is_expired(key.created_at + timedelta(days=31))
    assert codec.generate().role is Role.CLIENT
    assert codec.generate().expires_at is None


def test_reprs_never_show_the_token_or_secret(codec: ApiKeyCodec) -> None:
    key = codec.generate()
    body = key.token[len("btk_live_") + 12 :]
    for text in (repr(key), str(key), repr(codec)):
        assert body not in text
        assert key.digest.hex() not in text
        assert SECRET.hex() not in text
    assert key.key_id in repr(key)


def test_tokens_are_distinct_and_uniform_looking(codec: ApiKeyCodec) -> None:
    tokens = {codec.generate().token for _ in range(2000)}
    assert len(tokens) == 2000
    secrets = "".join(t[len("btk_live_") + 12 : -6] for t in tokens)
    counts = [secrets.count(c) for c in B62]
    expected = len(secrets) / 62
    assert all(abs(n - expected) < 0.25 * expected for n in counts)  # no base62 modulo skew


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=32, max_size=200), st.integers(0, 2**32 - 1))
def test_hmac_and_checksum_match_python(secret: bytes, seed: int) -> None:
    codec = ApiKeyCodec("btk_test", secret)
    token = codec.generate().token
    assert codec.digest(token) == hmac.digest(secret, token.encode(), "sha256")
    assert native.crc32(seed.to_bytes(4, "big")) == zlib.crc32(seed.to_bytes(4, "big"))
    wrong = bytearray(hmac.digest(secret, token.encode(), "sha256"))
    wrong[seed % 32] ^= 1 << (seed % 8)
    assert not codec.verify(token, bytes(wrong))
    assert codec.verify(token, memoryview(bytes(codec.digest(token))))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=100))
def test_crc32_matches_zlib_at_every_length(data: bytes) -> None:
    # Eight bytes at a time, then byte by byte: every split of the input is drawn.
    assert native.crc32(data) == zlib.crc32(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 45), st.sampled_from(B62))
def test_any_single_character_typo_is_rejected(pos: int, ch: str) -> None:
    codec = ApiKeyCodec("btk_live", SECRET)
    token = codec.generate().token
    i = len("btk_live_") + pos
    typo = token[:i] + ch + token[i + 1 :]
    if typo == token:
        assert codec.parse(typo).key_id
        return
    with pytest.raises(InvalidApiKey, match="checksum"):
        codec.parse(typo)


def _bad_tokens(token: str) -> list[tuple[str, str]]:
    return [
        ("", "empty"),
        ("x" * 10_000, "too long"),
        (token[:20] + "é" + token[21:], "non-ASCII"),
        (token[:20] + "\ud800" + token[21:], "non-ASCII"),
        (token + "\n", "whitespace"),
        ("btk_test_" + token[9:], "prefix 'btk_live_'"),
        ("btk_liv_" + token[9:], "prefix"),
        (token[:-1], "wrong length"),
        (token[: len(token) // 2], "wrong length"),
        (token[:30] + "+" + token[31:], "outside base62"),
        (token[:-1] + ("A" if token[-1] != "A" else "B"), "checksum"),
    ]


def test_every_malformed_token_raises_with_its_reason(codec: ApiKeyCodec) -> None:
    key = codec.generate()
    secret_part = key.token[len("btk_live_") + 12 : -6]
    for bad, reason in _bad_tokens(key.token):
        for call in (codec.parse, codec.digest, lambda t: codec.verify(t, key.digest)):
            with pytest.raises(InvalidApiKey, match=reason) as err:
                call(bad)
            assert secret_part not in str(err.value)
            assert isinstance(err.value, ValueError)
            assert isinstance(err.value, Error)


def test_malformed_tokens_never_reach_the_hmac(codec: ApiKeyCodec) -> None:
    key = codec.generate()
    bad_tokens = [bad for bad, _ in _bad_tokens(key.token)]
    for bad in bad_tokens:
        before = native._hmac_count()
        for call in (codec.parse, codec.digest, lambda t: codec.verify(t, key.digest)):
            with pytest.raises(InvalidApiKey):
                call(bad)
        assert native._hmac_count() == before, bad[:12]
    before = native._hmac_count()
    assert codec.verify_many(bad_tokens, [key.digest] * len(bad_tokens)) == [False] * len(
        bad_tokens
    )
    assert codec.verify(key.token, key.digest)
    assert native._hmac_count() == before + 1  # verify_many ran in this thread: no HMAC for them


def test_bad_configuration_and_arguments(codec: ApiKeyCodec) -> None:
    with pytest.raises(ConfigError, match="at least 32 bytes") as err:
        ApiKeyCodec("btk_live", b"too-short-secret-value")
    assert "too-short-secret-value" not in str(err.value)
    for prefix in ("", "BTK", "btk-live", "btk_", "9k", "btk__x", "a" * 33):
        with pytest.raises(ConfigError, match="prefix"):
            ApiKeyCodec(prefix, SECRET)
    key = codec.generate()
    with pytest.raises(ConfigError, match="32 bytes"):
        codec.verify(key.token, key.digest[:31])
    with pytest.raises(TypeError, match="must be str"):
        codec.verify(key.token.encode(), key.digest)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bytes-like"):
        codec.verify(key.token, key.digest.hex())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="role"):
        codec.generate(role="root")
    with pytest.raises(ConfigError, match="timezone-aware"):
        codec.generate(expires=datetime(2099, 1, 1))
    with pytest.raises(ConfigError, match="future"):
        codec.generate(expires=datetime.now(timezone.utc) - timedelta(seconds=1))
    with pytest.raises(ConfigError, match="as many digests"):
        codec.verify_many([key.token], [])
    assert ApiKeyCodec("btk_live", "s" * 32).digest(key.token) == hmac.digest(
        b"s" * 32, key.token.encode(), "sha256"
    )


def test_verify_many(codec: ApiKeyCodec) -> None:
    keys = [codec.generate() for _ in range(50)]
    tokens = [k.token for k in keys]
    digests = [k.digest for k in keys]
    assert codec.verify_many(tokens, digests) == [True] * 50
    digests[3] = bytes(32)
    digests[7] = digests[7][:16]
    tokens[9] = "btk_live_garbage"
    tokens[11] = tokens[11][:20] + "\ud800" + tokens[11][21:]
    want = [i not in (3, 7, 9, 11) for i in range(50)]
    assert codec.verify_many(tokens, digests) == want
    assert codec.verify_many((), ()) == []
    with pytest.raises(TypeError):
        codec.verify_many([b"x"], [bytes(32)])  # type: ignore[list-item]


def test_key_ring_rotation() -> None:
    old, new = b"o" * 40, b"n" * 32
    old_key = ApiKeyCodec("btk_live", old).generate()
    ring = KeyRing("btk_live", new, old)
    assert len(ring) == 2
    assert "secrets=2" in repr(ring)
    assert ring.match(old_key.token, old_key.digest) == 1
    assert ring.verify(old_key.token, old_key.digest)
    redigested = ring.digest(old_key.token)
    assert redigested == hmac.digest(new, old_key.token.encode(), "sha256")
    assert ring.match(old_key.token, redigested) == 0
    assert ring.match(old_key.token, bytes(32)) is None
    for digest in (redigested, old_key.digest, bytes(32)):  # every secret tried, every time
        before = native._hmac_count()
        ring.match(old_key.token, digest)
        assert native._hmac_count() - before == 2
    assert not ring.verify(old_key.token, bytes(32))
    fresh = ring.generate(role=Role.AUDITOR)
    assert ring.match(fresh.token, fresh.digest) == 0
    assert ring.verify_many([fresh.token, old_key.token], [fresh.digest, redigested]) == [True] * 2
    with pytest.raises(InvalidApiKey):
        ring.match("btk_live_x", bytes(32))
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        KeyRing("btk_live", new, b"short")
    assert old.decode() not in repr(ring)


def test_one_codec_shared_by_threads(codec: ApiKeyCodec) -> None:
    keys = [codec.generate() for _ in range(64)]
    failures: list[object] = []

    def work() -> None:
        for _ in range(30):
            ok = codec.verify_many([k.token for k in keys], [k.digest for k in keys])
            if not all(ok) or not all(codec.verify(k.token, k.digest) for k in keys[:8]):
                failures.append(ok)
            fresh = codec.generate()
            if fresh.digest != hmac.digest(SECRET, fresh.token.encode(), "sha256"):
                failures.append(fresh.key_id)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
