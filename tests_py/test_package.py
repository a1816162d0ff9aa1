"""The package imports, exposes its version and its exception root."""

from __future__ import annotations

import importlib.metadata
import re

import blocktrust_native
from blocktrust_native import errors


def test_version_is_the_pyproject_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", blocktrust_native.__version__)
    try:
        installed = importlib.metadata.version("blocktrust-native")
    except importlib.metadata.PackageNotFoundError:
        return  # running from the in-tree build, not an installed distribution
    assert installed == blocktrust_native.__version__


def test_every_error_derives_from_the_root() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, blocktrust_native.Error), name
        assert cls.__doc__, f"{name} has no docstring"
