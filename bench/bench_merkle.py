"""Merkle root benchmark: blocktrust_native.digest.merkle_root against a straightforward hashlib
implementation of the same RFC 6962 tree, over 1,000,000 leaves of 64 bytes.

Also prints our nanoseconds per hashed node beside ``openssl speed -evp sha256 -bytes 64`` (one
SHA-256 of a 64-byte input through EVP, the per-hash limit of this machine's OpenSSL). A tree of
n leaves costs 2n - 1 hashes (n leaf hashes of 65 bytes, n - 1 node hashes of 65 bytes; each is
two SHA-256 compressions, like a 64-byte input).

    .venv/bin/python bench/bench_merkle.py [--quick] [--leaves N] [--repeat R]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from _common import best_cpu_of, best_of, openssl_sha256_bytes_per_s

from blocktrust_native import digest


def hashlib_merkle_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 MTH the way one would write it with hashlib: level by level, the lone last node
    of a level moving up unchanged (equivalent to splitting at the largest power of two)."""
    sha256 = hashlib.sha256
    if not leaves:
        return sha256(b"").digest()
    level = [sha256(b"\x00" + leaf).digest() for leaf in leaves]
    while len(level) > 1:
        nxt = [
            sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100,000 leaves, fewer repeats")
    ap.add_argument("--leaves", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n = 100_000 if args.quick else args.leaves
    repeat = 2 if args.quick else args.repeat

    blob = os.urandom(64 * n)
    leaves = [blob[i : i + 64] for i in range(0, len(blob), 64)]
    hashes = 2 * n - 1
    print(f"Merkle root (RFC 6962) over {n:,} leaves of 64 bytes = {hashes:,} SHA-256 hashes")
    print(f"  {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, best of {repeat}")

    anchor_s, anchor_root = best_of(repeat, lambda: hashlib_merkle_root(leaves))
    ours_s, ours_root = best_of(repeat, lambda: digest.merkle_root(leaves))
    packed_s, packed_root = best_of(repeat, lambda: digest.merkle_root_packed(blob, 64))
    tree_s, tree = best_of(1, lambda: digest.MerkleTree(leaves).root)
    assert ours_root == anchor_root == packed_root == tree, "roots differ"

    bytes_per_s = openssl_sha256_bytes_per_s(64, 1 if args.quick else 3)
    limit = 64 / bytes_per_s * 1e9 if bytes_per_s else None  # ns per 64-byte hash

    def row(name: str, seconds: float) -> None:
        print(f"  {name:<30}{seconds * 1e3:9.1f} ms  {seconds / hashes * 1e9:7.1f} ns/node")

    row("hashlib (anchor)", anchor_s)
    row("ours merkle_root", ours_s)
    row("ours merkle_root_packed", packed_s)
    row("ours MerkleTree (all levels)", tree_s)
    ours_ns = best_cpu_of(repeat, lambda: digest.merkle_root(leaves)) / hashes * 1e9
    anchor_cpu = best_cpu_of(1, lambda: hashlib_merkle_root(leaves))
    print(
        f"  CPU time: hashlib {anchor_cpu / hashes * 1e9:.1f} ns/node, ours {ours_ns:.1f} ns/node"
    )
    if limit is not None:
        print(
            f"  openssl speed -evp sha256 -bytes 64: {limit:.1f} ns/hash (its CPU time; the limit)"
        )
        print(
            f"  ours (CPU) {ours_ns:.1f} ns/node vs openssl {limit:.1f} "
            f"ns/hash: {limit / ours_ns:.2f}x"
        )
    else:
        print("  openssl speed: not available")
    print(f"ratio ours/anchor: {anchor_s / ours_s:.1f}x (target >= 4x)")


if __name__ == "__main__":
    main()
