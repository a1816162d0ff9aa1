# Stubs for the compiled module blocktrust_native._native (one submodule stub per capability).

__version__: str
