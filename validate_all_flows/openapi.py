"""What a service's OpenAPI document (FastAPI's ``/openapi.json``) says about its routes: which
operations need a bearer token or an API key, and where the login is. Read by the security
checks of profiles that take their protected routes from it and by ``init-profile``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from validate_all_flows.httpcall import call

__all__ = ["OPENAPI_PATHS", "OpenApi", "fetch_openapi"]

#: Where services usually publish their OpenAPI document, most common first.
OPENAPI_PATHS = ("/openapi.json", "/api/openapi.json", "/docs/openapi.json", "/swagger.json")
_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass
class OpenApi:
    """The parts of an OpenAPI document the validator uses."""

    path: str  # where it was found
    doc: dict[str, Any]
    bearer_schemes: set[str] = field(default_factory=set)
    api_key_headers: dict[str, str] = field(default_factory=dict)  # scheme -> header name
    title: str = ""
    version: str = ""

    @classmethod
    def parse(cls, path: str, doc: dict[str, Any]) -> OpenApi:
        """Reads the security schemes of ``doc``."""
        info = doc.get("info")
        if not isinstance(info, dict):
            info = {}
        out = cls(path, doc, title=str(info.get("title", "")), version=str(info.get("version", "")))
        comps = doc.get("components") or {}
        schemes = comps.get("securitySchemes") or {} if isinstance(comps, dict) else {}
        for name, sch in schemes.items() if isinstance(schemes, dict) else ():
            if not isinstance(sch, dict):
                continue
            kind = sch.get("type")
            if kind == "oauth2" or (kind == "http" and str(sch.get("scheme")).lower() == "bearer"):
                out.bearer_schemes.add(name)
            elif kind == "apiKey" and sch.get("in") == "header" and sch.get("name"):
                out.api_key_headers[name] = str(sch["name"])
        return out

    def operations(self) -> list[tuple[str, str, list[str]]]:
        """(METHOD, path, security scheme names) of every operation."""
        out = []
        default = self.doc.get("security") or []
        for path, item in (self.doc.get("paths") or {}).items():
            if not isinstance(item, dict):
                continue
            for method in _METHODS:
                op = item.get(method)
                if not isinstance(op, dict):
                    continue
                sec = op.get("security", default) or []
                names = [n for req in sec if isinstance(req, dict) for n in req]
                out.append((method.upper(), str(path), names))
        return out

    def protected(self, kind: str, header: str | None = None) -> list[tuple[str, str]]:
        """(METHOD, path) of the GET operations needing a bearer token (``kind`` "bearer") or
        the API key in ``header`` ("api_key"); routes without path parameters first, a path
        parameter filled with ``1`` (credentials are refused before the route is resolved)."""
        if kind == "bearer":
            wanted = self.bearer_schemes
        else:
            wanted = {
                n
                for n, h in self.api_key_headers.items()
                if header is None or h.lower() == header.lower()
            }
        ops = [(m, p) for m, p, names in self.operations() if m == "GET" and wanted & set(names)]
        ops.sort(key=lambda op: ("{" in op[1], op[1]))
        return [(m, re.sub(r"\{[^}]+\}", "1", p)) for m, p in ops]

    def login_route(self) -> tuple[str, str, str] | None:
        """(METHOD, path, token field) of the route that hands out tokens: the OAuth2 password
        flow's tokenUrl, else a POST path named like a login."""
        comps = self.doc.get("components") or {}
        for sch in (comps.get("securitySchemes") or {}).values():
            flows = sch.get("flows") if isinstance(sch, dict) else None
            pw = flows.get("password") if isinstance(flows, dict) else None
            if isinstance(pw, dict) and pw.get("tokenUrl"):
                url = str(pw["tokenUrl"])
                return "POST", url if url.startswith("/") else "/" + url, "/access_token"
        for method, path, _ in self.operations():
            if method == "POST" and re.search(r"(^|/)(login|token|signin|sign-in|auth)$", path):
                return "POST", path, "/access_token"
        return None


def fetch_openapi(base_url: str, timeout: float = 10.0) -> OpenApi | None:
    """The service's OpenAPI document from the usual paths (None when it publishes none)."""
    base = base_url.rstrip("/")
    for path in OPENAPI_PATHS:
        r = call("GET", base + path, timeout=timeout)
        doc = r.json() if r.status == 200 else None
        if isinstance(doc, dict) and ("openapi" in doc or "swagger" in doc):
            return OpenApi.parse(path, doc)
    return None
