"""HTTP checks: health and readiness answer 200 within the latency objective; debug mode off."""

from __future__ import annotations

import uuid

from validate_all_flows.checks import CheckResult, Status, check, no_answer
from validate_all_flows.httpcall import call
from validate_all_flows.target import Target


@check("http", ids=("http.health", "http.ready"))
def health_and_ready(t: Target) -> list[CheckResult]:
    """Health and readiness endpoints answer 200 within the latency objective."""
    out = []
    for path, name in (("/api/health", "health"), ("/api/ready", "ready")):
        cid, title = f"http.{name}", f"GET {path} answers 200 within {t.slo.p95_ms:.0f} ms"
        if not t.base_url:
            out.append(CheckResult(cid, title, Status.SKIP, "no service given (--base-url)"))
            continue
        r = call("GET", t.base_url.rstrip("/") + path, timeout=10)
        found = f"status {r.status} in {r.ms:.0f} ms" if not r.error else r.error
        evidence = [t.redact(r.body[:300].decode(errors="replace"))] if r.body else []
        measures = {"status": float(r.status), "latency_ms": r.ms}  # status 0: no answer
        if r.status == 200 and r.ms <= t.slo.p95_ms:
            out.append(CheckResult(cid, title, Status.PASS, found, evidence, measures=measures))
        else:
            fix = (
                "the endpoint is slower than the objective: profile it"
                if r.status == 200
                else "start the service / see its logs; /api/ready names the failing dependency"
            )
            out.append(
                CheckResult(
                    cid, title, Status.FAIL, t.redact(found), evidence, fix, measures=measures
                )
            )
    return out


#: Answers from in front of the service (or of a service not serving): they show no error path.
_GATEWAY = (502, 503, 504)

# What debug pages of common Python stacks put in an error response.
DEBUG_MARKERS = (
    "Traceback (most recent call last)",
    "Werkzeug Debugger",
    "DEBUG = True",
    "<title>Starlette Debugger",
)


@check("http", ids=("http.debug_off",))
def debug_off(t: Target) -> list[CheckResult]:
    """Debug mode is off: health does not report it, error answers carry no traceback."""
    cid, title = "http.debug_off", "debug mode off (no debug flag, no tracebacks in error answers)"
    if not t.base_url:
        return [CheckResult(cid, title, Status.SKIP, "no service given (--base-url)")]
    base = t.base_url.rstrip("/")
    answer = call("GET", base + "/api/health", timeout=10)
    if answer.status == 0:
        return [no_answer(cid, title, [f"GET /api/health: {answer.error}"])]
    health = answer.json()
    if isinstance(health, dict) and health.get("debug") is True:
        return [
            CheckResult(
                cid,
                title,
                Status.FAIL,
                "GET /api/health reports debug mode on",
                [f"debug: {health['debug']!r}"],
                "set DEBUG_MODE=false (debug answers leak tracebacks and internals)",
            )
        ]
    # Requests that reach a framework's error paths: an unknown route and a malformed body.
    probes = [
        ("GET", f"/api/validate-all-flows-probe-{uuid.uuid4().hex[:8]}", None),
        ("POST", "/api/auth/login", b"{not json"),
    ]
    for method, path, body in probes:
        r = call(
            method, base + path, body=body, timeout=10, headers={"Content-Type": "application/json"}
        )
        if r.status == 0:
            return [no_answer(cid, title, [f"{method} {path}: {r.error}"])]
        text = r.body[:20000].decode(errors="replace")
        hit = next((m for m in DEBUG_MARKERS if m in text), None)
        if not hit and r.status in _GATEWAY:
            # A proxy's (or an overloaded server's) answer: the error path was not reached.
            return [no_answer(cid, title, [f"{method} {path}: answered {r.status} {text[:120]}"])]
        if hit:
            return [
                CheckResult(
                    cid,
                    title,
                    Status.FAIL,
                    f"{method} {path} answered {r.status} with a debug page ({hit!r})",
                    [t.redact(text[:300])],
                    "turn debug mode off in production",
                )
            ]
    return [CheckResult(cid, title, Status.PASS, "no debug flag, error answers are plain")]
