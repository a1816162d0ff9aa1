"""The one C++ -> Python error table (cpp/bindings/errors.cpp): every C++ error class of the public
headers is in it, and a C++ error of each class arrives in Python as the class of the same name,
with its attributes."""

from __future__ import annotations

import errno
import re
from pathlib import Path

import pytest

from blocktrust_native import _native, errors

HEADERS = Path(__file__).resolve().parent.parent / "cpp" / "include" / "blocktrust"

# C++ error classes that never reach Python as themselves, and why.
NOT_TRANSLATED = {
    # The pool binding's abandon callback stops a wait because a Python exception is pending
    # (Ctrl-C); the binding raises that exception instead.
    "blocktrust::pool::AcquireAbandoned",
}

# C++ classes whose Python class has another name (none: the Redis ones took the Python names).
NAMED_DIFFERENTLY: dict[str, str] = {}

_NAMESPACE = re.compile(r"^namespace (blocktrust(?:::\w+)*) \{", re.M)
_CLASS = re.compile(r"^class (\w+)(?: final)? : public ([\w:]+) \{", re.M)


def cpp_error_classes() -> set[str]:
    """Every class of the public headers that derives (directly or not) from blocktrust::Error."""
    bases: dict[str, str] = {}  # qualified class -> qualified base
    for header in sorted(HEADERS.glob("*.hpp")):
        text = header.read_text()
        spans = [(m.start(), m.group(1)) for m in _NAMESPACE.finditer(text)]
        for m in _CLASS.finditer(text):
            ns = next(name for start, name in reversed(spans) if start < m.start())
            bases[f"{ns}::{m.group(1)}"] = (
                m.group(2) if "::" in m.group(2) else f"{ns}::{m.group(2)}"
            )
    for name, base in bases.items():  # a base from an enclosing namespace (ConfigError in http)
        if base not in bases and not base.startswith("std::"):
            bases[name] = "blocktrust::" + base.rsplit("::", 1)[1]

    def is_error(name: str) -> bool:
        while name != "blocktrust::Error":
            if name not in bases:
                return False
            name = bases[name]
        return True

    return {name for name in bases if is_error(name)}


TABLE = [tuple(row) for row in _native._error_table()]


def test_the_header_scan_finds_the_known_classes() -> None:
    found = cpp_error_classes()
    for name in (
        "blocktrust::Error",
        "blocktrust::http::HttpConfigError",
        "blocktrust::pool::IntegrityError",
        "blocktrust::flows::FlowSpecError",
    ):
        assert name in found
    assert "blocktrust::ratelimit::SteadyClock" not in found


def test_every_cpp_error_class_is_in_the_table() -> None:
    assert {cpp for cpp, _ in TABLE} == cpp_error_classes() - NOT_TRANSLATED


def test_each_row_names_the_python_class_of_the_same_name() -> None:
    for cpp, python in TABLE:
        assert python == NAMED_DIFFERENTLY.get(cpp, cpp.rsplit("::", 1)[1])
        assert python in errors.__all__


@pytest.mark.parametrize(("cpp", "python"), TABLE, ids=[cpp for cpp, _ in TABLE])
def test_a_cpp_error_arrives_as_its_python_class(cpp: str, python: str) -> None:
    cls = getattr(errors, python)
    with pytest.raises(errors.Error) as info:
        _native._raise_error(cpp)
    # Exactly this class: an earlier row for a base class would shadow this one.
    assert type(info.value) is cls
    assert "sample message" in str(info.value)


def test_the_translated_errors_keep_their_attributes() -> None:
    with pytest.raises(errors.IntegrityError) as db:
        _native._raise_error("blocktrust::pool::IntegrityError")
    assert (db.value.sqlstate, db.value.detail, db.value.hint) == (
        "XX000",
        "sample detail",
        "sample hint",
    )
    with pytest.raises(errors.PoolTimeout) as timeout:
        _native._raise_error("blocktrust::pool::PoolTimeout")
    assert timeout.value.waited == 1.5
    with pytest.raises(errors.ChainConnectionError) as conn:
        _native._raise_error("blocktrust::jsonrpc::ChainConnectionError")
    assert conn.value.http_status == 502
    with pytest.raises(errors.JsonRpcError) as rpc:
        _native._raise_error("blocktrust::jsonrpc::JsonRpcError")
    assert (rpc.value.code, rpc.value.message, rpc.value.data) == (
        -32601,
        "method not found",
        '{"x":1}',
    )
    with pytest.raises(errors.FileReadError) as read:
        _native._raise_error("blocktrust::FileReadError")
    assert (read.value.errno, read.value.filename) == (errno.EIO, "/sample/path")


def test_an_unknown_name_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        _native._raise_error("blocktrust::NoSuchError")
