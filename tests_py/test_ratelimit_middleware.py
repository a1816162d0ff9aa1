"""Rate-limit middleware and decorator on real servers: FastAPI under uvicorn and Flask under
werkzeug, both on a free loopback port, driven over HTTP with httpx."""

from __future__ import annotations

import contextlib
from typing import Any

import flask
import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fix_asgi import serve_asgi as _serve_asgi
from fix_wsgi import serve_wsgi

from blocktrust_native.errors import ConfigError
from blocktrust_native.ratelimit import ManualClock, RateLimiter
from blocktrust_native.ratelimit.middleware import (
    RateLimitMiddleware,
    RequestInfo,
    WsgiRateLimitMiddleware,
    api_key_id,
    client_address,
    first_of,
    rate_limit,
    user_id,
)


def serve_asgi(app: Any) -> contextlib.AbstractContextManager[str]:
    # proxy_headers=False: uvicorn would otherwise rewrite the client from X-Forwarded-For itself.
    return _serve_asgi(app, proxy_headers=False)


def fastapi_app(**middleware: Any) -> FastAPI:
    app = FastAPI()

    @app.post("/login")
    async def login() -> dict:
        return {"ok": True}

    @app.get("/items/{n}")
    async def item(n: int) -> dict:
        return {"n": n}

    @app.get("/health")
    async def health() -> dict:
        return {"ok": True}

    app.add_middleware(RateLimitMiddleware, **middleware)
    return app


def test_asgi_middleware_limits_per_route_with_headers_on_every_response() -> None:
    clock = ManualClock(50.0)
    login = RateLimiter("3/minute", clock=clock)
    app = fastapi_app(
        routes={"POST /login": login, "/health": RateLimiter("1000/second", clock=clock)},
        default=RateLimiter("5/second", clock=clock),
    )
    with serve_asgi(app) as base, httpx.Client(base_url=base) as client:
        got = [client.post("/login") for _ in range(4)]
        assert [r.status_code for r in got] == [200, 200, 200, 429]
        assert [r.headers["ratelimit-remaining"] for r in got] == ["2", "1", "0", "0"]
        assert got[0].headers["ratelimit-policy"] == "3;w=60"
        assert got[0].headers["ratelimit-limit"] == "3"
        assert "retry-after" not in got[0].headers
        denied = got[3]
        assert denied.headers["retry-after"] == "20"
        assert denied.headers["ratelimit-reset"] == "60"
        assert denied.json() == {"detail": "Too Many Requests", "retry_after": 20}
        # Other routes have their own limits; the default covers /items/*.
        assert client.get("/health").headers["ratelimit-limit"] == "1000"
        statuses = [client.get(f"/items/{i}").status_code for i in range(6)]
        assert statuses == [200] * 5 + [429]
        clock.advance(20)
        assert client.post("/login").status_code == 200
        assert client.post("/login").status_code == 429


def test_asgi_trusted_proxy_decides_whether_x_forwarded_for_counts() -> None:
    clock = ManualClock()
    trusting = fastapi_app(
        default=RateLimiter("1/minute", clock=clock),
        key=client_address(trusted_proxies=["127.0.0.0/8"]),
    )
    with serve_asgi(trusting) as base, httpx.Client(base_url=base) as client:
        a = {"X-Forwarded-For": "203.0.113.9, 198.51.100.1"}
        assert client.get("/health", headers=a).status_code == 200
        assert client.get("/health", headers=a).status_code == 429
        b = {"X-Forwarded-For": "198.51.100.2"}
        assert client.get("/health", headers=b).status_code == 200
    untrusting = fastapi_app(default=RateLimiter("1/minute", clock=clock))
    with serve_asgi(untrusting) as base, httpx.Client(base_url=base) as client:
        # Without a trusted proxy the header is the client's own claim: ignored.
        assert client.get("/health", headers={"X-Forwarded-For": "192.0.2.1"}).status_code == 200
        assert client.get("/health", headers={"X-Forwarded-For": "192.0.2.2"}).status_code == 429


def test_asgi_decorator_on_a_fastapi_route() -> None:
    app = FastAPI()
    limiter = RateLimiter("2/hour", clock=ManualClock())

    @app.get("/export")
    @rate_limit(limiter)
    async def export(request: Request, response: Response) -> dict:
        return {"rows": 3}

    with pytest.raises(ConfigError, match="request: Request"):

        @rate_limit("1/hour")
        async def no_request() -> dict:
            return {}

    with serve_asgi(app) as base, httpx.Client(base_url=base) as client:
        first = client.get("/export")
        assert first.json() == {"rows": 3}
        assert first.headers["ratelimit-remaining"] == "1"
        assert client.get("/export").status_code == 200
        denied = client.get("/export")
        assert denied.status_code == 429
        assert denied.headers["retry-after"] == "1800"


def flask_app() -> flask.Flask:
    app = flask.Flask("ratelimit_test")

    @app.post("/login")
    def login() -> Any:
        return {"ok": True}

    @app.get("/open")
    def open_route() -> Any:
        return "open"

    return app


def test_wsgi_middleware_on_flask() -> None:
    clock = ManualClock()
    app = flask_app()
    app.wsgi_app = WsgiRateLimitMiddleware(  # type: ignore[method-assign]
        app.wsgi_app,
        routes={"POST /login": RateLimiter("2/15minutes", clock=clock)},
        key=first_of(api_key_id(), client_address()),
    )
    with serve_wsgi(app) as base, httpx.Client(base_url=base) as client:
        got = [client.post("/login") for _ in range(3)]
        assert [r.status_code for r in got] == [200, 200, 429]
        assert got[1].headers["ratelimit-remaining"] == "0"
        assert got[2].headers["retry-after"] == "450"
        assert got[2].json()["retry_after"] == 450
        # A request with an API key is counted under the key, not the address.
        auth = {"Authorization": "Bearer tok_live_abc123"}
        assert client.post("/login", headers=auth).status_code == 200
        open_resp = client.get("/open")
        assert open_resp.status_code == 200
        assert "ratelimit-limit" not in open_resp.headers  # unmatched route: not limited


def test_flask_route_decorator() -> None:
    app = flask.Flask("ratelimit_decorator")
    limiter = RateLimiter("1/minute", clock=ManualClock())

    @app.post("/upload")
    @rate_limit(limiter, key=user_id(lambda req: req.header("x-user")))
    def upload() -> Any:
        return {"stored": True}

    with serve_wsgi(app) as base, httpx.Client(base_url=base) as client:
        ann = {"X-User": "ann"}
        ok = client.post("/upload", headers=ann)
        assert ok.status_code == 200
        assert ok.json() == {"stored": True}
        assert ok.headers["ratelimit-remaining"] == "0"
        denied = client.post("/upload", headers=ann)
        assert denied.status_code == 429
        assert denied.headers["retry-after"] == "60"
        assert client.post("/upload", headers={"X-User": "bob"}).status_code == 200
        assert client.post("/upload").status_code == 200  # no user: not limited by this key


def request(client: str | None, **headers: str) -> RequestInfo:
    return RequestInfo("GET", "/", client, {k.lower(): v for k, v in headers.items()}, None)


def test_client_address_walks_forwarded_for_past_trusted_hops_only() -> None:
    key = client_address(trusted_proxies=["10.0.0.0/8", "127.0.0.1"])
    xff = "x-forwarded-for"
    assert key(request("10.1.1.1", **{xff: "1.2.3.4, 10.9.9.9"})) == "ip:1.2.3.4"
    assert key(request("10.1.1.1", **{xff: "6.6.6.6, 1.2.3.4"})) == "ip:1.2.3.4"  # spoofed left
    assert key(request("8.8.8.8", **{xff: "1.2.3.4"})) == "ip:8.8.8.8"  # untrusted peer
    assert key(request("10.1.1.1", **{xff: "garbage, 10.2.2.2"})) == "ip:10.2.2.2"
    assert key(request("2001:db8:1:2:3::9")) == "ip:2001:db8:1:2::/64"
    assert key(request("::ffff:1.2.3.4")) == "ip:1.2.3.4"
    assert key(request(None)) is None
    with pytest.raises(ConfigError, match="trusted_proxies"):
        client_address(trusted_proxies=["not-an-ip"])


def test_api_key_id_never_keeps_the_secret() -> None:
    key = api_key_id()
    token = "bt_live_s3cr3t_v4lue"
    got = key(request("1.1.1.1", authorization=f"Bearer {token}"))
    assert got is not None
    assert got.startswith("key:")
    assert token not in got
    assert key(request("1.1.1.1", authorization="Basic abc")) is None
    assert key(request("1.1.1.1")) is None
    by_id = api_key_id("x-api-key", scheme=None, id_of=lambda t: t.split("_")[1])
    assert by_id(request("1.1.1.1", **{"x-api-key": "bt_k42_secret"})) == "key:k42"


def test_bad_middleware_settings() -> None:
    with pytest.raises(ConfigError, match="routes or a default"):
        RateLimitMiddleware(fastapi_app)
    with pytest.raises(ConfigError, match="login"):
        RateLimitMiddleware(fastapi_app, routes={"login": "1/second"})
    with pytest.raises(ConfigError, match="fortnight"):
        WsgiRateLimitMiddleware(flask_app().wsgi_app, default="1/fortnight")
