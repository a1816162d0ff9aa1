"""Command line of ``python -m validate_all_flows``.

The flow checks and the GO / NO-GO verdict are not built yet; until they are, the command reports
the native library's known-answer self-check and says plainly that it validates no deployment.
Exit codes: 0 self-check passed, 1 a self-check failed, 2 the native library cannot be loaded.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]

_NOT_YET = (
    "flows: not validated. The deployment flows (register, KYC -> NFT, signatures, duress "
    "fail-safe), the embedded stack and the GO / NO-GO verdict come in a later release; this run "
    "checked only the native library."
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m validate_all_flows",
        description="Validate a Blocktrust deployment (today: the native library self-check).",
    )
    p.add_argument("--version", action="store_true", help="print the version and exit")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        import blocktrust_native
    except ImportError as exc:
        print(f"cannot run: the native library does not load: {exc}", file=sys.stderr)
        return 2
    if args.version:
        print(f"validate_all_flows {blocktrust_native.__version__}")
        return 0

    from validate_all_flows.selfcheck import run_selfcheck

    print(f"blocktrust_native {blocktrust_native.__version__}: native self-check")
    results = run_selfcheck()
    for r in results:
        print(f"  {'PASS' if r.passed else 'FAIL'}  {r.id:<18} {r.detail}")
    failed = [r.id for r in results if not r.passed]
    print(f"self-check: {len(results) - len(failed)}/{len(results)} passed")
    print(_NOT_YET)
    return 1 if failed else 0
