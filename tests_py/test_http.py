"""The native HTTP client against our misbehaving server and against TLS with a test CA."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from blocktrust_native import jsonrpc
from blocktrust_native.errors import ConfigError, HttpConfigError
from blocktrust_native.flows import FlowSpec, start_flow
from blocktrust_native.http import HttpOptions, http_request
from tests_py.fix_http_server import MisbehavingServer


@pytest.fixture(scope="module")
def srv():
    with MisbehavingServer() as s:
        yield s


def test_plain_get_and_json(srv):
    r = http_request("GET", srv.url + "/json")
    assert r["error"] == ""
    assert r["status"] == 200
    assert json.loads(r["body"])["me"] == "alice"


def test_post_body_and_headers_reach_the_server(srv):
    r = http_request("POST", srv.url + "/echo", headers={"X-A": "1"}, body=b"hello")
    doc = json.loads(r["body"])
    assert doc["method"] == "POST"
    assert doc["body"] == "hello"
    assert doc["headers"]["x-a"] == "1"


def test_chunked_body_is_reassembled(srv):
    r = http_request("GET", srv.url + "/chunked")
    assert r["error"] == ""
    assert json.loads(r["body"])["pad"] == "x" * 3000


def test_garbage_is_a_failure_with_a_reason(srv):
    r = http_request("GET", srv.url + "/garbage")
    assert r["status"] == 0
    assert r["error"].startswith("read response")


def test_reset_mid_body_is_a_failure(srv):
    r = http_request("GET", srv.url + "/reset")
    assert r["status"] == 0
    assert r["error"]


def test_endless_headers_hit_the_header_cap(srv):
    r = http_request("GET", srv.url + "/endless-headers", max_header_bytes=16384)
    assert r["status"] == 0
    assert "header too large" in r["error"]


def test_slow_trickle_hits_the_request_timeout(srv):
    t0 = time.monotonic()
    r = http_request("GET", srv.url + "/trickle", request_timeout=0.8)
    assert r["status"] == 0
    assert "timed out" in r["error"]
    assert time.monotonic() - t0 < 3


def test_body_over_the_cap_is_refused(srv):
    r = http_request("GET", srv.url + "/big?n=2000000", max_response_bytes=1 << 20)
    assert r["status"] == 0
    assert "body too large" in r["error"]


def test_connect_refused_is_a_failure():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = http_request("GET", f"http://127.0.0.1:{port}/", connect_timeout=1)
    assert r["status"] == 0
    assert r["error"].startswith("connect")


def test_redirects_are_off_unless_asked(srv):
    r = http_request("GET", srv.url + "/redirect")
    assert r["status"] == 302
    r = http_request("GET", srv.url + "/redirect", follow_redirects=True)
    assert r["status"] == 200
    assert json.loads(r["body"])["me"] == "alice"


def test_bad_url_raises_config_error():
    with pytest.raises(HttpConfigError, match="not an http"):
        http_request("GET", "ftp://x/")
    with pytest.raises(ConfigError, match="not an http"):
        http_request("GET", "ftp://x/")


def test_http_options_defaults_are_the_cores():
    o = HttpOptions()
    assert (o.connect_timeout, o.request_timeout) == (5.0, 30.0)
    assert (o.max_response_bytes, o.max_header_bytes) == (8 << 20, 64 << 10)
    assert (o.verify_tls, o.ca_file, o.follow_redirects, o.max_redirects) == (True, None, False, 5)
    assert o == HttpOptions(request_timeout=30)
    assert o != HttpOptions(request_timeout=31)
    assert "request_timeout=30.0" in repr(o)
    # The JSON-RPC client's own default only raises the response cap.
    rpc = jsonrpc._native.default_options()
    assert rpc.max_response_bytes == 256 << 20
    assert rpc.request_timeout == o.request_timeout


def test_options_or_keywords_set_the_transport(srv):
    fast = HttpOptions(request_timeout=0.8)
    for r in (
        http_request("GET", srv.url + "/trickle", options=fast),
        http_request("GET", srv.url + "/trickle", request_timeout=0.8),
    ):
        assert r["status"] == 0
        assert "timed out" in r["error"]
    # Keywords given with options override those fields only.
    r = http_request("GET", srv.url + "/redirect", options=fast, follow_redirects=True)
    assert r["status"] == 200


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), float("inf"), 7 * 86400 + 1])
def test_one_timeout_cap_for_every_client(seconds):
    with pytest.raises(ConfigError, match="at most 7 days"):
        HttpOptions(request_timeout=seconds)
    with pytest.raises(ConfigError, match="at most 7 days"):
        http_request("GET", "http://127.0.0.1:9/", connect_timeout=seconds)
    with pytest.raises(ConfigError, match="at most 7 days"):
        jsonrpc.JsonRpcClient("http://127.0.0.1:9", request_timeout=seconds)
    spec = FlowSpec.from_dict({"steps": [{"name": "s", "request": {"method": "GET", "path": "/"}}]})
    with pytest.raises(ConfigError, match="at most 7 days"):
        start_flow(spec, "http://127.0.0.1:9", iterations=1, request_timeout=seconds)


def test_the_longest_timeout_is_accepted_everywhere():
    week = 7 * 86400
    assert HttpOptions(request_timeout=week).request_timeout == week
    jsonrpc.JsonRpcClient("http://127.0.0.1:9", request_timeout=week)


# ---- TLS with a CA made here


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=blocktrust test CA",
        cwd=d,
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
        "-subj",
        "/CN=localhost",
        cwd=d,
    )
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        cwd=d,
    )
    return d


@pytest.fixture(scope="module")
def tls_srv(tls_files):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tls_files / "srv.pem", tls_files / "srv.key")
    with MisbehavingServer(ssl_context=ctx) as s:
        yield s


def test_tls_with_custom_ca_verifies(tls_srv, tls_files):
    r = http_request("GET", tls_srv.url + "/json", ca_file=str(tls_files / "ca.pem"))
    assert r["error"] == ""
    assert r["status"] == 200


def test_tls_unknown_ca_is_refused_by_default(tls_srv):
    r = http_request("GET", tls_srv.url + "/json")
    assert r["status"] == 0
    assert "TLS handshake" in r["error"]


def test_tls_wrong_host_name_is_refused(tls_srv, tls_files):
    # The certificate names localhost and 127.0.0.1, not this alias.
    url = tls_srv.url.replace("localhost", "localhost.localdomain")
    r = http_request("GET", url + "/json", ca_file=str(tls_files / "ca.pem"), connect_timeout=2)
    assert r["status"] == 0


def test_tls_insecure_only_when_asked(tls_srv):
    r = http_request("GET", tls_srv.url + "/json", verify_tls=False)
    assert r["status"] == 200


def test_bad_ca_file_raises(tls_srv, tmp_path):
    with pytest.raises(ConfigError, match="ca_file"):
        http_request("GET", tls_srv.url + "/json", ca_file=str(tmp_path / "missing.pem"))


def _read_head(conn) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return data
        data += chunk
    return data


def test_a_resend_is_counted_in_the_result():
    # A redirect to the same origin reuses the kept-alive connection; the server reads the
    # second request there and closes without a byte of answer: the GET is resent once on a
    # fresh connection, and the result says so.
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: list[bytes] = []

    def serve() -> None:
        first, _ = listener.accept()
        with first:
            seen.append(_read_head(first).split(b"\r\n")[0])
            first.sendall(b"HTTP/1.1 302 Found\r\nLocation: /second\r\nContent-Length: 0\r\n\r\n")
            seen.append(_read_head(first).split(b"\r\n")[0])
        second, _ = listener.accept()
        with second:
            seen.append(_read_head(second).split(b"\r\n")[0])
            second.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        r = http_request(
            "GET", f"http://127.0.0.1:{port}/first", follow_redirects=True, request_timeout=5
        )
    finally:
        t.join(10)
        listener.close()
    assert (r["status"], r["body"], r["error"]) == (200, b"ok", "")
    assert seen == [b"GET /first HTTP/1.1", b"GET /second HTTP/1.1", b"GET /second HTTP/1.1"]
    assert r["retries"] == 1


def test_no_resend_no_retries(srv):
    r = http_request("GET", srv.url + "/json")
    assert r["error"] == ""
    assert r["retries"] == 0
