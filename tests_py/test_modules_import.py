"""Every module of both packages imports on this interpreter (requires-python >= 3.10 is true:
scripts/test-interpreters runs this file, with the fast subset it names, on 3.10 and 3.13, and
scripts/test runs scripts/test-interpreters)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import blocktrust_native
import validate_all_flows


def _modules() -> list[str]:
    names = []
    for pkg in (blocktrust_native, validate_all_flows):
        names.append(pkg.__name__)
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            if ".node_modules" in info.name or info.name.endswith("__main__"):
                continue  # __main__ modules run their program when imported
            names.append(info.name)
    return sorted(names)


MODULES = _modules()


def test_both_packages_have_modules() -> None:
    assert "blocktrust_native.flows.slo" in MODULES
    assert "validate_all_flows.embedded.service.app" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name: str) -> None:
    importlib.import_module(name)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The modules of ``modules`` that ``path`` imports, at any level of the file."""

    def owner(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out |= {owner(f"{node.module}.{a.name}") or owner(node.module) for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {owner(a.name) for a in node.names}
    return out - {""}


def test_the_tool_has_no_import_cycle() -> None:
    # Imports inside functions count: a cycle through one is still a cycle of the design.
    root = Path(validate_all_flows.__file__).parent
    files = {
        ".".join(p.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__"): p
        for p in root.rglob("*.py")
        if "node_modules" not in p.parts
    }
    graph = {m: _imports(p, set(files)) - {m} for m, p in files.items()}
    # A module is on a cycle when it reaches itself.
    on_cycle = []
    for start in graph:
        seen, todo = set(), list(graph[start])
        while todo:
            m = todo.pop()
            if m not in seen:
                seen.add(m)
                todo += graph[m]
        if start in seen:
            on_cycle.append(start)
    assert on_cycle == []


#: Modules the capability modules must not import at import time (issue 17: import in <= 80 ms);
#: each is imported by the function that needs it. Timing is a benchmark's job
#: (bench/bench_import.py); this test keeps the heavy imports from creeping back.
DEFERRED = (
    "asyncio",
    "blocktrust_native.ratelimit.middleware",
    "blocktrust_native.ratelimit.postgres",
    "blocktrust_native.ratelimit.redis",
    "concurrent.futures",
    "decimal",
    "importlib.abc",
    "ipaddress",
    "pathlib",
    "urllib.parse",
    "uuid",
    "xml.sax.saxutils",
)


def test_capability_modules_defer_heavy_imports() -> None:
    code = (
        "import sys, blocktrust_native.digest, blocktrust_native.pool, blocktrust_native.flows, "
        "blocktrust_native.apikeys, blocktrust_native.passwords, blocktrust_native.ratelimit, "
        "blocktrust_native.http, blocktrust_native.jsonrpc, blocktrust_native.redis\n"
        f"print(' '.join(m for m in {DEFERRED!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [], f"imported at import time: {out}"


def test_scripts_test_runs_the_other_interpreters_after_the_main_suite() -> None:
    root = Path(__file__).resolve().parent.parent
    stages = [
        line
        for line in (root / "scripts" / "test").read_text().splitlines()
        if line.startswith("stage ")
    ]
    main = [i for i, line in enumerate(stages) if line.startswith('stage "Python tests"')]
    others = [i for i, line in enumerate(stages) if "bash scripts/test-interpreters" in line]
    assert main, stages
    assert others, stages
    assert others[0] > main[0]  # a timed stage of its own, after the full suite
    script = (root / "scripts" / "test-interpreters").read_text()
    found = re.search(r"^subset=\((.*?)\)", script, re.S | re.M)
    assert found
    subset = found.group(1).split()
    assert "tests_py/test_modules_import.py" in subset
    missing = [f for f in subset if not (root / f).is_file()]
    assert missing == []
