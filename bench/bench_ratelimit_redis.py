"""Rate limits shared through Redis: RedisRateLimiter against `limits` with its Redis storage,
and against our PostgreSQL store, in one run.

    .venv/bin/python bench/bench_ratelimit_redis.py [--quick] [--threads 8]

Every contender makes decisions from N threads (default 8) over 1,000 keys with the rule
100/second, against one redis-server started here on loopback (and, for PgRateLimiter, a
throwaway PostgreSQL cluster). Contenders run interleaved, best of 3 rounds, so a busy host slows
them alike. Pairs: limits moving window vs ours sliding_window (both exact-on-one-key windows over
Redis), limits fixed window vs ours fixed_window, and each of our algorithms on Redis vs on our
PostgreSQL store. Ratios are printed last (target: ours >= 3x limits on Redis). The anchor is
``limits`` as a user sets it up: ``storage_from_string("redis://...")``, i.e. redis-py.

Besides decisions per second (wall clock, which a loaded host squeezes for everyone), each
contender's CPU time per decision is printed: this process's (the client side, all threads) and
redis-server's (from /proc), which other processes' load does not inflate as much.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "python"), str(ROOT)]

from limits import parse, storage, strategies  # noqa: E402

from blocktrust_native.ratelimit.redis import RedisRateLimiter  # noqa: E402
from blocktrust_native.redis import RedisClient  # noqa: E402
from validate_all_flows.embedded.redis import TempRedis  # noqa: E402

RULE = "100/second"
KEYS = [f"user:{i}" for i in range(1000)]


def server_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def threaded_rate(
    hit: Callable[[str], object], threads: int, per_thread: int, server_pid: int | None = None
) -> tuple[float, float, float]:
    """(decisions per second, client CPU us per decision, server CPU us per decision) of
    ``threads`` threads making ``per_thread`` decisions each."""
    barrier = threading.Barrier(threads + 1)

    def work(offset: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            hit(KEYS[(offset + i) % len(KEYS)])

    pool = [threading.Thread(target=work, args=(t * 125,)) for t in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    start, cpu = time.perf_counter(), time.process_time()
    server = server_cpu_s(server_pid) if server_pid else 0.0
    for t in pool:
        t.join()
    n = threads * per_thread
    server_us = (server_cpu_s(server_pid) - server) / n * 1e6 if server_pid else float("nan")
    return n / (time.perf_counter() - start), (time.process_time() - cpu) / n * 1e6, server_us


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small run")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pool-size", type=int, default=None, help="our client's connections")
    args = ap.parse_args()
    per_thread = 1_000 if args.quick else 5_000
    threads = args.threads
    item = parse(RULE)

    print(f"host: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} (1 min average)")
    with TempRedis() as server:
        url = server.url
        assert server.proc is not None
        redis_pid = server.proc.pid
        # Separate databases: limits names a key the same for both strategies.
        base = url.rsplit("/", 1)[0]
        moving = strategies.MovingWindowRateLimiter(storage.storage_from_string(base + "/1"))
        fixed = strategies.FixedWindowRateLimiter(storage.storage_from_string(base + "/2"))
        client = RedisClient(url, pool_size=args.pool_size)
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
            from blocktrust_native.ratelimit.postgres import PgRateLimiter
            from validate_all_flows.embedded.postgres import TempPostgres

            pg_ctx = TempPostgres().start()
            dsn = pg_ctx.create_database("bench_ratelimit")
            pool = Pool(dsn, min_size=threads, max_size=threads)
            for algo in ("sliding_window", "fixed_window", "gcra"):
                contenders[f"ours {algo} (PostgreSQL)"] = PgRateLimiter(
                    pool, RULE, algo, cleanup_interval=None, fail_open=True
                ).hit
        except Exception as e:  # report and carry on with the Redis side
            print(f"  PgRateLimiter: skipped ({type(e).__name__}: {e})")
        try:
            for fn in contenders.values():
                threaded_rate(fn, threads, per_thread // 10)  # warm up: connections, scripts
            best = dict.fromkeys(contenders, 0.0)
            client_us = dict.fromkeys(contenders, float("inf"))
            server_us = dict.fromkeys(contenders, float("inf"))
            for _ in range(args.rounds):
                for label, fn in contenders.items():
                    pid = redis_pid if "(Redis)" in label else None
                    rate, c_us, s_us = threaded_rate(fn, threads, per_thread, pid)
                    best[label] = max(best[label], rate)
                    client_us[label] = min(client_us[label], c_us)
                    server_us[label] = min(server_us[label], s_us)
        finally:
            if pg_ctx is not None:
                pg_ctx.stop()
    print(f"{threads} threads, 1,000 keys, rule {RULE}, best of {args.rounds}:")
    print(f"  {'':32s} {'decisions/s':>12s} {'client CPU us':>14s} {'redis CPU us':>13s}")
    for label, rate in best.items():
        s_us = server_us[label]
        server = f"{s_us:13.1f}" if math.isfinite(s_us) else f"{'-':>13s}"  # not on Redis
        print(f"  {label:32s} {rate:12.0f} {client_us[label]:14.1f} {server}")
    print("ratios (ours vs anchor):")
    pairs = [
        ("sliding_window vs limits moving window", "ours sliding_window (Redis)",
         "limits moving window (Redis)", 3),
        ("fixed_window vs limits fixed window", "ours fixed_window (Redis)",
         "limits fixed window (Redis)", 3),
        ("gcra vs limits moving window", "ours gcra (Redis)", "limits moving window (Redis)", 3),
    ]  # fmt: skip
    for name, ours, theirs, target in pairs:
        print(
            f"  {name}: {best[ours] / best[theirs]:.1f}x decisions/s (target >= {target}x); "
            f"{client_us[theirs] / client_us[ours]:.1f}x less client CPU, "
            f"{server_us[theirs] / server_us[ours]:.1f}x less redis-server CPU per decision"
        )
    for algo in ("sliding_window", "fixed_window", "gcra"):
        if f"ours {algo} (PostgreSQL)" in best:
            ratio = best[f"ours {algo} (Redis)"] / best[f"ours {algo} (PostgreSQL)"]
            print(f"  {algo} on Redis vs on our PostgreSQL store: {ratio:.1f}x")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
