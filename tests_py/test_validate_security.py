"""The security and debug checks against small loopback servers: an open admin endpoint is
caught, and a service that does not answer is an ERROR (nothing judged), no claimed weakness."""

from __future__ import annotations

from typing import Any

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
