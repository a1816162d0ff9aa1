# Stubs for blocktrust_native._native.redis (see cpp/bindings/redis.cpp).

from typing import Any

from blocktrust_native._native.ratelimit import Decision, Rule

def redact_url(url: str) -> str:
    """The URL with its password replaced by ***."""

def key_slot(key: str) -> int:
    """The Redis Cluster hash slot of a key."""

def script(algorithm: str) -> str:
    """The Lua source of the decision script of an algorithm."""

class Client:
    """A thread-safe Redis client with a pool of connections per node."""

    def __init__(
        self, url: str, *, pool_size: int | None = None, timeout: float | None = None
    ) -> None: ...
    def execute(self, args: list[str | bytes]) -> Any:
        """Sends one command; error replies raise RedisError."""
    def close_idle(self) -> None:
        """Closes the idle connections."""
    def stats(self) -> dict[str, int]:
        """Pool counters: open, idle, connects, broken, redirects, requests, writes,
        discoveries."""
    @property
    def address(self) -> str: ...
    @property
    def sentinel(self) -> bool: ...
    @property
    def tls(self) -> bool: ...
    @property
    def cluster(self) -> bool: ...
    @property
    def pool_size(self) -> int: ...

class RedisRateLimiter:
    """A rate limiter whose state lives in Redis."""

    def __init__(self, client: Client, rules: list[Rule], algorithm: str, prefix: str) -> None: ...
    def hit(self, key: str, cost: int = 1) -> Decision:
        """Consumes `cost` from every rule of `key` if all admit it (one round trip)."""
    def test(self, key: str, cost: int = 1) -> Decision:
        """What hit would decide now, without consuming."""
    def reset(self, key: str) -> bool:
        """Forgets `key`; returns whether it was held."""
    def set_fixed_time_us(self, now_us: int | None) -> None:
        """Decides at `now_us` instead of the server's TIME (None: the server's)."""
    def redis_key(self, key: str) -> str:
        """The Redis key holding `key`'s state."""
    @property
    def rules(self) -> list[Rule]: ...
    @property
    def algorithm(self) -> str: ...
    @property
    def prefix(self) -> str: ...
    @property
    def script_sha(self) -> str: ...
    @property
    def client(self) -> Client: ...
