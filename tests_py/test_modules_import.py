"""Every module of both packages imports on this interpreter (requires-python >= 3.10 is true:
scripts/test-interpreters runs this file, with the fast subset it names, on 3.10 and 3.13)."""

from __future__ import annotations

import importlib
import pkgutil

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
