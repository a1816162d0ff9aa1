"""HTTP with the native client (keep-alive, TLS through OpenSSL, timeouts, size caps): what the
flow runner and the JSON-RPC client use, for one-off requests such as probes and webhooks.

    r = http_request("GET", "https://api.example.com/health", request_timeout=5)
    if r["error"] or r["status"] != 200: ...
"""

from __future__ import annotations

from typing import Any

from blocktrust_native._native import http as _native

__all__ = ["http_request"]


def http_request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    connect_timeout: float = 5.0,
    request_timeout: float = 30.0,
    max_response_bytes: int = 8 << 20,
    max_header_bytes: int = 64 << 10,
    verify_tls: bool = True,
    ca_file: str | None = None,
    follow_redirects: bool = False,
    max_redirects: int = 5,
) -> dict[str, Any]:
    """One request with the native client; failures are in ``result['error']`` (never raised).

    Returns ``{status, headers, body, error, latency_s, retries}``; ConfigError for a URL it
    cannot send. ``retries`` counts the resends: a GET, HEAD, OPTIONS, TRACE, PUT or DELETE whose
    kept-alive connection (reused by a redirect to the same origin) closed before any byte of the
    answer is sent once more on a fresh one; a POST or a PATCH never is.
    """
    return dict(
        _native.http_request(
            method,
            url,
            list((headers or {}).items()),
            body,
            connect_timeout,
            request_timeout,
            max_response_bytes,
            max_header_bytes,
            verify_tls,
            ca_file or "",
            follow_redirects,
            max_redirects,
        )
    )
