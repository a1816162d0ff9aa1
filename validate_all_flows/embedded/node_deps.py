"""Installs the embedded stack's Node tools (solc-js and anvil) with ``npm ci``, idempotently.

The versions are pinned in ``contracts/package.json`` and ``contracts/package-lock.json``; the
packages land in ``contracts/node_modules`` (gitignored). A stamp holding the lock file's hash makes
a second run a no-op until the lock file changes::

    python -m validate_all_flows.embedded.node_deps [--force]

Imports nothing from ``blocktrust_native`` so set-up can run it before the native module is built.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["ANVIL_PACKAGE", "PACKAGE_DIR", "NodeToolsError", "anvil_path", "ensure_node_tools"]

#: The directory holding package.json, package-lock.json, the contracts and build.mjs.
PACKAGE_DIR = Path(__file__).resolve().parent / "contracts"
#: The npm package that ships the anvil binary for Linux x86-64.
ANVIL_PACKAGE = "@foundry-rs/anvil-linux-amd64"
_STAMP = PACKAGE_DIR / "node_modules" / ".blocktrust-npm-ci"


class NodeToolsError(RuntimeError):
    """Raised when npm is missing or ``npm ci`` fails; the message names the step and the output."""


def anvil_path() -> Path:
    """Where ``npm ci`` puts the anvil binary (it may not exist yet)."""
    return PACKAGE_DIR / "node_modules" / ANVIL_PACKAGE / "bin" / "anvil"


def _lock_digest() -> str:
    h = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        h.update((PACKAGE_DIR / name).read_bytes())
    return h.hexdigest()


def _installed() -> bool:
    solc = PACKAGE_DIR / "node_modules" / "solc" / "package.json"
    return (
        _STAMP.is_file()
        and _STAMP.read_text().strip() == _lock_digest()
        and anvil_path().is_file()
        and solc.is_file()
    )


def ensure_node_tools(*, force: bool = False, quiet: bool = False) -> bool:
    """Runs ``npm ci`` unless the pinned tools are already installed; True when it ran."""
    if not force and _installed():
        return False
    npm = shutil.which("npm")
    if npm is None:
        raise NodeToolsError(
            "npm not found on PATH; install Node.js 20+ and npm (scripts/setup installs Debian's)"
        )
    if not quiet:
        print(f"node_deps: npm ci in {PACKAGE_DIR}", file=sys.stderr)
    proc = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=PACKAGE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip()[-2000:]
        raise NodeToolsError(f"npm ci in {PACKAGE_DIR} failed (exit {proc.returncode}):\n{tail}")
    if not anvil_path().is_file():
        raise NodeToolsError(f"npm ci succeeded but {anvil_path()} is missing")
    _STAMP.write_text(_lock_digest() + "\n")
    return True


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; exit status 0 on success, 1 on failure."""
    parser = argparse.ArgumentParser(prog="python -m validate_all_flows.embedded.node_deps")
    parser.add_argument("--force", action="store_true", help="run npm ci even if up to date")
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    args = parser.parse_args(argv)
    try:
        ran = ensure_node_tools(force=args.force, quiet=args.quiet)
    except NodeToolsError as e:
        print(f"node_deps: {e}", file=sys.stderr)
        return 1
    if not args.quiet:
        print("node_deps: installed" if ran else "node_deps: up to date", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
