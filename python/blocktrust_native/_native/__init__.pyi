# Stubs for the compiled module blocktrust_native._native (one submodule stub per capability).

__version__: str

# Test hooks of the one C++ -> Python error table (cpp/bindings/errors.cpp).
def _error_table() -> list[tuple[str, str]]:
    """The translation table: (C++ class, Python class) pairs, most derived first."""

def _raise_error(cpp_name: str) -> None:
    """Throws a sample of the C++ error class `cpp_name` (test hook)."""
