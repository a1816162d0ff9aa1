"""Rate limits shared through Redis: RedisRateLimiter against `limits` with its Redis storage,
and against our PostgreSQL store, in one run.

    .venv/bin/python bench/bench_ratelimit_redis.py [--quick] [--threads 8]

Every contender makes decisions from N threads (default 8) over 1,000 keys with the rule
100/second, against one redis-server started here on loopback (and, for PgRateLimiter, a
throwaway PostgreSQL cluster). Contenders run interleaved, best of 3 rounds, so a busy host slows
them alike. Pairs: limits moving window vs ours sliding_window (both exact-on-one-key windows over
Redis), limits fixed window vs ours fixed_window, and ours gcra on Redis vs on PostgreSQL. Ratios
are printed last (target: ours >= 3x limits on Redis).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "python"), str(ROOT)]

from limits import parse, storage, strategies  # noqa: E402

from blocktrust_native.ratelimit_redis import RedisRateLimiter  # noqa: E402
from blocktrust_native.redis import RedisClient  # noqa: E402
from validate_all_flows.embedded.redis import TempRedis  # noqa: E402

RULE = "100/second"
KEYS = [f"user:{i}" for i in range(1000)]


def threaded_rate(hit: Callable[[str], object], threads: int, per_thread: int) -> float:
    """Decisions per second of ``threads`` threads making ``per_thread`` decisions each."""
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small run")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    per_thread = 1_000 if args.quick else 5_000
    threads = args.threads
    item = parse(RULE)

    print(f"host: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} (1 min average)")
    with TempRedis() as server:
        url = server.url
        # Separate databases: limits names a key the same for both strategies.
        base = url.rsplit("/", 1)[0]
        moving = strategies.MovingWindowRateLimiter(storage.storage_from_string(base + "/1"))
        fixed = strategies.FixedWindowRateLimiter(storage.storage_from_string(base + "/2"))
        client = RedisClient(url, pool_size=threads)
        contenders: dict[str, Callable[[str], object]] = {
            "limits moving window (Redis)": lambda k: moving.hit(item, k),
            "limits fixed window (Redis)": lambda k: fixed.hit(item, k),
            "ours sliding_window (Redis)": RedisRateLimiter(client, RULE, "sliding_window").hit,
            "ours fixed_window (Redis)": RedisRateLimiter(client, RULE, "fixed_window").hit,
            "ours gcra (Redis)": RedisRateLimiter(client, RULE, "gcra").hit,
        }
        pg_ctx = None
        try:
            from blocktrust_native.pool import Pool
            from blocktrust_native.ratelimit_pg import PgRateLimiter
            from validate_all_flows.embedded.postgres import TempPostgres

            pg_ctx = TempPostgres().start()
            dsn = pg_ctx.create_database("bench_ratelimit")
            pool = Pool(dsn, min_size=threads, max_size=threads)
            contenders["ours gcra (PostgreSQL)"] = PgRateLimiter(
                pool, RULE, cleanup_interval=None
            ).hit
        except Exception as e:  # report and carry on with the Redis side
            print(f"  PgRateLimiter: skipped ({type(e).__name__}: {e})")
        try:
            for fn in contenders.values():
                threaded_rate(fn, threads, per_thread // 10)  # warm up: connections, scripts
            best = dict.fromkeys(contenders, 0.0)
            for _ in range(args.rounds):
                for label, fn in contenders.items():
                    best[label] = max(best[label], threaded_rate(fn, threads, per_thread))
        finally:
            if pg_ctx is not None:
                pg_ctx.stop()
    print(f"decisions/s, {threads} threads, 1,000 keys, rule {RULE}, best of {args.rounds}:")
    for label, rate in best.items():
        print(f"  {label:32s} {rate:10.0f}")
    print("ratios (ours vs anchor):")
    pairs = [
        ("sliding_window vs limits moving window", "ours sliding_window (Redis)",
         "limits moving window (Redis)", 3),
        ("fixed_window vs limits fixed window", "ours fixed_window (Redis)",
         "limits fixed window (Redis)", 3),
        ("gcra vs limits moving window", "ours gcra (Redis)", "limits moving window (Redis)", 3),
    ]  # fmt: skip
    for name, ours, theirs, target in pairs:
        print(f"  {name}: {best[ours] / best[theirs]:.1f}x (target >= {target}x)")
    if "ours gcra (PostgreSQL)" in best:
        ratio = best["ours gcra (Redis)"] / best["ours gcra (PostgreSQL)"]
        print(f"  gcra on Redis vs our PostgreSQL store: {ratio:.1f}x")


if __name__ == "__main__":
    main()
