"""The Solidity contracts: committed artifacts match a fresh solc-js compile; behaviour on a real anvil."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from validate_all_flows.embedded.node_deps import PACKAGE_DIR, ensure_node_tools

ARTIFACTS = PACKAGE_DIR / "artifacts"
NAMES = ("IdentityNFT", "ProofRegistry", "FailSafe")


@pytest.mark.slow
def test_committed_artifacts_match_a_fresh_compile(tmp_path: Path) -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not installed (scripts/setup installs them); cannot recompile")
    ensure_node_tools(quiet=True)
    proc = subprocess.run(
        ["node", str(PACKAGE_DIR / "build.mjs"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for name in NAMES:
        fresh = json.loads((tmp_path / f"{name}.json").read_text())
        committed = json.loads((ARTIFACTS / f"{name}.json").read_text())
        assert fresh["compiler"] == committed["compiler"], name
        assert fresh["abi"] == committed["abi"], f"{name}: ABI differs; run node build.mjs"
        assert fresh["bytecode"] == committed["bytecode"], f"{name}: bytecode differs"
        assert fresh["deployedBytecode"] == committed["deployedBytecode"], name
        assert (tmp_path / f"{name}.json").read_text() == (ARTIFACTS / f"{name}.json").read_text()


def test_artifacts_name_the_pinned_compiler() -> None:
    pinned = json.loads((PACKAGE_DIR / "package.json").read_text())["devDependencies"]["solc"]
    for name in NAMES:
        art = json.loads((ARTIFACTS / f"{name}.json").read_text())
        assert art["contractName"] == name
        assert art["compiler"]["version"].startswith(pinned + "+commit."), name
        assert art["bytecode"].startswith("0x") and len(art["bytecode"]) > 1000
        assert any(e.get("type") == "constructor" for e in art["abi"])


@pytest.mark.slow
def test_build_check_mode_detects_a_stale_artifact(tmp_path: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("node not installed (scripts/setup installs it)")
    ensure_node_tools(quiet=True)
    # Copy the package dir (without node_modules) so the committed artifacts are never touched.
    work = tmp_path / "contracts"
    shutil.copytree(PACKAGE_DIR, work, ignore=shutil.ignore_patterns("node_modules"))
    (work / "node_modules").symlink_to(PACKAGE_DIR / "node_modules")
    ok = subprocess.run(
        ["node", str(work / "build.mjs"), "--check"], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    art = work / "artifacts" / "FailSafe.json"
    art.write_text(art.read_text().replace('"bytecode": "0x', '"bytecode": "0x00', 1))
    bad = subprocess.run(
        ["node", str(work / "build.mjs"), "--check"], capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert "FailSafe" in bad.stderr
