"""Dual password check: blocktrust_native.passwords.check_dual against argon2-cffi.

The anchor does what check_dual does with argon2-cffi (libargon2 through CFFI): verify the
password against the normal hash and then the duress hash (both, always), at the same Argon2id
parameters (OWASP defaults: m=19456 KiB, t=2, p=1 unless --quick). Then our throughput from 2
threads against 1 thread: check_dual releases the GIL, so 2 threads should use 2 cores.
Needs >= 2 idle cores for the thread figure to mean anything.

    .venv/bin/python bench/bench_passwords.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from argon2.exceptions import VerifyMismatchError
from argon2.low_level import Type, verify_secret

from blocktrust_native import passwords


def anchor_dual(password: bytes, normal: bytes, duress: bytes) -> str:
    """check_dual written with argon2-cffi: both verifications, no early exit."""
    results = []
    for phc in (normal, duress):
        try:
            results.append(verify_secret(phc, password, Type.ID))
        except VerifyMismatchError:
            results.append(False)
    return "NORMAL" if results[0] else "DURESS" if results[1] else "REJECTED"


def per_call(fn, calls: int, rounds: int) -> float:  # type: ignore[no-untyped-def]
    """Best seconds per call over `rounds` rounds of `calls` calls."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def throughput(threads: int, calls: int, args: tuple[str, str, str]) -> float:
    """check_dual calls per second from `threads` threads, `calls` calls each."""
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        barrier.wait()
        for _ in range(calls):
            passwords.check_dual(*args)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in pool:
        t.join()
    return threads * calls / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="cheap parameters, fewer rounds")
    opts = parser.parse_args()
    params = (
        passwords.Parameters(memory_kib=4096, iterations=1)
        if opts.quick
        else passwords.Parameters()
    )
    calls, rounds = (10, 3) if opts.quick else (10, 5)
    normal, duress = passwords.hash_dual("correct horse", "duress horse", params=params)
    args = ("correct horse", normal, duress)
    assert anchor_dual(b"correct horse", normal.encode(), duress.encode()) == "NORMAL"
    assert passwords.check_dual(*args).name == "NORMAL"

    print(f"parameters: {params!r}, cores: {os.cpu_count()}")
    a = per_call(
        lambda: anchor_dual(b"correct horse", normal.encode(), duress.encode()), calls, rounds
    )
    o = per_call(lambda: passwords.check_dual(*args), calls, rounds)
    print(f"anchor argon2-cffi, 2 verifications: {a * 1e3:7.2f} ms/check")
    print(f"ours   check_dual:                   {o * 1e3:7.2f} ms/check")
    one = max(throughput(1, calls * 2, args) for _ in range(rounds))
    two = max(throughput(2, calls, args) for _ in range(rounds))
    print(f"ours   1 thread:  {one:6.1f} checks/s")
    print(f"ours   2 threads: {two:6.1f} checks/s")
    print(f"ratio 2 threads/1 thread: {two / one:.2f}x (target >= 1.8x)")
    print(f"ratio ours/anchor: {a / o:.2f}x (target >= 0.95x)")


if __name__ == "__main__":
    main()
