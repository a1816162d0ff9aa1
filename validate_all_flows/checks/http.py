"""HTTP checks: health and readiness answer 200 within the latency objective."""

from __future__ import annotations

from validate_all_flows.checks import CheckResult, Status, check
from validate_all_flows.httpcall import call
from validate_all_flows.target import Target


@check("http")
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
