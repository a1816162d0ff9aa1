"""The security and debug checks against small loopback servers: an open admin endpoint is
caught, and a service that does not answer is an ERROR (nothing judged), no claimed weakness."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from validate_all_flows.checks import Status, run_checks
from validate_all_flows.embedded.postgres import free_port
from validate_all_flows.target import Target


class _OpenAdmin(BaseHTTPRequestHandler):
    """Refuses every request with 401, except the admin overview, which anyone may read."""

    def do_GET(self) -> None:
        status = 200 if self.path == "/api/admin/overview" else 401
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def open_admin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OpenAdmin)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_admin_endpoint_open_without_an_api_key_fails(open_admin: str) -> None:
    results = {r.id: r for r in run_checks(Target(base_url=open_admin), {"security"})}
    auth = results["security.auth_required"]
    assert auth.status is Status.FAIL
    assert auth.evidence == [
        "GET /api/admin/overview with no API key: 200",
        "GET /api/admin/overview with forged API key: 200",
    ]


def test_a_service_that_does_not_answer_cannot_be_judged() -> None:
    t = Target(base_url=f"http://127.0.0.1:{free_port()}", env={"CORS_ORIGINS": "https://a.test"})
    results = run_checks(t, {"http", "security"})
    # health and readiness themselves FAIL: a service that does not answer is not healthy.
    assert [(r.id, r.status) for r in results[:2]] == [
        ("http.health", Status.FAIL),
        ("http.ready", Status.FAIL),
    ]
    results = results[2:]
    assert [r.id for r in results] == [
        "http.debug_off",
        "security.login_rate_limit",
        "security.auth_required",
        "security.webhook_signature",
        "security.cors",
    ]
    for r in results:
        assert r.status is Status.ERROR, (r.id, r.found)
        assert r.found == "the service did not answer, so this cannot be judged"
        assert r.evidence
        assert all("refused" in e.lower() for e in r.evidence), r.evidence
