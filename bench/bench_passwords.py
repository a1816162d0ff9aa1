"""Dual password check: blocktrust_native.passwords.check_dual against argon2-cffi.

The anchor does what check_dual does with argon2-cffi (libargon2 through CFFI): verify the
password against the normal hash and then the duress hash (both, always), at the same Argon2id
parameters (OWASP defaults: m=19456 KiB, t=2, p=1 unless --quick). Then how throughput grows from
1 to 2 workers: check_dual releases the GIL, so 2 threads should use 2 cores.

Two Argon2 fills at once contend for the cores' shared cache and memory, and on a shared VM the
neighbours' load moves the speed from second to second. So the scaling figure is the median of
paired rounds (1 worker, 2, 2, 1: a drift within a round cancels), taken for our threads, for
argon2-cffi's threads and for two separate processes running check_dual: processes share no GIL,
memory map or lock, so their figure is what this machine allows any implementation.
Needs >= 2 cores, otherwise idle, for the scaling figures to mean anything.

    .venv/bin/python bench/bench_passwords.py [--quick] [--rounds N]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from argon2.exceptions import VerifyMismatchError
from argon2.low_level import Type, verify_secret

from blocktrust_native import passwords

Check = tuple[str, str, str]  # (password, normal hash, duress hash)


def anchor_dual(password: bytes, normal: bytes, duress: bytes) -> str:
    """check_dual written with argon2-cffi: both verifications, no early exit."""
    results = []
    for phc in (normal, duress):
        try:
            results.append(verify_secret(phc, password, Type.ID))
        except VerifyMismatchError:
            results.append(False)
    return "NORMAL" if results[0] else "DURESS" if results[1] else "REJECTED"


def per_call(fn: Callable[[], object], calls: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this thread) per call over `calls` calls."""
    wall, cpu = time.perf_counter(), time.thread_time()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - wall) / calls, (time.thread_time() - cpu) / calls


def threaded(fn: Callable[[], object], threads: int, calls: int) -> tuple[float, float]:
    """(calls per second, process CPU seconds per wall second) from `threads` threads making
    `calls` calls each. CPU/wall above 1 means threads ran at the same time, which for Python
    callers only happens when the GIL is released."""
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        barrier.wait()
        for _ in range(calls):
            fn()

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    start, cpu = time.perf_counter(), time.process_time()
    for t in pool:
        t.join()
    wall = time.perf_counter() - start
    return threads * calls / wall, (time.process_time() - cpu) / wall


def _process_worker(conn: Connection, check: Check) -> None:
    """Runs in a child process: on (start_at, calls), wait for start_at, make the calls and send
    back (first start, last end) on the system-wide monotonic clock."""
    while (order := conn.recv()) is not None:
        start_at, calls = order
        while time.monotonic() < start_at:
            time.sleep(0.0002)
        began = time.monotonic()
        for _ in range(calls):
            passwords.check_dual(*check)
        conn.send((began, time.monotonic()))


class ProcessPair:
    """Two child processes that make check_dual calls on command: one or both at once."""

    def __init__(self, check: Check) -> None:
        ctx = multiprocessing.get_context("spawn")  # no fork of a process that has threads
        self._conns: list[Connection] = []
        self._procs = []
        for _ in range(2):
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=_process_worker, args=(theirs, check), daemon=True)
            proc.start()
            self._conns.append(ours)
            self._procs.append(proc)
        self.rate(2, 1)  # both imported and warmed up before anything is timed

    def rate(self, workers: int, calls: int) -> float:
        """check_dual calls per second from `workers` processes making `calls` calls each."""
        start_at = time.monotonic() + 0.05
        for conn in self._conns[:workers]:
            conn.send((start_at, calls))
        spans = [conn.recv() for conn in self._conns[:workers]]
        return workers * calls / (max(e for _, e in spans) - min(b for b, _ in spans))

    def close(self) -> None:
        for conn in self._conns:
            conn.send(None)
        for proc in self._procs:
            proc.join()


def paired_ratios(rate: Callable[[int, int], float], calls: int, rounds: int) -> list[float]:
    """Throughput of 2 workers over 1 worker, one figure per round of 1, 2, 2, 1 workers (each
    worker makes `calls` // workers calls, so every step takes about as long)."""
    ratios = []
    for _ in range(rounds):
        one_a, two_a = rate(1, calls), rate(2, calls // 2)
        two_b, one_b = rate(2, calls // 2), rate(1, calls)
        ratios.append((two_a + two_b) / (one_a + one_b))
    return ratios


def describe(ratios: list[float]) -> str:
    return f"{statistics.median(ratios):.2f}x (min {min(ratios):.2f}, max {max(ratios):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="cheap parameters, fewer rounds")
    parser.add_argument("--rounds", type=int, help="paired rounds per scaling figure (default 7)")
    opts = parser.parse_args()
    params = (
        passwords.Parameters(memory_kib=4096, iterations=1)
        if opts.quick
        else passwords.Parameters()
    )
    calls, rounds = (10, 3) if opts.quick else (10, 5)
    pairs = opts.rounds or (3 if opts.quick else 7)
    normal, duress = passwords.hash_dual("correct horse", "duress horse", params=params)
    check: Check = ("correct horse", normal, duress)
    assert anchor_dual(b"correct horse", normal.encode(), duress.encode()) == "NORMAL"
    assert passwords.check_dual(*check).name == "NORMAL"

    print(f"parameters: {params!r}, cores: {os.cpu_count()}, load: {os.getloadavg()[0]:.1f}")
    anchor = lambda: anchor_dual(b"correct horse", normal.encode(), duress.encode())  # noqa: E731
    ours = lambda: passwords.check_dual(*check)  # noqa: E731
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

    steps = calls * 2  # calls per step of a paired round
    best: dict[tuple[str, int], tuple[float, float]] = {}  # (side, workers) -> (rate, CPU/wall)

    def threads_of(side: str, fn: Callable[[], object]) -> Callable[[int, int], float]:
        def rate(workers: int, n: int) -> float:
            got = threaded(fn, workers, n)
            best[side, workers] = max(best.get((side, workers), (0.0, 0.0)), got)
            return got[0]

        return rate

    processes = ProcessPair(check)
    try:
        figures = {
            "ours, threads": paired_ratios(threads_of("ours", ours), steps, pairs),
            "ours, 2 processes": paired_ratios(processes.rate, steps, pairs),
            "argon2-cffi, threads": paired_ratios(threads_of("anchor", anchor), steps, pairs),
        }
    finally:
        processes.close()
    for side, name in (("anchor", "anchor argon2-cffi"), ("ours", "ours  ")):
        for workers in (1, 2):
            rate, load = best[side, workers]
            print(
                f"{name} {workers} thread{'s' if workers > 1 else ' '}: {rate:6.1f} checks/s, "
                f"best step (CPU/wall {load:.2f}{'; > 1 = GIL released' if workers > 1 else ''})"
            )
    print(f"2 workers / 1 worker, median of {pairs} paired rounds:")
    for name, ratios in figures.items():
        print(f"  {name + ':':22} {describe(ratios)}")
    threads = statistics.median(figures["ours, threads"])
    ceiling = statistics.median(figures["ours, 2 processes"])
    print(f"ours threads / 2 processes: {threads / ceiling:.2f} (1.00: one process costs nothing)")
    print(f"ratio 2 threads/1 thread: {threads:.2f}x (target >= 1.8x)")
    print(f"ratio ours/anchor wall: {a_wall / o_wall:.2f}x")
    print(f"ratio ours/anchor CPU: {a_cpu / o_cpu:.2f}x (target >= 0.95x)")


if __name__ == "__main__":
    main()
