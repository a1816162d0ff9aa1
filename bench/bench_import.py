"""Import time of blocktrust_native's capability modules beside psycopg's and cryptography's.

Each figure is a whole fresh interpreter (`python -c "import ..."`), runs interleaved so machine
load drifts hit every command alike; medians printed, and each import's cost over a bare
`python -c pass`. The target is <= 80 ms for ours (issue 17).

    python bench/bench_import.py                 # the interpreter's own blocktrust_native
    python bench/bench_import.py --wheel dist/blocktrust_native-...-cp311-...whl

With --wheel, a temporary venv gets the wheel plus psycopg[binary] and cryptography (from the
package index or pip's cache) and every command runs there.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OURS = (
    "import blocktrust_native.digest, blocktrust_native.pool, blocktrust_native.flows, "
    "blocktrust_native.apikeys, blocktrust_native.passwords, blocktrust_native.ratelimit"
)
COMMANDS = {
    "python -c pass": "pass",
    "blocktrust_native (6 modules)": OURS,
    "import psycopg": "import psycopg",
    "import cryptography (+ x509)": "import cryptography.x509",
}


def timed(python: str, code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([python, "-c", code], check=True)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", type=Path, help="measure this wheel in a fresh venv")
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        python = sys.executable
        if args.wheel:
            subprocess.run([sys.executable, "-m", "venv", f"{tmp}/venv"], check=True)
            python = f"{tmp}/venv/bin/python"
            subprocess.run(
                [python, "-m", "pip", "install", "-q", str(args.wheel), "psycopg[binary]",
                 "cryptography"],
                check=True,
            )  # fmt: skip
        for code in COMMANDS.values():  # warm-up: page cache, .pyc files
            timed(python, code)
        samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
        for _ in range(args.runs):
            for name, code in COMMANDS.items():
                samples[name].append(timed(python, code))
    med = {name: statistics.median(s) * 1000 for name, s in samples.items()}
    base = med["python -c pass"]
    print(f"{args.runs} interleaved runs each, medians (wall ms) with {python}")
    print(f"{'command':32} {'total':>8} {'import':>8}  {'min-max':>13}")
    for name, s in samples.items():
        lo, hi = min(s) * 1000, max(s) * 1000
        own = med[name] - base
        print(f"{name:32} {med[name]:8.1f} {own:8.1f}  {lo:6.1f}-{hi:6.1f}")
    ours = med["blocktrust_native (6 modules)"]
    print(
        f"ours / psycopg: {ours / med['import psycopg']:.2f}x, "
        f"ours / cryptography: {ours / med['import cryptography (+ x509)']:.2f}x (totals); "
        f"ours {ours:.1f} ms (target <= 80 ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
