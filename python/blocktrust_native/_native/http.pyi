# Stubs for blocktrust_native._native.http (see cpp/bindings/http.cpp).
from typing import Any

def http_request(
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    body: bytes,
    connect_timeout: float,
    request_timeout: float,
    max_response_bytes: int,
    max_header_bytes: int,
    verify_tls: bool,
    ca_file: str,
    follow_redirects: bool,
    max_redirects: int,
) -> dict[str, Any]:
    """One request on a fresh client; network failures are in result['error'];
    result['retries'] counts resends."""
