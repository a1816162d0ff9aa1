# Stubs for blocktrust_native._native.jsonrpc (cpp/bindings/jsonrpc.cpp).

from collections.abc import Sequence

class Client:
    def __init__(
        self,
        url: str,
        connect_timeout: float = 5.0,
        request_timeout: float = 30.0,
        max_response_bytes: int = 268435456,
        verify_tls: bool = True,
        ca_file: str = "",
        headers: Sequence[tuple[str, str]] = (),
    ) -> None: ...
    def call(self, method: str, params_json: str = "[]") -> str: ...
    def batch(
        self, calls: Sequence[tuple[str, str]]
    ) -> list[tuple[bool, str | None, int, str, str | None]]: ...
    @property
    def url(self) -> str: ...

def redact_url(url: str) -> str: ...
