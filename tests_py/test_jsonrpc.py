"""The native JSON-RPC client from Python, against a real anvil and a picky loopback proxy."""

from __future__ import annotations

import socket
import threading

import pytest
from fix_proxy import RpcProxy

from blocktrust_native.errors import ChainConnectionError, ConfigError, JsonRpcError
from blocktrust_native.jsonrpc import JsonRpcClient, redact_url
from validate_all_flows.embedded.anvil import Anvil

pytestmark = pytest.mark.slow


def test_calls_and_batches_against_anvil(anvil: Anvil) -> None:
    rpc = JsonRpcClient(anvil.rpc_url)
    assert int(rpc.call("eth_chainId"), 16) == anvil.chain_id
    assert rpc.call_json("eth_chainId") == f'"{hex(anvil.chain_id)}"'
    block = rpc.call("eth_getBlockByNumber", ["0x0", False])
    assert block["number"] == "0x0"
    assert rpc.call("eth_getBlockByNumber", ["0xffffff", False]) is None
    head, nope, genesis = rpc.batch(
        [
            ("eth_blockNumber", []),
            ("no_such_method", []),
            ("eth_getBlockByNumber", ["0x0", False]),
        ]
    )
    assert int(head, 16) >= 0
    assert isinstance(nope, JsonRpcError)
    assert nope.code == -32601
    assert genesis["hash"] == block["hash"]
    assert rpc.batch([]) == []


def test_an_error_answer_raises_with_the_nodes_code_and_message(anvil: Anvil) -> None:
    rpc = JsonRpcClient(anvil.rpc_url)
    with pytest.raises(JsonRpcError) as e:
        rpc.call("no_such_method", [1, {"a": None}])
    assert e.value.code == -32601
    assert e.value.message  # the node's own words
    assert str(e.value).startswith("no_such_method: ")
    # The client stays usable after an error answer.
    assert rpc.call("eth_chainId")


def test_threads_may_share_one_client(anvil: Anvil) -> None:
    rpc = JsonRpcClient(anvil.rpc_url)
    results: list[str] = []

    def work() -> None:
        for _ in range(20):
            results.append(rpc.call("eth_chainId"))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [hex(anvil.chain_id)] * 80


def test_transport_failures_name_the_endpoint_without_its_secrets(anvil: Anvil) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nobody listens there
    secret = "s3cr3tAPIkey0123456789"
    rpc = JsonRpcClient(f"http://127.0.0.1:{port}/v2/{secret}?apikey={secret}")
    assert rpc.url == f"http://127.0.0.1:{port}/…"
    assert secret not in repr(rpc)
    with pytest.raises(ChainConnectionError) as e:
        rpc.call("eth_chainId")
    assert secret not in str(e.value)
    assert f"127.0.0.1:{port}" in str(e.value)
    assert e.value.http_status == 0  # type: ignore[attr-defined]
    # An HTTP error without a JSON-RPC body is a transport failure with its status.
    with RpcProxy(anvil.rpc_url, max_range=1, refuse_as="http") as proxy:
        with pytest.raises(ChainConnectionError) as e:
            JsonRpcClient(proxy.url).call("eth_getLogs", [{"fromBlock": "0x0", "toBlock": "0x5"}])
        assert e.value.http_status == 413  # type: ignore[attr-defined]
    assert redact_url("https://u:p@host.example:8545/k?x=1") == "https://host.example:8545/…"


def test_bad_urls_and_params_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        JsonRpcClient("ws://127.0.0.1:8545")
    with pytest.raises(ConfigError):
        JsonRpcClient(b"http://127.0.0.1")  # type: ignore[arg-type]
    rpc = JsonRpcClient("http://127.0.0.1:9")
    with pytest.raises(ConfigError):
        rpc.call("eth_call", "0x1234")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="request_timeout"):
        JsonRpcClient("http://127.0.0.1:9", request_timeout=0)
    with pytest.raises(TypeError):
        rpc.call("eth_call", [object()])
