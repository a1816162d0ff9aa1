"""The package imports, exposes its version and its exception root; moved modules still import."""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import sys
import warnings

import pytest

import blocktrust_native
from blocktrust_native import errors, workers


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


MOVED = [
    ("blocktrust_native.apikeys_store", "blocktrust_native.apikeys.store", "PgKeyStore"),
    ("blocktrust_native.ratelimit_pg", "blocktrust_native.ratelimit.postgres", "PgRateLimiter"),
    (
        "blocktrust_native.ratelimit_middleware",
        "blocktrust_native.ratelimit.middleware",
        "RateLimitMiddleware",
    ),
    ("blocktrust_native.ratelimit_redis", "blocktrust_native.ratelimit.redis", "RedisRateLimiter"),
]


@pytest.mark.parametrize(("old", "new", "name"), MOVED)
def test_a_moved_module_still_imports_with_a_deprecation_warning(
    old: str, new: str, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=re.escape(new)) as caught:
        __import__(old)  # what an import statement does
    module = sys.modules[old]
    # The same objects, not copies, and the warning points at the importing line (this file).
    assert getattr(module, name) is getattr(importlib.import_module(new), name)
    assert caught[0].filename == __file__
    assert module.__all__ == importlib.import_module(new).__all__


def test_the_worker_loop_keeps_its_private_path_without_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "blocktrust_native._polling", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        old = importlib.import_module("blocktrust_native._polling")
    assert old.PollingThread is workers.PollingThread


def test_the_public_names_stay_where_they_were() -> None:
    from blocktrust_native import apikeys, flows, http, ratelimit

    assert (
        apikeys.PgKeyStore is importlib.import_module("blocktrust_native.apikeys.store").PgKeyStore
    )
    assert ratelimit.PgRateLimiter.__module__ == "blocktrust_native.ratelimit.postgres"
    assert flows.http_request is http.http_request
