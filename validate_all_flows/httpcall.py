"""Single HTTP probes for the checks, on the native client (``blocktrust_native.flows``).

The flow runner does the heavy lifting; this is the one-request face the checks use, with the
answer as a small value object whose failures never raise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from blocktrust_native.errors import ConfigError
from blocktrust_native.http import http_request

__all__ = ["HttpResult", "call"]


@dataclass(frozen=True)
class HttpResult:
    """A response (or ``error`` when none came): status, headers (lower-case), body, latency."""

    status: int
    headers: dict[str, str]
    body: bytes
    ms: float
    error: str = ""

    def json(self) -> Any:
        """The body parsed as JSON (None when it is not JSON)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def call(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    json_body: Any = None,
    timeout: float = 10.0,
) -> HttpResult:
    """One request; never raises for network errors or unusable URLs (they come back in
    ``error``)."""
    hdrs = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    try:
        r = http_request(
            method,
            url,
            headers=hdrs,
            body=body or b"",
            connect_timeout=min(timeout, 5.0),
            request_timeout=timeout,
        )
    except ConfigError as exc:
        return HttpResult(0, {}, b"", 0.0, f"ConfigError: {exc}")
    got: dict[str, str] = {}
    for k, v in r["headers"]:
        got.setdefault(k.lower(), v)  # the first of repeated fields, as http.client gives
    return HttpResult(r["status"], got, bytes(r["body"]), r["latency_s"] * 1000, r["error"])
