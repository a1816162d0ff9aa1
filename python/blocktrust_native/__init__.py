"""blocktrust_native: native, fast and safe building blocks for Python backends on PostgreSQL.

The capabilities live in submodules (``blocktrust_native.digest``, ``.apikeys``, ...);
this package re-exports the exception root and the version.
"""

from __future__ import annotations

from blocktrust_native import _moved
from blocktrust_native._native import __version__
from blocktrust_native.errors import ConfigError, Error, FileReadError

__all__ = ["ConfigError", "Error", "FileReadError", "__version__"]

_moved.install()
