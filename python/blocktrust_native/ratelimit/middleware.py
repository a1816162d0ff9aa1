"""Rate limiting for web apps: ASGI middleware (Starlette, FastAPI), WSGI middleware (Flask), a
route decorator, and key functions (client address behind trusted proxies, API-key id, user id).

    app.add_middleware(                              # FastAPI / Starlette
        RateLimitMiddleware,
        routes={"POST /login": "5/15minutes", "POST /register": "3/hour", "/upload*": "10/hour"},
        default="600/minute",
        key=client_address(trusted_proxies=["10.0.0.0/8"]),
    )
    app.wsgi_app = WsgiRateLimitMiddleware(app.wsgi_app, routes=..., key=...)   # Flask

A denied request gets ``429 Too Many Requests`` with ``Retry-After``; every limited response
carries ``RateLimit-Limit``, ``RateLimit-Remaining``, ``RateLimit-Reset`` and ``RateLimit-Policy``
(draft-ietf-httpapi-ratelimit-headers-06). The ASGI middleware decides in-process limits inline
(well under a microsecond) and awaits ``hit_async`` of a shared store (``PgRateLimiter``), which
runs on worker threads, so the event loop never waits on the database.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from blocktrust_native.errors import ConfigError
from blocktrust_native.ratelimit.limiter import (
    Decision,
    Limiter,
    RateLimiter,
    Rule,
    rate_limit_headers,
)

__all__ = [
    "KeyFunc",
    "RateLimitMiddleware",
    "RequestInfo",
    "WsgiRateLimitMiddleware",
    "api_key_id",
    "client_address",
    "first_of",
    "rate_limit",
    "user_id",
]


class RequestInfo:
    """What a key function sees of a request, the same for ASGI and WSGI."""

    __slots__ = ("_headers", "client", "method", "path", "raw")

    def __init__(
        self, method: str, path: str, client: str | None, headers: Mapping[str, str], raw: Any
    ) -> None:
        self.method = method
        self.path = path
        self.client = client  # the peer address of the TCP connection
        self._headers = headers
        self.raw = raw  # the ASGI scope or the WSGI environ

    def header(self, name: str) -> str | None:
        """The request header ``name`` (case-insensitive), repeated fields joined with commas."""
        return self._headers.get(name.lower())

    @classmethod
    def from_scope(cls, scope: Mapping[str, Any]) -> RequestInfo:
        """From an ASGI HTTP scope."""
        headers: dict[str, str] = {}
        for k, v in scope.get("headers", ()):
            name = k.decode("latin-1").lower()
            value = v.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        client = scope.get("client")
        return cls(scope["method"], scope["path"], client[0] if client else None, headers, scope)

    @classmethod
    def from_environ(cls, environ: Mapping[str, Any]) -> RequestInfo:
        """From a WSGI environ."""
        headers = {
            k[5:].replace("_", "-").lower(): str(v)
            for k, v in environ.items()
            if k.startswith("HTTP_")
        }
        for k in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if k in environ:
                headers[k.replace("_", "-").lower()] = str(environ[k])
        return cls(
            environ.get("REQUEST_METHOD", "GET"),
            environ.get("PATH_INFO", "") or "/",
            environ.get("REMOTE_ADDR"),
            headers,
            environ,
        )


#: A key function maps a request to the key it is limited under, or None to not limit it.
KeyFunc = Callable[[RequestInfo], "str | None"]


def client_address(
    trusted_proxies: Iterable[str] = (), *, header: str = "x-forwarded-for", ipv6_prefix: int = 64
) -> KeyFunc:
    """Keys by client IP. ``X-Forwarded-For`` is believed only when the peer is one of
    ``trusted_proxies`` (addresses or CIDR networks), and is walked from the right past further
    trusted hops, so a client cannot pick its own key. IPv6 clients are grouped by their
    ``/ipv6_prefix`` network (default /64, what one subscriber usually holds)."""
    import ipaddress  # here, not at import: only apps that key by address pay for it

    try:
        nets = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]
    except ValueError as e:
        raise ConfigError(f"trusted_proxies: {e}") from None
    if not 0 < ipv6_prefix <= 128:
        raise ConfigError(f"ipv6_prefix must be within 1..128, got {ipv6_prefix}")

    def trusted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(ip in n for n in nets)

    def key(req: RequestInfo) -> str | None:
        if req.client is None:
            return None
        try:
            ip = ipaddress.ip_address(req.client)
        except ValueError:
            return f"ip:{req.client}"  # e.g. a unix socket path: one bucket for it
        if nets and trusted(ip):
            forwarded = req.header(header)
            for hop in reversed(forwarded.split(",") if forwarded else ()):
                try:
                    ip = ipaddress.ip_address(hop.strip())
                except ValueError:
                    break  # a garbled hop: stop at the last address we could verify
                if not trusted(ip):
                    break
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.ipv4_mapped is not None:
                return f"ip:{ip.ipv4_mapped}"
            net = ipaddress.ip_network(f"{ip}/{ipv6_prefix}", strict=False)
            return f"ip:{net.network_address}/{ipv6_prefix}"
        return f"ip:{ip}"

    return key


def api_key_id(
    header: str = "authorization",
    *,
    scheme: str | None = "Bearer",
    id_of: Callable[[str], str | None] | None = None,
) -> KeyFunc:
    """Keys by API key. The key is ``id_of(token)`` (e.g. the key's public id) or a SHA-256
    fingerprint of the token, so the secret itself is never held as a key; None without one."""
    import hashlib  # here, not at import: only apps that key by API key pay for it

    def key(req: RequestInfo) -> str | None:
        value = req.header(header)
        if not value:
            return None
        token = value.strip()
        if scheme:
            word, _, rest = token.partition(" ")
            if word.lower() != scheme.lower() or not rest.strip():
                return None
            token = rest.strip()
        ident = id_of(token) if id_of else hashlib.sha256(token.encode()).hexdigest()[:32]
        return None if ident is None else f"key:{ident}"

    return key


def user_id(get: Callable[[RequestInfo], object | None]) -> KeyFunc:
    """Keys by the user ``get(request)`` returns (e.g. from a session or a verified JWT)."""

    def key(req: RequestInfo) -> str | None:
        uid = get(req)
        return None if uid is None else f"user:{uid}"

    return key


def first_of(*keys: KeyFunc) -> KeyFunc:
    """The first key any of ``keys`` finds, e.g. ``first_of(api_key_id(), client_address())``."""

    def key(req: RequestInfo) -> str | None:
        for k in keys:
            found = k(req)
            if found is not None:
                return found
        return None

    return key


def _as_limiter(spec: str | Limiter) -> Limiter:
    if isinstance(spec, str):
        return RateLimiter(spec)
    if not isinstance(spec, Limiter):
        raise ConfigError(f"a route limit must be a rule string or a limiter, not {spec!r}")
    return spec


@dataclass(frozen=True)
class _Route:
    pattern: str
    method: str | None
    path: str
    prefix: bool
    limiter: Limiter
    rules: tuple[Rule, ...]  # the limiter's rules, read once (for RateLimit-Policy)

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and method != self.method:
            return False
        return path.startswith(self.path) if self.prefix else path == self.path


def _routes(
    routes: Mapping[str, str | Limiter] | None, default: str | Limiter | None
) -> list[_Route]:
    table = []
    for pattern, spec in (routes or {}).items():
        method, _, path = pattern.strip().rpartition(" ")
        if not path.startswith("/"):
            raise ConfigError(f"route {pattern!r}: expected '[METHOD] /path' or '/prefix*'")
        prefix = path.endswith("*")
        limiter = _as_limiter(spec)
        table.append(
            _Route(
                pattern,
                method.upper() or None,
                path.rstrip("*"),
                prefix,
                limiter,
                tuple(limiter.rules),
            )
        )
    if default is not None:
        limiter = _as_limiter(default)
        table.append(_Route("*", None, "/", True, limiter, tuple(limiter.rules)))
    if not table:
        raise ConfigError("rate limit middleware needs routes or a default limit")
    return table


class _Policy:
    """The shared part of both middlewares: which route, which key, which headers."""

    def __init__(
        self,
        routes: Mapping[str, str | Limiter] | None,
        default: str | Limiter | None,
        key: KeyFunc,
        cost: Callable[[RequestInfo], int] | None,
    ) -> None:
        self.table = _routes(routes, default)
        self.key = key
        self.cost = cost

    def match(self, method: str, path: str) -> _Route | None:
        route: _Route
        for route in self.table:
            if route.matches(method, path):
                return route
        return None

    def key_and_cost(self, route: _Route, req: RequestInfo) -> tuple[str, int] | None:
        k = self.key(req)
        if k is None:
            return None
        return f"{route.pattern}|{k}", (self.cost(req) if self.cost else 1)


def _headers(rules: Sequence[Rule], decision: Decision) -> dict[str, str]:
    return rate_limit_headers(decision, rules[decision.rule_index])


def _body(decision: Decision) -> bytes:
    retry = -(-decision.retry_after_ns // 1_000_000_000)
    return json.dumps({"detail": "Too Many Requests", "retry_after": max(1, retry)}).encode()


async def _decide_async(limiter: Limiter, key: str, cost: int) -> Decision:
    hit_async: Callable[[str, int], Awaitable[Decision]] | None = getattr(
        limiter, "hit_async", None
    )
    if hit_async is not None:
        return await hit_async(key, cost)
    return limiter.hit(key, cost)  # in-process: sub-microsecond, fine on the loop


class RateLimitMiddleware:
    """ASGI middleware: ``routes`` maps ``"[METHOD] /path"`` (or ``/prefix*``) to a rule string
    or limiter, first match wins; ``default`` covers every other path (None: unlimited).
    ``key`` picks the key (default: client address, no trusted proxies); ``cost`` optionally
    weighs a request. Requests a key function returns None for pass unlimited."""

    def __init__(
        self,
        app: Callable[..., Awaitable[None]],
        *,
        routes: Mapping[str, str | Limiter] | None = None,
        default: str | Limiter | None = None,
        key: KeyFunc | None = None,
        cost: Callable[[RequestInfo], int] | None = None,
    ) -> None:
        self.app = app
        self.policy = _Policy(routes, default, key or client_address(), cost)

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self.policy.match(scope["method"], scope["path"])
        found = route and self.policy.key_and_cost(route, RequestInfo.from_scope(scope))
        if route is None or not found:
            await self.app(scope, receive, send)
            return
        decision = await _decide_async(route.limiter, *found)
        extra = [
            (k.lower().encode(), v.encode()) for k, v in _headers(route.rules, decision).items()
        ]
        if not decision.allowed:
            body = _body(decision)
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        *extra,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class WsgiRateLimitMiddleware:
    """WSGI middleware with the same settings as :class:`RateLimitMiddleware`."""

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        *,
        routes: Mapping[str, str | Limiter] | None = None,
        default: str | Limiter | None = None,
        key: KeyFunc | None = None,
        cost: Callable[[RequestInfo], int] | None = None,
    ) -> None:
        self.app = app
        self.policy = _Policy(routes, default, key or client_address(), cost)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        route = self.policy.match(
            environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
        )
        found = route and self.policy.key_and_cost(route, RequestInfo.from_environ(environ))
        if route is None or not found:
            return self.app(environ, start_response)
        decision = route.limiter.hit(*found)
        extra = list(_headers(route.rules, decision).items())
        if not decision.allowed:
            body = _body(decision)
            start_response(
                "429 Too Many Requests",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *extra],
            )
            return [body]

        def start_with_headers(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            return start_response(status, [*headers, *extra], exc_info)

        return self.app(environ, start_with_headers)


def _find_starlette_request(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        from starlette.requests import Request
    except ImportError:  # pragma: no cover - starlette is optional
        return None
    for value in (*args, *kwargs.values()):
        if isinstance(value, Request):
            return value
    return None


def _starlette_response(kwargs: dict[str, Any]) -> Any:
    from starlette.responses import Response

    for value in kwargs.values():
        if isinstance(value, Response):
            return value
    return None


def rate_limit(
    limit: str | Limiter, *, key: KeyFunc | None = None, cost: int = 1
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Limits one route. Flask views: works as is. Starlette/FastAPI endpoints: declare a
    ``request: Request`` parameter (and ``response: Response`` to get the RateLimit fields on
    success when the endpoint returns plain data). Denied calls answer 429 with Retry-After."""
    limiter = _as_limiter(limit)
    rules = tuple(limiter.rules)
    keyf = key or client_address()

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        ns = f"{fn.__module__}.{fn.__qualname__}|"

        def key_for(info: RequestInfo) -> str | None:
            k = keyf(info)
            return None if k is None else ns + k

        if inspect.iscoroutinefunction(fn):
            params = inspect.signature(fn).parameters.values()
            if not any(p.name == "request" or "Request" in str(p.annotation) for p in params):
                # Found at import time rather than on the first request.
                raise ConfigError(f"{fn.__qualname__}: declare a `request: Request` parameter")

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                from starlette.responses import Response

                request = _find_starlette_request(args, kwargs)
                if request is None:
                    raise ConfigError(f"{fn.__qualname__}: declare a `request: Request` parameter")
                k = key_for(RequestInfo.from_scope(request.scope))
                if k is None:
                    return await fn(*args, **kwargs)
                decision = await _decide_async(limiter, k, cost)
                headers = _headers(rules, decision)
                if not decision.allowed:
                    return Response(_body(decision), 429, headers, "application/json")
                result = await fn(*args, **kwargs)
                target = result if isinstance(result, Response) else _starlette_response(kwargs)
                if target is not None:
                    target.headers.update(headers)
                return result

            return async_wrapper

        @functools.wraps(fn)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            request = _find_starlette_request(args, kwargs)
            if request is not None:
                raise ConfigError(f"{fn.__qualname__}: use rate_limit on async endpoints")
            import flask

            k = key_for(RequestInfo.from_environ(flask.request.environ))
            if k is None:
                return fn(*args, **kwargs)
            decision = limiter.hit(k, cost)
            headers = _headers(rules, decision)
            if not decision.allowed:
                response = flask.make_response(_body(decision), 429)
                response.headers["Content-Type"] = "application/json"
            else:
                response = flask.make_response(fn(*args, **kwargs))
            response.headers.update(headers)
            return response

        return sync_wrapper

    return decorate
