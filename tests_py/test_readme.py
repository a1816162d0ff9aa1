"""The README's Python examples run (those that need no server of their own)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.parametrize(
    "code",
    [b for b in BLOCKS if "Pool(" not in b and "run_flow(" not in b],
    ids=lambda b: b.split("\n")[0][:40],
)
def test_readme_example_runs(code: str) -> None:
    exec(compile(code, str(README), "exec"), {"email": "alice@example.org"})
