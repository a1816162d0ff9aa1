"""File hashing benchmark, two parts in one run:

1. ``hash_files`` over 2,000 files of 16 KiB against a Python loop of open / read /
   hashlib.sha256 (the page cache is warm for both; target >= 2x).
2. ``hash_file`` of one 256 MiB file against ``openssl speed -evp sha256 -bytes 1048576``,
   the machine's SHA-256 limit on 1 MiB blocks with no I/O at all (target >= 0.9x).
   hashlib reading the same file in 1 MiB blocks is printed for reference.

    .venv/bin/python bench/bench_hash_files.py [--quick] [--dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from _common import best_cpu_of, best_of, openssl_sha256_bytes_per_s

from blocktrust_native import digest

MIB = 1024 * 1024


def python_loop(paths: list[str]) -> list[bytes]:
    """What one writes without us: open, read, hashlib, one file after another."""
    out = []
    for p in paths:
        with open(p, "rb") as f:
            out.append(hashlib.sha256(f.read()).digest())
    return out


def hashlib_file(path: str) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while block := f.read(MIB):
            h.update(block)
    return h.digest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="500 files and a 64 MiB file")
    ap.add_argument("--dir", default=None, help="where to write the files (default: a temp dir)")
    args = ap.parse_args()
    nfiles = 500 if args.quick else 2000
    big_mib = 64 if args.quick else 256
    repeat = 3 if args.quick else 5

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench_hash_files_") as tmp:
        paths = []
        for i in range(nfiles):
            p = os.path.join(tmp, f"doc{i:05d}.bin")
            with open(p, "wb") as f:
                f.write(os.urandom(16 * 1024))
            paths.append(p)
        big = os.path.join(tmp, "big.bin")
        with open(big, "wb") as f:
            for _ in range(big_mib):
                f.write(os.urandom(MIB))
        python_loop(paths)  # warm the page cache for both sides
        hashlib_file(big)

        print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, best of {repeat}")
        print(f"hash_files: {nfiles:,} files of 16 KiB")
        loop_s, expected = best_of(repeat, lambda: python_loop(paths))
        ours_s, got = best_of(repeat, lambda: digest.hash_files(paths))
        one_s, got1 = best_of(repeat, lambda: digest.hash_files(paths, threads=1))
        assert got == got1 == expected, "digests differ"
        for name, secs in (
            ("Python open/read/hashlib loop", loop_s),
            ("ours hash_files (all cores)", ours_s),
            ("ours hash_files(threads=1)", one_s),
        ):
            print(f"  {name:<31}{secs * 1e3:8.1f} ms  {nfiles / secs:9.0f} files/s")
        loop_cpu = best_cpu_of(repeat, lambda: python_loop(paths))
        ours_cpu = best_cpu_of(repeat, lambda: digest.hash_files(paths))
        print(
            f"  CPU time per file (all threads): Python loop {loop_cpu / nfiles * 1e6:.1f} us,"
            f" ours {ours_cpu / nfiles * 1e6:.1f} us"
        )

        print(f"hash_file: one file of {big_mib} MiB")
        size = big_mib * MIB
        secs = 1 if args.quick else 3
        hl_s, hl = best_of(repeat, lambda: hashlib_file(big))
        file_s, ours = best_of(repeat, lambda: digest.hash_file(big))
        assert ours == hl, "digests differ"
        limit_wall = openssl_sha256_bytes_per_s(MIB, secs, elapsed=True)
        file_cpu = best_cpu_of(repeat, lambda: digest.hash_file(big))
        limit_cpu = openssl_sha256_bytes_per_s(MIB, secs)

        def mbs(seconds: float) -> str:
            return f"{size / seconds / 1e6:9.1f} MB/s"

        print(f"  hashlib, 1 MiB reads (wall)            {mbs(hl_s)}")
        print(f"  ours hash_file (wall)                  {mbs(file_s)}")
        print(f"  ours hash_file (CPU: user+sys)         {mbs(file_cpu)}")
        if limit_wall is None or limit_cpu is None:
            print("openssl speed: not available")
        else:
            print(f"  openssl speed -elapsed (wall, no I/O)  {limit_wall / 1e6:9.1f} MB/s")
            print(f"  openssl speed (its CPU time, no I/O)   {limit_cpu / 1e6:9.1f} MB/s")
            cpu_ratio = size / file_cpu / limit_cpu
            wall_ratio = size / file_s / limit_wall
            print(f"  CPU vs CPU (ours user+sys, incl. the read copy): {cpu_ratio:.2f}x")
            print(f"ratio hash_file/openssl (wall vs -elapsed): {wall_ratio:.2f}x (target >= 0.9x)")
        print(f"ratio ours/anchor (hash_files): {loop_s / ours_s:.1f}x (target >= 2x)")


if __name__ == "__main__":
    main()
