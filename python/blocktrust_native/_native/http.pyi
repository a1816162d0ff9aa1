# Stubs for blocktrust_native._native.http (see cpp/bindings/http.cpp).
from typing import Any, ClassVar

class HttpOptions:
    """Transport settings (seconds, bytes); immutable. The defaults are safe: TLS verified, bounded
    timeouts and sizes."""

    def __init__(
        self,
        *,
        connect_timeout: float = ...,
        request_timeout: float = ...,
        max_response_bytes: int = ...,
        max_header_bytes: int = ...,
        verify_tls: bool = ...,
        ca_file: str | None = None,
        follow_redirects: bool = ...,
        max_redirects: int = ...,
    ) -> None: ...
    @property
    def connect_timeout(self) -> float: ...
    @property
    def request_timeout(self) -> float: ...
    @property
    def max_response_bytes(self) -> int: ...
    @property
    def max_header_bytes(self) -> int: ...
    @property
    def verify_tls(self) -> bool: ...
    @property
    def ca_file(self) -> str | None: ...
    @property
    def follow_redirects(self) -> bool: ...
    @property
    def max_redirects(self) -> int: ...
    def __eq__(self, other: object) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

def http_request(
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    body: bytes,
    options: HttpOptions,
) -> dict[str, Any]:
    """One request on a fresh client; network failures are in result['error'];
    result['retries'] counts resends."""
