"""Rate limiting: blocktrust_native.ratelimit against the `limits` package, in one run.

    .venv/bin/python bench/bench_ratelimit.py [--quick] [--build-dir build/py]

1. In-process hit() from Python over 1,000 keys: limits (memory storage) fixed window, moving
   window and sliding-window counter vs ours fixed window, GCRA and sliding window.
2. The C++ core alone on 2 threads (bench/bench_ratelimit_core.cpp, compiled here against the
   core library of a CMake build): decisions per second.
3. Shared store from 8 threads: limits on Redis (moving window; a redis-server started here on
   loopback) vs PgRateLimiter on a throwaway PostgreSQL cluster through the native pool.
Ratios are printed last.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "python"), str(ROOT)]

from limits import parse, storage, strategies  # noqa: E402

from blocktrust_native.ratelimit import RateLimiter  # noqa: E402

RULE = "100/second"
KEYS = [f"user:{i}" for i in range(1000)]


def per_call_us(fn: Callable[[str], object], calls: int) -> float:
    """Microseconds per call over ``calls`` calls cycling through KEYS."""
    rounds = max(1, calls // len(KEYS))
    start = time.perf_counter()
    for _ in range(rounds):
        for k in KEYS:
            fn(k)
    return (time.perf_counter() - start) / (rounds * len(KEYS)) * 1e6


def in_process(calls: int, repeats: int) -> dict[str, float]:
    """Best of ``repeats`` for each contender, the contenders interleaved in every repeat so a
    busy host slows them alike."""
    item = parse(RULE)
    contenders: dict[str, tuple[Callable[[str], object], int]] = {}
    for label, cls in [
        ("limits fixed window", strategies.FixedWindowRateLimiter),
        ("limits moving window", strategies.MovingWindowRateLimiter),
        ("limits sliding-window counter", strategies.SlidingWindowCounterRateLimiter),
    ]:
        lim = cls(storage.MemoryStorage())
        contenders[label] = (lambda k, h=lim.hit: h(item, k), calls // 10)
    for label, algo in [
        ("ours fixed_window", "fixed_window"),
        ("ours gcra", "gcra"),
        ("ours sliding_window", "sliding_window"),
    ]:
        contenders[label] = (RateLimiter(RULE, algo).hit, calls)
    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(repeats):
        for label, (fn, n) in contenders.items():
            best[label] = min(best[label], per_call_us(fn, n))
    for label, us in best.items():
        print(f"  {label:34s} {us:8.3f} us/hit")
    return best


def core_threads(build_dir: Path, threads: int, per_thread: int) -> tuple[float, float] | None:
    lib = build_dir / "libblocktrust_core.a"
    cxx = shutil.which("g++") or shutil.which("c++")
    if not lib.exists() or cxx is None:
        print(f"  skipped: needs {lib} (cmake --build {build_dir}) and a C++ compiler")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "bench_ratelimit_core"
        subprocess.run(
            [
                cxx,
                "-std=c++20",
                "-O2",
                "-DNDEBUG",
                f"-I{ROOT / 'cpp/include'}",
                str(ROOT / "bench/bench_ratelimit_core.cpp"),
                str(lib),
                "-lpthread",
                "-o",
                str(exe),
            ],
            check=True,
        )
        wall = cpu = 0.0
        for _ in range(3):
            out = subprocess.run(
                [str(exe), str(threads), str(per_thread), "gcra"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
            wall, cpu = max(wall, float(out[0])), max(cpu, float(out[1]))
    print(f"  C++ core, {threads} threads, gcra     {wall / 1e6:8.2f} M decisions/s (wall clock)")
    print(f"  same, per CPU-second of its threads {cpu / 1e6:6.2f} M decisions/s (own cores)")
    return wall, cpu


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed")
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                tmp,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(10)


def threaded_rate(hit: Callable[[str], object], threads: int, per_thread: int) -> float:
    barrier = threading.Barrier(threads + 1)

    def work(offset: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            hit(KEYS[(offset + i) % len(KEYS)])

    pool = [threading.Thread(target=work, args=(t * 125,)) for t in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in pool:
        t.join()
    return threads * per_thread / (time.perf_counter() - start)


def shared_store(threads: int, per_thread: int) -> tuple[float | None, float | None]:
    item = parse(RULE)
    theirs = ours = None
    try:
        with redis_server() as uri:
            lim = strategies.MovingWindowRateLimiter(storage.storage_from_string(uri))
            threaded_rate(lambda k: lim.hit(item, k), threads, per_thread // 10)  # warm up
            theirs = threaded_rate(lambda k: lim.hit(item, k), threads, per_thread)
            print(f"  limits on Redis, moving window     {theirs:10.0f} decisions/s")
    except Exception as e:  # report and carry on with our side
        print(f"  limits on Redis: skipped ({type(e).__name__}: {e})")
    try:
        from blocktrust_native.pool import Pool
        from blocktrust_native.ratelimit.postgres import PgRateLimiter
        from validate_all_flows.embedded.postgres import TempPostgres

        with TempPostgres() as pg:
            dsn = pg.create_database("bench_ratelimit")
            with Pool(dsn, min_size=threads, max_size=threads, wait=True) as pool:
                lim = PgRateLimiter(pool, RULE, cleanup_interval=None, fail_open=True)
                threaded_rate(lim.hit, threads, per_thread // 10)  # warm up, create the table
                ours = threaded_rate(lim.hit, threads, per_thread)
                print(f"  ours, PgRateLimiter (PostgreSQL)   {ours:10.0f} decisions/s")
    except Exception as e:
        print(f"  PgRateLimiter: skipped ({type(e).__name__}: {e})")
    return theirs, ours


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small run")
    ap.add_argument("--build-dir", type=Path, default=ROOT / "build/py")
    args = ap.parse_args()
    calls, repeats = (100_000, 3) if args.quick else (1_000_000, 5)
    core_n = 2_000_000 if args.quick else 10_000_000
    shared_n = 500 if args.quick else 3_000

    print(f"host: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    print(f"1. in-process hit() from Python, 1,000 keys, rule {RULE}:")
    ip = in_process(calls, repeats)
    print("2. C++ core alone:")
    core = core_threads(args.build_dir, 2, core_n)
    print(f"3. shared store, 8 threads, 1,000 keys, rule {RULE}:")
    redis_rate, pg_rate = shared_store(8, shared_n)

    print("ratios (ours vs anchor):")
    pairs = [
        ("fixed window", "limits fixed window", "ours fixed_window", 5),
        ("moving window vs gcra", "limits moving window", "ours gcra", 15),
        ("sliding-window counter", "limits sliding-window counter", "ours sliding_window", 15),
    ]
    for name, theirs, ours, target in pairs:
        print(
            f"  ratio ours/limits {name}: {ip[theirs] / ip[ours]:.1f}x fewer us per call "
            f"(target >= {target}x)"
        )
    if core is not None:
        print(
            f"  C++ core on 2 threads: {core[0] / 1e6:.2f} M decisions/s wall clock, "
            f"{core[1] / 1e6:.2f} M per CPU-second (target >= 10 M/s)"
        )
    if redis_rate and pg_rate:
        print(
            f"  ratio ours/limits-on-Redis shared store: {pg_rate / redis_rate:.2f}x "
            f"({pg_rate:.0f} vs {redis_rate:.0f} decisions/s; target >= 1x)"
        )


if __name__ == "__main__":
    main()
