"""HTTP checks: health and readiness answer 200 within the latency objective; debug mode off."""

from __future__ import annotations

import re
import uuid
from typing import Any

from validate_all_flows.check_model import CheckResult, Status, check, no_answer
from validate_all_flows.httpcall import call
from validate_all_flows.profile import HealthProbe
from validate_all_flows.target import Target


def not_in_service(cid: str, title: str, probes: list[str]) -> CheckResult:
    """The result of a check whose probe paths the service does not have (404/405): an ERROR
    about the profile, never a claimed weakness of the service."""
    return CheckResult(
        cid,
        title,
        Status.ERROR,
        "the profile names a path the service does not have",
        probes,
        "correct the path in the profile (or remove the probe) and run again",
    )


_MISSING = object()


def json_at(doc: Any, pointer: str) -> Any:
    """The value at JSON pointer ``pointer`` of ``doc`` (``_MISSING`` when there is none)."""
    for raw in pointer.split("/")[1:]:
        key = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(doc, dict) and key in doc:
            doc = doc[key]
        elif isinstance(doc, list) and key.isdigit() and int(key) < len(doc):
            doc = doc[int(key)]
        else:
            return _MISSING
    return doc


def _unmet(doc: Any, expect: dict[str, Any]) -> list[str]:
    out = []
    for pointer, want in expect.items():
        got = json_at(doc, pointer)
        if got is _MISSING:
            out.append(f"{pointer}: absent")
        elif not isinstance(want, dict) and got != want:
            out.append(f"{pointer}: {got!r}, expected {want!r}")
    return out


def _probe_health(t: Target, cid: str, probes: list[HealthProbe], what: str) -> CheckResult:
    paths = ", ".join(p.path for p in probes)
    title = f"GET {paths} answers 200 within {t.slo.p95_ms:.0f} ms"
    if not t.base_url:
        return CheckResult(cid, title, Status.SKIP, "no service given (--base-url)")
    seen, evidence, bad, worst, status = [], [], [], 0.0, 200
    for probe in probes:
        r = call("GET", t.base_url.rstrip("/") + probe.path, timeout=10)
        if r.status in (404, 405):
            return not_in_service(cid, title, [f"GET {probe.path}: {r.status}"])
        worst = max(worst, r.ms)
        status = r.status if status == 200 else status
        found = f"status {r.status} in {r.ms:.0f} ms" if not r.error else r.error
        doc = r.json() if r.status == 200 else None
        unmet = _unmet(doc, dict(probe.expect)) if r.status == 200 else []
        if probe.expect and not unmet:  # name what was seen, not only that it answered
            found += " with " + ", ".join(f"{k} = {json_at(doc, k)!r}" for k in probe.expect)
        seen.append(found if len(probes) == 1 else f"{probe.path}: {found}")
        if r.body:
            evidence.append(t.redact(r.body[:300].decode(errors="replace")))
        if r.status != 200 or r.ms > t.slo.p95_ms or unmet:
            bad.append((probe, r, unmet))
    measures = {"status": float(status), "latency_ms": worst}  # status 0: no answer
    found = "; ".join(seen)
    if not bad:
        return CheckResult(cid, title, Status.PASS, t.redact(found), evidence, measures=measures)
    probe, r, unmet = bad[0]
    if unmet:
        found = f"GET {probe.path} answered 200 without the expected {what} values"
        evidence = [*unmet, *evidence]
        fix = f"the {what} answer must show {', '.join(probe.expect)} (see the profile)"
    elif r.status == 200:
        fix = "the endpoint is slower than the objective: profile it"
    elif t.profile.ready is not None:
        fix = (
            f"start the service / see its logs; {t.profile.ready.path} names the failing dependency"
        )
    else:
        fix = "start the service / see its logs"
    return CheckResult(cid, title, Status.FAIL, t.redact(found), evidence, fix, measures=measures)


@check("http")
def health_and_ready(t: Target) -> list[CheckResult]:
    """Health and readiness endpoints answer 200 within the latency objective (and show the
    JSON values the profile expects)."""
    prof = t.profile
    out = []
    if prof.health:
        out.append(_probe_health(t, "http.health", list(prof.health), "health"))
    else:
        why = f"the profile ({prof.name}) declares no health path"
        out.append(CheckResult("http.health", "health endpoint answers 200", Status.SKIP, why))
    if prof.ready is not None:
        out.append(_probe_health(t, "http.ready", [prof.ready], "readiness"))
    else:
        why = f"the profile ({prof.name}) declares no readiness path"
        out.append(CheckResult("http.ready", "readiness endpoint answers 200", Status.SKIP, why))
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


@check("http")
def debug_off(t: Target) -> list[CheckResult]:
    """Debug mode is off: health does not report it, error answers carry no traceback."""
    cid, title = "http.debug_off", "debug mode off (no debug flag, no tracebacks in error answers)"
    if not t.base_url:
        return [CheckResult(cid, title, Status.SKIP, "no service given (--base-url)")]
    if not t.profile.health:
        why = f"the profile ({t.profile.name}) declares no health path to start from"
        return [CheckResult(cid, title, Status.SKIP, why)]
    base = t.base_url.rstrip("/")
    health_path = t.profile.health[0].path
    answer = call("GET", base + health_path, timeout=10)
    if answer.status == 0:
        return [no_answer(cid, title, [f"GET {health_path}: {answer.error}"])]
    health = answer.json()
    if isinstance(health, dict) and health.get("debug") is True:
        return [
            CheckResult(
                cid,
                title,
                Status.FAIL,
                f"GET {health_path} reports debug mode on",
                [f"debug: {health['debug']!r}"],
                "set DEBUG_MODE=false (debug answers leak tracebacks and internals)",
            )
        ]
    # Requests that reach a framework's error paths: an unknown route (next to the health
    # path) and a malformed body to the login route.
    prefix = health_path.rsplit("/", 1)[0]
    probes: list[tuple[str, str, bytes | None]] = [
        ("GET", f"{prefix}/validate-all-flows-probe-{uuid.uuid4().hex[:8]}", None)
    ]
    if t.profile.login is not None:
        probes.append((t.profile.login.method, t.profile.login.path, b"{not json"))
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
    said = ", ".join(f"{m} {p}" for m, p, _ in probes).replace(probes[0][1], "an unknown path")
    return [
        CheckResult(
            cid, title, Status.PASS, "no debug flag, error answers are plain", [f"probed: {said}"]
        )
    ]


# One sample line of the Prometheus text format: name, optional labels, value, optional time.
_SAMPLE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})?'
    r"\s+(-?[0-9.eE+-]+|[+-]?Inf|NaN)(\s+-?[0-9]+)?$"
)


def prometheus_problems(text: str) -> tuple[int, list[str]]:
    """(samples, problems) of a Prometheus text exposition (version 0.0.4)."""
    samples, problems = 0, []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            if line.startswith("# TYPE") and len(line.split()) != 4:
                problems.append(f"line {n}: malformed TYPE: {line[:80]}")
            continue
        if _SAMPLE.match(line.strip()):
            samples += 1
        else:
            problems.append(f"line {n}: not a sample: {line[:80]}")
    return samples, problems


@check("http")
def metrics(t: Target) -> list[CheckResult]:
    """The Prometheus metrics path answers 200 with text that parses (profiles declaring one)."""
    path = t.profile.metrics
    if path is None:
        return []  # the profile declares no metrics path: nothing to check, nothing to report
    cid, title = "http.metrics", f"GET {path} serves Prometheus metrics that parse"
    if not t.base_url:
        return [CheckResult(cid, title, Status.SKIP, "no service given (--base-url)")]
    r = call("GET", t.base_url.rstrip("/") + path, timeout=10)
    if r.status == 0:
        return [no_answer(cid, title, [f"GET {path}: {r.error}"])]
    if r.status in (404, 405):
        return [not_in_service(cid, title, [f"GET {path}: {r.status}"])]
    text = r.body.decode(errors="replace")
    samples, problems = prometheus_problems(text) if r.status == 200 else (0, [])
    if r.status != 200 or problems or not samples:
        found = (
            f"status {r.status}"
            if r.status != 200
            else f"{len(problems)} line(s) do not parse"
            if problems
            else "no samples"
        )
        return [
            CheckResult(
                cid,
                title,
                Status.FAIL,
                found,
                problems[:10] or [t.redact(text[:300])],
                "serve the Prometheus text format (prometheus_client's generate_latest)",
            )
        ]
    found = f"{samples} samples parse ({r.headers.get('content-type', 'no content type')})"
    return [CheckResult(cid, title, Status.PASS, found)]
