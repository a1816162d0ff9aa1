"""The pytest plugin runs each check group as a test against a given deployment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from validate_all_flows.embedded.postgres import free_port

ROOT = Path(__file__).resolve().parents[1]


def test_check_groups_run_as_tests_and_report_failures(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "DATABASE_URL=postgresql://db.internal/app\n"
        "JWT_SECRET=k3Jx9vQ2mZ7pL4tR8wY1nB6cF0hD5sGa\n"
        "SUMSUB_APP_TOKEN=sbx:a1b2c3d4a1b2c3d4\n"
        "SUMSUB_SECRET_KEY=Zr8q9w8e7r6q9w8e7r6\n"
        "API_KEY_SALT=aG5sD0fH6cB1nY8wR4tL7pZ2mQ9vXj3k\n"
    )
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "python"), str(ROOT)])}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "validate_all_flows.pytest_plugin",
            "--pyargs",
            "validate_all_flows",
            "-rA",
            "-q",
            "-p",
            "no:cacheprovider",
            "--blocktrust-url",
            nobody,
            "--blocktrust-env-file",
            str(env_file),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "PASSED test_deployment.py::test_deployment[env]" in out
    for group in ("http", "flows", "security"):
        assert f"FAILED test_deployment.py::test_deployment[{group}]" in out
    for reason in ("no database given", "not given: --rpc-url and --contracts", "no logs given"):
        assert reason in out  # database and workers, chain, logs: skipped with the reason
    assert "3 failed, 1 passed, 4 skipped" in out
    assert "k3Jx9vQ2mZ7pL4tR8wY1nB6cF0hD5sGa" not in out
