"""Import paths that moved, kept working for one release by an import hook (no file at the old
path, so version control follows each move). Importing a public old path warns with a
DeprecationWarning naming the new one; ``_polling`` was private and moves silently."""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import warnings
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.abc import Loader as _Loader
else:
    _Loader = object  # importlib.abc would cost ~30 ms of imports at start-up

#: Old module -> the module that holds its names now (public paths: removed in 0.3).
DEPRECATED = {
    "blocktrust_native.apikeys_store": "blocktrust_native.apikeys.store",
    "blocktrust_native.ratelimit_pg": "blocktrust_native.ratelimit.postgres",
    "blocktrust_native.ratelimit_middleware": "blocktrust_native.ratelimit.middleware",
    "blocktrust_native.ratelimit_redis": "blocktrust_native.ratelimit.redis",
}
#: Old modules that were never in a release (private, or moved the day they came): no warning.
RENAMED = {
    "blocktrust_native._polling": "blocktrust_native.workers",
    "blocktrust_native.apikeys_cli": "blocktrust_native.apikeys.cli",
}


class _Alias(_Loader):
    """Finds an old path and fills a module with the names of the new one (a meta path finder
    and its loader, by protocol)."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in DEPRECATED or fullname in RENAMED:
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        name = module.__name__
        new = DEPRECATED.get(name) or RENAMED[name]
        if name in DEPRECATED:
            # stacklevel 2 skips importlib's own frames: the warning names the importing line.
            warnings.warn(
                f"{name} is deprecated and will be removed in the next release; import {new}",
                DeprecationWarning,
                stacklevel=2,
            )
        target = importlib.import_module(new)
        module.__dict__.update(
            {k: v for k, v in vars(target).items() if not (k.startswith("__") and k != "__all__")}
        )
        module.__doc__ = f"Moved to {new}."


def install() -> None:
    """Adds the hook once (last, so a real module of the same name would win)."""
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.append(_Alias())
