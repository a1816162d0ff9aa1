"""A small blocking HTTP helper for single probes (the flow runner does the heavy lifting)."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

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
    """One request; never raises for network errors (they come back in ``error``)."""
    parts = urlsplit(url)
    hdrs = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    t0 = time.monotonic()
    conn = cls(parts.hostname or "", parts.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        ms = (time.monotonic() - t0) * 1000
        return HttpResult(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data, ms)
    except (OSError, http.client.HTTPException) as exc:
        ms = (time.monotonic() - t0) * 1000
        return HttpResult(0, {}, b"", ms, f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()
