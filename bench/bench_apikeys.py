"""API-key verification: blocktrust_native.apikeys against Python's hmac module.

The anchor is what a Python service would write by hand:
``hmac.compare_digest(hmac.digest(secret, token.encode(), "sha256"), stored)``.
Ours is ``codec.verify(token, stored)`` (which also checks prefix, shape and CRC32 first) and
``codec.verify_many(tokens, stored)`` for a batch (GIL released). Same 48-byte secret, same
2,000 freshly generated btk_live tokens for both; best of several rounds.

    .venv/bin/python bench/bench_apikeys.py [--quick]
"""

from __future__ import annotations

import argparse
import hmac
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from blocktrust_native.apikeys import ApiKeyCodec


def best_ns_per_item(run: Callable[[], object], items: int, rounds: int) -> float:
    """Best nanoseconds per item over `rounds` runs of `run` (each covering `items` items)."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter_ns()
        run()
        best = min(best, (time.perf_counter_ns() - start) / items)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    rounds = 5 if args.quick else 25
    n = 2000

    secret = os.urandom(48)
    codec = ApiKeyCodec("btk_live", secret)
    keys = [codec.generate() for _ in range(n)]
    tokens = [k.token for k in keys]
    digests = [k.digest for k in keys]
    pairs = list(zip(tokens, digests, strict=True))

    def anchor() -> None:
        for t, d in pairs:
            if not hmac.compare_digest(hmac.digest(secret, t.encode(), "sha256"), d):
                raise AssertionError("anchor rejected a valid key")

    verify = codec.verify

    def ours() -> None:
        for t, d in pairs:
            if not verify(t, d):
                raise AssertionError("verify rejected a valid key")

    def ours_many() -> None:
        if not all(codec.verify_many(tokens, digests)):
            raise AssertionError("verify_many rejected a valid key")

    a = best_ns_per_item(anchor, n, rounds)
    o = best_ns_per_item(ours, n, rounds)
    m = best_ns_per_item(ours_many, n, rounds)
    print(f"tokens: {n} x {len(tokens[0])} chars, rounds: {rounds} (best of)")
    print(f"anchor hmac.compare_digest(hmac.digest(...)): {a:8.0f} ns/key")
    print(f"ours   codec.verify(token, digest):           {o:8.0f} ns/key")
    print(f"ours   codec.verify_many(tokens, digests):    {m:8.0f} ns/key")
    print(f"ratio verify_many/anchor: {a / m:.1f}x (target >= 5x)")
    print(f"ratio verify/anchor: {a / o:.1f}x (target >= 2x)")


if __name__ == "__main__":
    main()
