"""Pool benchmark: blocktrust_native.pool against psycopg_pool (psycopg 3, C implementation).

Starts its own throwaway PostgreSQL cluster, then measures with the same pool sizes:
  * throughput of SELECT 1 and of a small parameterised INSERT from 8 threads, pool of 8;
  * latency of the same from one thread;
  * pgbench -n -c 8 -j 2 -f select1.sql as the server's ceiling for SELECT 1 here.
Both libraries run in autocommit (psycopg_pool would otherwise add a COMMIT round trip) and use
the pool the way their docs show: ``with pool.connection() as conn: conn.execute(...)``.

    .venv/bin/python bench/bench_pool.py [--quick]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from blocktrust_native.pool import Pool
from validate_all_flows.embedded.postgres import TempPostgres

THREADS = 8
SELECT = "SELECT 1"
INSERT_OURS = "INSERT INTO bench_items (id, name, price) VALUES ($1, $2, $3)"
INSERT_PSYCOPG = "INSERT INTO bench_items (id, name, price) VALUES (%s, %s, %s)"


def throughput(work: Callable[[int], None], threads: int, seconds: float) -> float:
    """Operations per second of `work` called in a loop by `threads` threads."""
    counts = [0] * threads
    stop = threading.Event()
    go = threading.Barrier(threads + 1)

    def loop(slot: int) -> None:
        go.wait()
        n = 0
        while not stop.is_set():
            work(slot * 10_000_000 + n)
            n += 1
        counts[slot] = n

    ts = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    go.wait()
    start = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in ts:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


def latency(work: Callable[[int], None], n: int) -> float:
    """Median seconds per call over `n` calls (after a warm-up)."""
    for i in range(200):
        work(i)
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        work(i)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def pgbench_tps(pg: TempPostgres, seconds: int) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write("SELECT 1;\n")
        script = f.name
    out = subprocess.run(
        [
            str(pg.bindir / "pgbench"),
            "-n",
            "-c",
            str(THREADS),
            "-j",
            "2",
            "-T",
            str(seconds),
            "-f",
            script,
            "-h",
            "127.0.0.1",
            "-p",
            str(pg.port),
            "-U",
            "postgres",
            "postgres",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    Path(script).unlink()
    m = re.search(r"tps = ([0-9.]+) \((?:without initial connection time|excluding)", out.stdout)
    if not m:
        raise RuntimeError(f"cannot read pgbench output:\n{out.stdout}")
    return float(m.group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short runs (about 15 s in all)")
    args = ap.parse_args()
    secs = 1.0 if args.quick else 4.0
    nlat = 2000 if args.quick else 10000

    import psycopg
    import psycopg_pool

    print(
        f"psycopg {psycopg.__version__} ({psycopg.pq.__impl__}), psycopg_pool "
        f"{psycopg_pool.__version__}; {THREADS} threads, pools of {THREADS}"
    )
    with TempPostgres() as pg:
        dsn = pg.dsn()
        pg.psql("CREATE TABLE bench_items (id bigint, name text, price float8)")

        ours = Pool(dsn, min_size=THREADS, max_size=THREADS, wait=True)
        anchor = psycopg_pool.ConnectionPool(
            dsn, min_size=THREADS, max_size=THREADS, kwargs={"autocommit": True}, open=True
        )
        anchor.wait()

        def ours_select(_i: int) -> None:
            with ours.connection() as conn:
                conn.execute(SELECT)

        def ours_insert(i: int) -> None:
            with ours.connection() as conn:
                conn.execute(INSERT_OURS, (i, "item", 9.99))

        def anchor_select(_i: int) -> None:
            with anchor.connection() as conn:
                conn.execute(SELECT).fetchall()

        def anchor_insert(i: int) -> None:
            with anchor.connection() as conn:
                conn.execute(INSERT_PSYCOPG, (i, "item", 9.99))

        results: dict[str, tuple[float, float]] = {}
        for name, o, a in (
            ("select", ours_select, anchor_select),
            ("insert", ours_insert, anchor_insert),
        ):
            # Alternate the two and keep each one's best of two runs, so neither pays for the
            # other's warm-up or for a noisy moment.
            o_best = a_best = 0.0
            for _ in range(2):
                o_best = max(o_best, throughput(o, THREADS, secs))
                a_best = max(a_best, throughput(a, THREADS, secs))
            results[f"{name}_tput"] = (o_best, a_best)
            print(
                f"{name:6s} 8 threads: ours {o_best:9.0f} ops/s   psycopg_pool {a_best:9.0f} ops/s"
            )
        for name, o, a in (
            ("select", ours_select, anchor_select),
            ("insert", ours_insert, anchor_insert),
        ):
            o_lat, a_lat = latency(o, nlat), latency(a, nlat)
            results[f"{name}_lat"] = (o_lat, a_lat)
            print(
                f"{name:6s} 1 thread:  ours {o_lat * 1e6:7.1f} us/op    psycopg_pool "
                f"{a_lat * 1e6:7.1f} us/op (median)"
            )
        ours.close()
        anchor.close()
        ceiling = pgbench_tps(pg, 2 if args.quick else 5)
        print(f"pgbench -c 8 -j 2 SELECT 1: {ceiling:.0f} tps (server ceiling)")

    so, sa = results["select_tput"]
    io, ia = results["insert_tput"]
    lo, la = results["select_lat"]
    jo, ja = results["insert_lat"]
    # Latency ratios are anchor/ours (higher is better for us), like the throughput ones.
    print(f"ours SELECT 1 throughput as a fraction of pgbench: {so / ceiling:.2f}")
    print(f"ratio ours/anchor latency INSERT, 1 thread: {ja / jo:.2f}x (target >= 1.2x)")
    print(f"ratio ours/anchor latency SELECT 1, 1 thread: {la / lo:.2f}x (target >= 1.2x)")
    print(f"ratio ours/anchor throughput INSERT 8 threads: {io / ia:.2f}x (target >= 1.5x)")
    print(f"ratio ours/anchor throughput SELECT 1 8 threads: {so / sa:.2f}x (target >= 1.5x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
