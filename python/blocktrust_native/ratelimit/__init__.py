"""Rate limiting: in-process (GCRA, sliding-window counter, fixed window) with exact Retry-After,
shared through PostgreSQL (:mod:`.postgres`) or Redis (:mod:`.redis`), and ASGI/WSGI middleware
(:mod:`.middleware`).

    limiter = RateLimiter("5/15minutes")           # or "100/second;1000/hour", or a list
    decision = limiter.hit(f"login:{user}")        # consumes one unit if every rule admits it
    if not decision:
        return 429, limiter.headers(decision)      # Retry-After and RateLimit-* fields

Rules use the notation of the ``limits`` package. Decisions take well under a microsecond and are
thread-safe; keys are held in a sharded store bounded by ``max_keys``. For a limit shared by many
server processes use :class:`PgRateLimiter` (same methods).

HTTP fields follow draft-ietf-httpapi-ratelimit-headers-06 (RateLimit-Limit, RateLimit-Remaining,
RateLimit-Reset in delta-seconds, RateLimit-Policy ``<limit>;w=<window>``) plus RFC 9110
``Retry-After`` on denials. Seconds are rounded up, so a client that obeys them is never early.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from blocktrust_native.ratelimit.limiter import (
    ALGORITHMS,
    ConfigError,
    Decision,
    Limiter,
    ManualClock,
    RateLimiter,
    RateLimitExceeded,
    Rule,
    SteadyClock,
    parse_rules,
    rate_limit_headers,
)

if TYPE_CHECKING:
    from blocktrust_native.ratelimit.middleware import (
        KeyFunc,
        RateLimitMiddleware,
        RequestInfo,
        WsgiRateLimitMiddleware,
        api_key_id,
        client_address,
        first_of,
        rate_limit,
        user_id,
    )
    from blocktrust_native.ratelimit.postgres import PgRateLimiter
    from blocktrust_native.ratelimit.redis import RedisRateLimiter

# The shared stores and the middleware load on first use (PEP 562): an application that limits
# in-process does not pay at start-up for the PostgreSQL and Redis clients or the web glue.
_LAZY = {
    "PgRateLimiter": "postgres",
    "RedisRateLimiter": "redis",
    **dict.fromkeys(
        (
            "KeyFunc",
            "RateLimitMiddleware",
            "RequestInfo",
            "WsgiRateLimitMiddleware",
            "api_key_id",
            "client_address",
            "first_of",
            "rate_limit",
            "user_id",
        ),
        "middleware",
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ALGORITHMS",
    "ConfigError",
    "Decision",
    "KeyFunc",
    "Limiter",
    "ManualClock",
    "PgRateLimiter",
    "RateLimitExceeded",
    "RateLimitMiddleware",
    "RateLimiter",
    "RedisRateLimiter",
    "RequestInfo",
    "Rule",
    "SteadyClock",
    "WsgiRateLimitMiddleware",
    "api_key_id",
    "client_address",
    "first_of",
    "parse_rules",
    "rate_limit",
    "rate_limit_headers",
    "user_id",
]
