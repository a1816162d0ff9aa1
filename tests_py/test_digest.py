"""blocktrust_native.digest hashing: hashlib agreement, Hasher's face, files, errors, threads."""

from __future__ import annotations

import array
import concurrent.futures
import errno
import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from Crypto.Hash import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from blocktrust_native import digest
from blocktrust_native.errors import (
    ConfigError,
    Error,
    FileReadError,
    MissingFileError,
    NotBytesLike,
)

ALGORITHMS = sorted(digest.algorithms_available)


def test_algorithms_are_the_hashlib_sha2_and_sha3_families() -> None:
    assert set(ALGORITHMS) == {
        "sha224",
        "sha256",
        "sha384",
        "sha512",
        "sha3_224",
        "sha3_256",
        "sha3_384",
        "sha3_512",
    }


def test_nist_abc_examples() -> None:
    # FIPS 180-2 / FIPS 202 example "abc".
    assert digest.sha256(b"abc").hex() == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert digest.sha3_256(b"abc").hex() == (
        "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"
    )
    assert digest.sha512(b"abc") == hashlib.sha512(b"abc").digest()


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=5000), algorithm=st.sampled_from(ALGORITHMS))
def test_one_shot_equals_hashlib(data: bytes, algorithm: str) -> None:
    expected = hashlib.new(algorithm, data).digest()
    assert digest.hash_bytes(data, algorithm) == expected
    assert digest.new(algorithm, data).digest() == expected


@settings(max_examples=150, deadline=None)
@given(
    chunks=st.lists(st.binary(max_size=700), max_size=20),
    algorithm=st.sampled_from(ALGORITHMS),
)
def test_streaming_equals_hashlib(chunks: list[bytes], algorithm: str) -> None:
    ours = digest.Hasher(algorithm)
    theirs = hashlib.new(algorithm)
    for c in chunks:
        ours.update(c)
        theirs.update(c)
        assert ours.digest() == theirs.digest()  # digest() does not reset
    assert ours.hexdigest() == theirs.hexdigest()
    assert (ours.name, ours.digest_size, ours.block_size) == (
        theirs.name,
        theirs.digest_size,
        theirs.block_size,
    )


def test_one_shots_equal_hashlib_above_the_gil_release_threshold() -> None:
    big = os.urandom(3 * 1024 * 1024 + 5)
    assert digest.sha256(big) == hashlib.sha256(big).digest()
    assert digest.sha512(memoryview(big)) == hashlib.sha512(big).digest()
    assert digest.sha3_256(bytearray(big)) == hashlib.sha3_256(big).digest()
    h = digest.Hasher("sha256", big)
    h.update(big)
    assert h.digest() == hashlib.sha256(big + big).digest()


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=700))
def test_keccak256_equals_pycryptodome(data: bytes) -> None:
    # Lengths up to five 136-byte blocks, so every padding position is drawn.
    assert digest.keccak256(data) == keccak.new(digest_bits=256, data=data).digest()


def test_keccak256_is_ethereums_not_sha3() -> None:
    assert digest.keccak256(b"").hex() == (
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    )
    assert digest.keccak256(b"transfer(address,uint256)")[:4].hex() == "a9059cbb"
    assert digest.keccak256(b"abc") != hashlib.sha3_256(b"abc").digest()
    big = os.urandom(3 * 1024 * 1024 + 5)  # hashed with the GIL released
    assert digest.keccak256(memoryview(big)) == keccak.new(digest_bits=256, data=big).digest()
    with pytest.raises(NotBytesLike, match="encode str first"):
        digest.keccak256("abc")  # type: ignore[arg-type]


def test_any_contiguous_buffer_is_accepted() -> None:
    data = b"0123456789" * 10
    expected = hashlib.sha256(data).digest()
    assert digest.sha256(bytearray(data)) == expected
    assert digest.sha256(memoryview(data)) == expected
    assert digest.sha256(memoryview(data)[10:]) == hashlib.sha256(data[10:]).digest()
    ints = array.array("I", range(50))
    assert digest.sha256(ints) == hashlib.sha256(ints.tobytes()).digest()


def test_non_contiguous_buffer_is_refused_like_hashlib() -> None:
    view = memoryview(b"abcdef")[::2]
    with pytest.raises(BufferError):
        hashlib.sha256(view)
    with pytest.raises(BufferError):
        digest.sha256(view)


@pytest.mark.parametrize("bad", ["abc", 123, None, ["a"], 1.5])
def test_non_bytes_data_raises_not_bytes_like(bad: object) -> None:
    with pytest.raises(NotBytesLike, match=type(bad).__name__) as e:
        digest.sha256(bad)  # type: ignore[arg-type]
    assert isinstance(e.value, TypeError)
    assert isinstance(e.value, Error)
    with pytest.raises(NotBytesLike):
        digest.Hasher().update(bad)  # type: ignore[arg-type]
    if isinstance(bad, str):
        assert "encode" in str(e.value)


def test_copy_is_independent_and_keeps_the_algorithm() -> None:
    h = digest.Hasher("sha3_512")
    h.update(b"common ")
    c = h.copy()
    assert c.name == "sha3_512"
    h.update(b"left")
    c.update(b"right")
    assert h.digest() == hashlib.sha3_512(b"common left").digest()
    assert c.digest() == hashlib.sha3_512(b"common right").digest()
    assert repr(c) == "<blocktrust_native.digest.Hasher sha3_512>"


def test_default_algorithm_and_spellings() -> None:
    assert digest.Hasher().name == "sha256"
    assert digest.Hasher("SHA-256").name == "sha256"
    assert digest.Hasher("SHA3-256").name == "sha3_256"
    assert digest.hash_bytes(b"x", "Sha512") == hashlib.sha512(b"x").digest()


@pytest.mark.parametrize("name", ["md5", "", "sha256 ", "blake2b", "sha3"])
def test_unknown_algorithm_raises_config_error_naming_it(name: str, tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x")
    calls = [
        lambda: digest.Hasher(name),
        lambda: digest.new(name),
        lambda: digest.hash_bytes(b"x", name),
        lambda: digest.hash_file(f, name),
        lambda: digest.hash_files([f], name),
    ]
    for call in calls:
        with pytest.raises(ConfigError, match=f"'{name}'") as e:
            call()
        assert isinstance(e.value, ValueError)


# -- files


# From 4 MiB up a helper thread reads the next block while the caller hashes.
@pytest.mark.parametrize(
    "size", [0, 1, 1024 * 1024 - 1, 1024 * 1024, 2 * 1024 * 1024 + 3, 8 * 1024 * 1024, 9_000_001]
)
def test_hash_file_equals_hashlib(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    p = tmp_path / "data.bin"
    p.write_bytes(data)
    assert digest.hash_file(p) == hashlib.sha256(data).digest()
    assert digest.hash_file(str(p), "sha3_256") == hashlib.sha3_256(data).digest()
    assert digest.hash_file(os.fsencode(p), algorithm="sha512") == hashlib.sha512(data).digest()


def test_hash_file_missing_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no such file.pdf"
    # Caught as open() would be caught, while staying one of ours.
    with pytest.raises(FileNotFoundError) as e:
        digest.hash_file(missing)
    assert isinstance(e.value, FileReadError)
    assert isinstance(e.value, MissingFileError)
    assert e.value.errno == errno.ENOENT
    assert e.value.filename == str(missing)
    assert str(missing) in str(e.value)
    assert isinstance(e.value, Error)
    with pytest.raises(FileNotFoundError):
        digest.hash_files([missing])


def test_hash_file_directory_fails_on_read(tmp_path: Path) -> None:
    with pytest.raises(FileReadError, match="cannot read") as e:
        digest.hash_file(tmp_path)
    assert e.value.errno == errno.EISDIR


_UNREADABLE = """
import errno, os, sys
from blocktrust_native import digest
from blocktrust_native.errors import FileAccessError, FileReadError
if os.geteuid() == 0:  # root reads anything: drop to nobody once the module is loaded
    os.setgid(65534)
    os.setuid(65534)
try:
    digest.hash_file(sys.argv[1])
except PermissionError as e:
    assert isinstance(e, FileReadError) and isinstance(e, FileAccessError), type(e)
    assert e.errno == errno.EACCES and e.filename == sys.argv[1], (e.errno, e.filename)
    print("permission error")
"""


def test_hash_file_unreadable_is_a_permission_error(tmp_path: Path) -> None:
    p = tmp_path / "secret"
    p.write_bytes(b"x")
    p.chmod(0)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", _UNREADABLE, str(p)], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "permission error"


def test_hash_file_non_utf8_name(tmp_path: Path) -> None:
    name = os.fsencode(tmp_path) + b"/caf\xe9.bin"
    with open(name, "wb") as f:
        f.write(b"latin-1 name")
    assert digest.hash_file(name) == hashlib.sha256(b"latin-1 name").digest()
    os.unlink(name)
    with pytest.raises(FileReadError) as e:
        digest.hash_files([name])
    assert e.value.filename == os.fsdecode(name)


def _write_files(tmp_path: Path, n: int) -> tuple[list[Path], list[bytes]]:
    paths, contents = [], []
    for i in range(n):
        data = os.urandom(i * 37)
        p = tmp_path / f"f{i}.bin"
        p.write_bytes(data)
        paths.append(p)
        contents.append(data)
    return paths, contents


@pytest.mark.parametrize("threads", [None, 1, 2, 7])
def test_hash_files_in_input_order(tmp_path: Path, threads: int | None) -> None:
    paths, contents = _write_files(tmp_path, 150)
    got = digest.hash_files(paths, threads=threads)
    assert got == [hashlib.sha256(c).digest() for c in contents]
    got = digest.hash_files(iter(paths), "sha3_256", threads=threads)
    assert got == [hashlib.sha3_256(c).digest() for c in contents]


def test_hash_files_empty() -> None:
    assert digest.hash_files([]) == []


def test_hash_files_raises_for_a_missing_file_naming_it(tmp_path: Path) -> None:
    paths, _ = _write_files(tmp_path, 20)
    gone = tmp_path / "gone.bin"
    paths.insert(13, gone)
    with pytest.raises(FileReadError) as e:
        digest.hash_files(paths)
    assert e.value.filename == str(gone)
    assert e.value.errno == errno.ENOENT


def test_hash_files_errors_return_puts_the_error_in_place(tmp_path: Path) -> None:
    paths, contents = _write_files(tmp_path, 30)
    paths[3] = tmp_path / "gone.bin"
    paths[17] = tmp_path  # a directory: open works, read fails
    got = digest.hash_files(paths, errors="return", threads=3)
    assert len(got) == 30
    for i, r in enumerate(got):
        if i == 3:
            assert isinstance(r, FileReadError)
            assert (r.errno, r.filename) == (errno.ENOENT, str(paths[3]))
        elif i == 17:
            assert isinstance(r, FileReadError)
            assert (r.errno, r.filename) == (errno.EISDIR, str(tmp_path))
        else:
            assert r == hashlib.sha256(contents[i]).digest()


@pytest.mark.parametrize("threads", [0, -1, True, 2.0, "2"])
def test_hash_files_bad_threads(tmp_path: Path, threads: object) -> None:
    with pytest.raises(ConfigError, match="threads"):
        digest.hash_files([tmp_path], threads=threads)  # type: ignore[arg-type]


def test_hash_files_bad_errors_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'ignore'"):
        digest.hash_files([tmp_path], errors="ignore")  # type: ignore[arg-type]


def test_hash_files_refuses_a_single_path(tmp_path: Path) -> None:
    for one in (str(tmp_path), os.fsencode(tmp_path), tmp_path):
        with pytest.raises(ConfigError, match="use hash_file"):
            digest.hash_files(one)  # type: ignore[arg-type]


def test_hash_files_bad_path_type() -> None:
    with pytest.raises(TypeError):
        digest.hash_files([123])  # type: ignore[list-item]


# -- GIL and threads


def _fifo_feeder(fifo: str, payload: bytes, started: threading.Event) -> threading.Thread:
    def feed() -> None:
        started.wait(10)
        with open(fifo, "wb") as f:  # blocks until the reader has opened its end
            f.write(payload)

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("batch", [False, True])
def test_file_reads_release_the_gil(tmp_path: Path, batch: bool) -> None:
    # The hashing thread blocks in open()/read() on a FIFO until this (Python) thread writes to
    # it. If the native call held the GIL while blocked, the writer could never run: deadlock.
    fifo = str(tmp_path / "pipe")
    os.mkfifo(fifo)
    payload = os.urandom(300_000)
    started = threading.Event()
    feeder = _fifo_feeder(fifo, payload, started)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        call = digest.hash_files if batch else digest.hash_file
        arg = [fifo] if batch else fifo
        fut = pool.submit(call, arg)  # type: ignore[operator]
        started.set()
        result = fut.result(timeout=30)
    feeder.join(10)
    expected = hashlib.sha256(payload).digest()
    assert result == ([expected] if batch else expected)


def test_one_hasher_shared_by_threads() -> None:
    chunk = os.urandom(100_000)  # above the GIL-release threshold: real parallel updates
    h = digest.Hasher("sha512")

    def feed() -> None:
        for _ in range(25):
            h.update(chunk)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for f in [pool.submit(feed) for _ in range(4)]:
            f.result()
    # Every update is the same chunk, so the order they landed in does not matter.
    assert h.digest() == hashlib.sha512(chunk * 100).digest()


def test_concurrent_one_shots_and_batches(tmp_path: Path) -> None:
    paths, contents = _write_files(tmp_path, 40)
    blobs = [os.urandom(70_000 + i) for i in range(16)]

    def work(i: int) -> bool:
        ok = digest.sha256(blobs[i % 16]) == hashlib.sha256(blobs[i % 16]).digest()
        got = digest.hash_files(paths, "sha512", threads=2)
        return ok and got == [hashlib.sha512(c).digest() for c in contents]

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        assert all(pool.map(work, range(24)))
