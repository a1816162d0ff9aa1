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


def per_call(fn, calls: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(wall seconds, CPU seconds of this thread) per call over `calls` calls."""
    wall, cpu = time.perf_counter(), time.thread_time()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - wall) / calls, (time.thread_time() - cpu) / calls


def throughput(threads: int, calls: int, args: tuple[str, str, str]) -> tuple[float, float]:
    """(check_dual calls per second, process CPU seconds per wall second) from `threads`
    threads making `calls` calls each. CPU/wall above 1 means threads hashed at the same time,
    which only happens when the GIL is released."""
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        barrier.wait()
        for _ in range(calls):
            passwords.check_dual(*args)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    start, cpu = time.perf_counter(), time.process_time()
    for t in pool:
        t.join()
    wall = time.perf_counter() - start
    return threads * calls / wall, (time.process_time() - cpu) / wall


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

    print(f"parameters: {params!r}, cores: {os.cpu_count()}, load: {os.getloadavg()[0]:.1f}")
    anchor = lambda: anchor_dual(b"correct horse", normal.encode(), duress.encode())  # noqa: E731
    ours = lambda: passwords.check_dual(*args)  # noqa: E731
    a_wall = a_cpu = o_wall = o_cpu = float("inf")
    for _ in range(rounds):  # interleaved, so both sides see the same machine load
        w, c = per_call(anchor, calls)
        a_wall, a_cpu = min(a_wall, w), min(a_cpu, c)
        w, c = per_call(ours, calls)
        o_wall, o_cpu = min(o_wall, w), min(o_cpu, c)
    print(
        f"anchor argon2-cffi, 2 verifications: {a_wall * 1e3:7.2f} ms/check wall, "
        f"{a_cpu * 1e3:7.2f} ms CPU"
    )
    print(
        f"ours   check_dual:                   {o_wall * 1e3:7.2f} ms/check wall, "
        f"{o_cpu * 1e3:7.2f} ms CPU"
    )
    one = two = (0.0, 0.0)
    for _ in range(rounds):
        one = max(one, throughput(1, calls * 2, args))
        two = max(two, throughput(2, calls, args))
    print(f"ours   1 thread:  {one[0]:6.1f} checks/s (CPU/wall {one[1]:.2f})")
    print(f"ours   2 threads: {two[0]:6.1f} checks/s (CPU/wall {two[1]:.2f}; > 1 = GIL released)")
    print(f"ratio 2 threads/1 thread: {two[0] / one[0]:.2f}x (target >= 1.8x)")
    print(f"ratio ours/anchor wall: {a_wall / o_wall:.2f}x")
    print(f"ratio ours/anchor CPU: {a_cpu / o_cpu:.2f}x (target >= 0.95x)")


if __name__ == "__main__":
    main()
