"""Timing helpers shared by the benchmarks (best-of runs, `openssl speed` as the hardware limit)."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def best_of(repeat: int, fn: Callable[[], T]) -> tuple[float, T]:
    """Best wall-clock seconds of `repeat` runs (at least one), and the last result."""
    best, out = float("inf"), None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out  # type: ignore[return-value]


def best_cpu_of(repeat: int, fn: Callable[[], Any]) -> float:
    """Best process CPU seconds (user + system, all threads) of `repeat` runs: not inflated by
    other processes' load."""
    best = float("inf")
    for _ in range(max(1, repeat)):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def openssl_sha256_bytes_per_s(nbytes: int, seconds: int, elapsed: bool = False) -> float | None:
    """`openssl speed -evp sha256` throughput in bytes/s on `nbytes` blocks (None without openssl).
    By default openssl divides by its user CPU time; with `elapsed` by wall-clock time (what a
    loaded machine actually delivers)."""
    cmd = ["openssl", "speed", "-evp", "sha256", "-bytes", str(nbytes), "-seconds", str(seconds)]
    if elapsed:
        cmd.insert(2, "-elapsed")
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    m = re.search(r"^sha256\s+([\d.]+)k\s*$", out, re.MULTILINE)
    return float(m.group(1)) * 1000 if m else None
