"""The security and debug checks against small loopback servers: an open admin endpoint is
caught, and a service that does not answer is an ERROR (nothing judged), no claimed weakness."""

from __future__ import annotations

from typing import Any

import pytest
from fix_proxy import HttpFaultProxy
from fix_wsgi import serve_wsgi

from validate_all_flows.checks import Status, run_checks
from validate_all_flows.embedded.postgres import free_port
from validate_all_flows.target import Target


def _open_admin(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Refuses every request with 401, except the admin overview, which anyone may read."""
    ok = environ["PATH_INFO"] == "/api/admin/overview"
    start_response("200 OK" if ok else "401 Unauthorized", [("Content-Type", "application/json")])
    return [b"{}"]


def test_an_admin_endpoint_open_without_an_api_key_fails() -> None:
    with serve_wsgi(_open_admin) as url:
        results = {r.id: r for r in run_checks(Target(base_url=url), {"security"})}
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


def _guarded(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """A service that gets security right: protected paths and webhooks refuse (401), a CORS
    preflight from the configured origin is allowed."""
    if environ["REQUEST_METHOD"] == "OPTIONS":
        origin = environ.get("HTTP_ORIGIN", "")
        allow = [("Access-Control-Allow-Origin", origin)] if origin == "https://a.test" else []
        start_response("204 No Content", allow)
        return [b""]
    start_response("401 Unauthorized", [("Content-Type", "application/json")])
    return [b'{"detail": "not authenticated"}']


@pytest.mark.parametrize("fault", ["503", "502", "reset"])
def test_a_proxy_failing_in_front_is_no_weakness(fault: str) -> None:
    # The service refuses what it must; a proxy in front answers the probes with a 5xx or
    # resets them. Before: "endpoint not protected", "webhooks accepted", "CORS refused".
    paths = {"/api/identity": fault, "/api/kyc/webhook": fault, "/api/auth/login": fault}
    with serve_wsgi(_guarded) as url, HttpFaultProxy(url, paths) as proxy:
        t = Target(base_url=proxy.url, env={"CORS_ORIGINS": "https://a.test"})
        results = {r.id: r for r in run_checks(t, {"security"})}
        assert proxy.hits >= 4
    for cid in ("security.auth_required", "security.webhook_signature", "security.cors"):
        r = results[cid]
        assert r.status is Status.ERROR, (cid, r.status, r.found, r.evidence)
        assert r.found == "the service did not answer, so this cannot be judged"
        if fault != "reset":
            assert any(f"answered {fault}" in e for e in r.evidence), r.evidence
    # The unaffected probes were still judged: the admin endpoint refused both.
    assert not any("/api/admin/overview" in e for e in results["security.auth_required"].evidence)
