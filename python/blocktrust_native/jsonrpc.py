"""A JSON-RPC 2.0 client on the native HTTP client: keep-alive, batches, typed errors.

    rpc = JsonRpcClient("https://polygon-amoy.g.alchemy.com/v2/<key>")
    head = int(rpc.call("eth_blockNumber"), 16)
    block, logs = rpc.batch([("eth_getBlockByNumber", ["finalized", False]),
                             ("eth_getLogs", [{"fromBlock": "0x1", "toBlock": "0x10"}])])

Errors (``blocktrust_native.errors``): :class:`JsonRpcError` when the node answers an error object
(``code``, ``message`` and ``data`` are the node's), :class:`ChainConnectionError` when no usable
answer arrived (unreachable, timed out, HTTP error without a JSON-RPC body, not JSON),
:class:`ConfigError` for a URL that cannot be used. Provider URLs carry API keys: ``url``, reprs and
error messages show scheme, host and port only. User info in the URL is sent as HTTP basic auth.

The I/O runs without the GIL; one client may be shared by threads (their calls take turns), but a
client per thread keeps them parallel.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from blocktrust_native._native import jsonrpc as _native
from blocktrust_native.errors import ChainConnectionError, ConfigError, JsonRpcError
from blocktrust_native.http import HttpOptionArgs, HttpOptions, transport_options

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["ChainConnectionError", "JsonRpcClient", "JsonRpcError", "Params", "redact_url"]

#: Positional (a sequence) or named (a mapping) params of a call.
Params = Sequence[Any] | Mapping[str, Any]

redact_url = _native.redact_url


def _params_json(method: str, params: Params) -> str:
    if isinstance(params, str | bytes) or not isinstance(params, Sequence | Mapping):
        raise ConfigError(f"{method}: params must be a list or a dict")
    return json.dumps(params if isinstance(params, Mapping) else list(params))


class JsonRpcClient:
    """A client for one JSON-RPC endpoint (see the module docstring); durations in seconds."""

    __slots__ = ("_native",)

    def __init__(
        self,
        url: str,
        *,
        options: HttpOptions | None = None,
        headers: Mapping[str, str] | None = None,
        **transport: Unpack[HttpOptionArgs],
    ) -> None:
        """``options`` (or keyword arguments named as its fields, e.g. ``request_timeout=10``)
        set the transport; unset fields keep the client's defaults, which allow a 256 MiB
        response (a wide eth_getLogs answers tens of megabytes)."""
        if not isinstance(url, str):
            raise ConfigError("JSON-RPC url must be a str")
        self._native = _native.Client(
            url,
            transport_options(options, transport, _native.default_options()),
            list((headers or {}).items()),
        )

    @property
    def url(self) -> str:
        """The endpoint without its secrets (scheme, host and port)."""
        return self._native.url

    def __repr__(self) -> str:
        return f"<JsonRpcClient {self._native.url}>"

    def call(self, method: str, params: Params = ()) -> Any:
        """Calls ``method`` and returns its result as Python objects (None for a null result)."""
        return json.loads(self._native.call(method, _params_json(method, params)))

    def call_json(self, method: str, params: Params = ()) -> str:
        """Calls ``method`` and returns its result as JSON text (for callers that parse it
        themselves)."""
        return self._native.call(method, _params_json(method, params))

    def batch(self, calls: Iterable[tuple[str, Params]]) -> list[Any]:
        """Sends ``[(method, params), ...]`` in one request; returns the results in call order, a
        call the node refused as a :class:`JsonRpcError` object in its place (not raised). Raises
        when the node refuses the whole batch."""
        wire = [(m, _params_json(m, p)) for m, p in calls]
        out: list[Any] = []
        for (method, _), (ok, result, code, message, data) in zip(
            wire, self._native.batch(wire), strict=True
        ):
            if ok:
                out.append(json.loads(result) if result is not None else None)
            else:
                out.append(JsonRpcError(f"{method}: {message} (code {code})", code, message, data))
        return out
