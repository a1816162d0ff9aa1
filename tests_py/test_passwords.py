"""Argon2id hashing and the dual check: interop with argon2-cffi, bad input, threads, shape."""

from __future__ import annotations

import threading

import argon2
import pytest
from argon2.low_level import Type, hash_secret
from hypothesis import given, settings
from hypothesis import strategies as st

from blocktrust_native import passwords
from blocktrust_native._native import passwords as native
from blocktrust_native.errors import ConfigError, InvalidPasswordHash, PasswordError
from blocktrust_native.passwords import DualResult, Parameters

FAST = Parameters(memory_kib=1024, iterations=1, parallelism=1)


def test_defaults_are_owasp() -> None:
    p = Parameters()
    assert (p.memory_kib, p.iterations, p.parallelism) == (19456, 2, 1)
    assert passwords.hash_password("x").startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_our_hashes_verify_with_argon2_cffi_and_back() -> None:
    ours = passwords.hash_password("correct horse", params=FAST)
    assert argon2.PasswordHasher().verify(ours, "correct horse")
    with pytest.raises(argon2.exceptions.VerifyMismatchError):
        argon2.PasswordHasher().verify(ours, "wrong horse")
    theirs = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=2).hash("é-pass")
    assert passwords.verify_password("é-pass", theirs)
    assert passwords.verify_password("é-pass".encode(), theirs)
    assert not passwords.verify_password("e-pass", theirs)
    argon2i = hash_secret(
        b"pw", b"somesalt", time_cost=1, memory_cost=1024, parallelism=1, hash_len=32, type=Type.I
    ).decode()
    assert passwords.verify_password(b"pw", argon2i)
    assert passwords.needs_rehash(argon2i)  # argon2i: not our variant


@pytest.mark.parametrize(
    ("parallelism", "salt_len", "hash_len"),
    [(1, 16, 32), (1, 16, 16), (1, 16, 64), (2, 16, 32), (1, 8, 32), (1, 24, 32)],
)
def test_interop_holds_on_both_engines(parallelism: int, salt_len: int, hash_len: int) -> None:
    """p = 1 with 16-byte salts runs on libsodium, the rest on libargon2: argon2-cffi agrees."""
    params = Parameters(
        memory_kib=1024,
        iterations=2,
        parallelism=parallelism,
        hash_len=hash_len,
        salt_len=salt_len,
    )
    ours = passwords.hash_password("shape-pw", params=params)
    assert ours.startswith(f"$argon2id$v=19$m=1024,t=2,p={parallelism}$")
    assert argon2.PasswordHasher().verify(ours, "shape-pw")
    theirs = argon2.PasswordHasher(
        time_cost=2,
        memory_cost=1024,
        parallelism=parallelism,
        hash_len=hash_len,
        salt_len=salt_len,
    ).hash("shape-pw")
    assert passwords.verify_password("shape-pw", theirs)
    assert not passwords.verify_password("shape-pw!", theirs)
    assert passwords.check_dual("shape-pw", ours, theirs) is DualResult.NORMAL


@settings(max_examples=15, deadline=None)
@given(st.text(max_size=40))
def test_any_text_round_trips(password: str) -> None:
    h = passwords.hash_password(password, params=FAST)
    assert passwords.verify_password(password, h)
    assert not passwords.verify_password(password + "x", h)


def test_needs_rehash_follows_the_parameters() -> None:
    h = passwords.hash_password("pw", params=FAST)
    assert not passwords.needs_rehash(h, params=FAST)
    assert passwords.needs_rehash(h)  # defaults differ
    assert passwords.needs_rehash(h, params=Parameters(memory_kib=2048, iterations=1))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "plain",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        "$argon2id$v=19$m=1024,t=1,p=1",
        "$argon2id$v=19$m=abc,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
        "$argon2id$v=19$m=1024,t=1,p=1$@@@@$@@@@",
    ],
)
def test_malformed_hashes_raise_invalid_password_hash(bad: str) -> None:
    with pytest.raises(InvalidPasswordHash) as err:
        passwords.verify_password("hunter2-secret", bad)
    assert "hunter2-secret" not in str(err.value)
    with pytest.raises(InvalidPasswordHash):
        passwords.check_dual("hunter2-secret", bad, bad)


def test_bad_arguments_are_typed() -> None:
    with pytest.raises(ConfigError, match="memory_kib"):
        Parameters(memory_kib=4)
    with pytest.raises(ConfigError, match="iterations"):
        Parameters(iterations=0)
    with pytest.raises(PasswordError, match="longer than 4096"):
        passwords.hash_password("a" * (passwords.MAX_PASSWORD_BYTES + 1), params=FAST)
    with pytest.raises(TypeError, match="password must be str or bytes"):
        passwords.hash_password(1234, params=FAST)  # type: ignore[arg-type]
    with pytest.raises(PasswordError, match="must differ") as err:
        passwords.hash_dual("same-secret-pw", "same-secret-pw", params=FAST)
    assert "same-secret-pw" not in str(err.value)


def test_check_dual_results_and_shape() -> None:
    normal, duress = passwords.hash_dual("normal-pw", "duress-pw", params=FAST)
    results = [passwords.check_dual(p, normal, duress) for p in ("normal-pw", "duress-pw", "nope")]
    assert results == [DualResult.NORMAL, DualResult.DURESS, DualResult.REJECTED]
    assert {type(r) for r in results} == {DualResult}


def test_check_dual_always_runs_both_verifications() -> None:
    normal, duress = passwords.hash_dual("normal-pw", "duress-pw", params=FAST)
    for password in ("normal-pw", "duress-pw", "nope"):
        before = native._verify_count()
        passwords.check_dual(password, normal, duress)
        assert native._verify_count() - before == 2, password


def test_threads_hash_and_verify_concurrently() -> None:
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(5):
                pw = f"t{i}-{j}"
                h = passwords.hash_password(pw, params=FAST)
                assert passwords.verify_password(pw, h)
                assert not passwords.verify_password(pw + "!", h)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_remaining_bad_inputs_are_typed() -> None:
    h = passwords.hash_password("pw", params=FAST)
    too_long = "a" * (passwords.MAX_PASSWORD_BYTES + 1)
    with pytest.raises(PasswordError, match="longer than"):
        passwords.verify_password(too_long, h)
    with pytest.raises(PasswordError, match="longer than"):
        passwords.check_dual(too_long, h, h)
    with pytest.raises(InvalidPasswordHash):
        passwords.needs_rehash("$argon2id$v=19$m=1024,t=1,p=1")
    with pytest.raises(InvalidPasswordHash):
        passwords.needs_rehash("$argon2id$v=19$m=1024,t=1,p=1,x=3$c2FsdHNhbHQ$aGFzaA")
    with pytest.raises(ConfigError, match="parallelism"):
        Parameters(parallelism=0)
    with pytest.raises(ConfigError, match="hash_len"):
        Parameters(hash_len=8)
    with pytest.raises(ConfigError, match="salt_len"):
        Parameters(salt_len=4)
    with pytest.raises(TypeError, match="duress password must be str or bytes"):
        passwords.hash_dual("pw", None, params=FAST)  # type: ignore[arg-type]
    with pytest.raises(PasswordError, match="must differ"):
        passwords.hash_dual("same", b"same", params=FAST)  # str and its UTF-8 bytes are equal


def test_malformed_hash_in_either_slot_names_the_problem() -> None:
    good = passwords.hash_password("pw", params=FAST)
    for normal, duress in ((good, "$argon2id$v=19$m=1024"), ("nope", good)):
        with pytest.raises(InvalidPasswordHash) as err:
            passwords.check_dual("my-secret-password", normal, duress)
        assert "Argon2" in str(err.value)
        assert "my-secret-password" not in str(err.value)


def test_check_dual_from_threads_gives_each_caller_its_answer() -> None:
    normal, duress = passwords.hash_dual("normal-pw", "duress-pw", params=FAST)
    want = {
        "normal-pw": DualResult.NORMAL,
        "duress-pw": DualResult.DURESS,
        "x": DualResult.REJECTED,
    }
    errors: list[object] = []

    def work(pw: str) -> None:
        for _ in range(5):
            got = passwords.check_dual(pw, normal, duress)
            if got is not want[pw]:
                errors.append((pw, got))

    threads = [threading.Thread(target=work, args=(pw,)) for pw in list(want) * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
