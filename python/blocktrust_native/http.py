"""HTTP with the native client (keep-alive, TLS through OpenSSL, timeouts, size caps): what the
flow runner and the JSON-RPC client use, for one-off requests such as probes and webhooks.

    r = http_request("GET", "https://api.example.com/health", request_timeout=5)
    if r["error"] or r["status"] != 200: ...

Transport settings are one :class:`HttpOptions` (its defaults are the C++ core's, defined once),
taken by :func:`http_request`, :func:`blocktrust_native.flows.run_flow` and
:class:`blocktrust_native.jsonrpc.JsonRpcClient`: pass ``options=HttpOptions(...)``, or its fields
as keyword arguments (``request_timeout=5``), which build one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from blocktrust_native._native import http as _native

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["HttpOptionArgs", "HttpOptions", "http_request", "transport_options"]

#: Transport settings (seconds, bytes), immutable: ``HttpOptions(request_timeout=5)``; every
#: field not given keeps the core's default (connect 5 s, request 30 s, 8 MiB body, 64 KiB headers,
#: TLS verified against the system store, no redirects followed, at most 5 when followed).
#: ConfigError for a timeout that is not positive or is longer than 7 days.
HttpOptions = _native.HttpOptions


class HttpOptionArgs(TypedDict, total=False):
    """The fields of :class:`HttpOptions`, as keyword arguments of the functions that take one."""

    connect_timeout: float
    request_timeout: float
    max_response_bytes: int
    max_header_bytes: int
    verify_tls: bool
    ca_file: str | None
    follow_redirects: bool
    max_redirects: int


def transport_options(
    options: HttpOptions | None, overrides: Mapping[str, Any], base: HttpOptions | None = None
) -> HttpOptions:
    """The settings to use: ``options`` (else ``base``, else the defaults) with ``overrides``
    (keyword arguments named as the fields of :class:`HttpOptions`) applied."""
    start = options if options is not None else base
    if not overrides:
        return start if start is not None else HttpOptions()
    if start is None:
        return HttpOptions(**overrides)
    fields = {name: getattr(start, name) for name in HttpOptionArgs.__annotations__}
    return HttpOptions(**(fields | dict(overrides)))


def http_request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    options: HttpOptions | None = None,
    **transport: Unpack[HttpOptionArgs],
) -> dict[str, Any]:
    """One request with the native client; failures are in ``result['error']`` (never raised).

    ``options`` (or keyword arguments named as its fields) sets timeouts, caps and TLS. Returns
    ``{status, headers, body, error, latency_s, retries}``; ConfigError for a URL it cannot send.
    ``retries`` counts the resends: a GET, HEAD, OPTIONS, TRACE, PUT or DELETE whose kept-alive
    connection (reused by a redirect to the same origin) closed before any byte of the answer is
    sent once more on a fresh one; a POST or a PATCH never is.
    """
    return dict(
        _native.http_request(
            method,
            url,
            list((headers or {}).items()),
            body,
            transport_options(options, transport),
        )
    )
