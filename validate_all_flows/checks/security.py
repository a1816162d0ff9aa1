"""Security checks: login rate limit, protected endpoints, webhook signatures, CORS preflights."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from functools import partial

from validate_all_flows.checks import CheckResult, Status, check, no_answer, not_an_answer
from validate_all_flows.httpcall import HttpResult, call
from validate_all_flows.target import Target

PROTECTED = ["/api/identity", "/api/failsafe/status", "/api/explorer/events"]
ADMIN = "/api/admin/overview"  # needs an API key with the admin role
FOREIGN_ORIGIN = "https://attacker.invalid"


def _skip(cid: str, title: str) -> CheckResult:
    return CheckResult(cid, title, Status.SKIP, "no service given (--base-url)")


@check("security", ids=("security.login_rate_limit",))
def login_rate_limit(t: Target) -> list[CheckResult]:
    """Repeated logins are refused with 429 and Retry-After."""
    cid, title = "security.login_rate_limit", "login rate limit answers 429 with Retry-After"
    if not t.base_url:
        return [_skip(cid, title)]
    body = {"email": f"ratelimit-{uuid.uuid4().hex[:10]}@validate.example", "password": "x" * 12}
    codes = []
    for attempt in range(1, 31):
        r = call("POST", t.base_url.rstrip("/") + "/api/auth/login", json_body=body)
        if not r.status or (not_an_answer(r.status) and r.status != 429):
            got = r.error if not r.status else f"answered {r.status} {_excerpt(r)}".rstrip()
            return [no_answer(cid, title, [f"POST /api/auth/login attempt {attempt}: {got}"])]
        codes.append(r.status)
        if r.status == 429:
            retry = r.headers.get("retry-after", "")
            if retry.isdigit() and int(retry) > 0:
                return [
                    CheckResult(
                        cid,
                        title,
                        Status.PASS,
                        f"429 after {len(codes) - 1} attempts, Retry-After {retry} s",
                    )
                ]
            return [
                CheckResult(
                    cid,
                    title,
                    Status.FAIL,
                    "429 without a valid Retry-After",
                    [f"Retry-After: {retry!r}"],
                    "send Retry-After in seconds",
                )
            ]
    return [
        CheckResult(
            cid,
            title,
            Status.FAIL,
            f"no 429 after {len(codes)} login attempts",
            [f"statuses: {sorted(set(codes))}"],
            "limit logins (e.g. 5 per 15 minutes) with blocktrust_native.ratelimit",
        )
    ]


def _excerpt(r: HttpResult) -> str:
    return (r.body or b"")[:120].decode(errors="replace").replace("\n", " ").strip()


def _must_refuse(
    cid: str,
    title: str,
    probes: Sequence[tuple[str, Callable[[], HttpResult]]],
    fail: str,
    fix: str,
) -> CheckResult | None:
    """Sends each probe (what it is, the request); every one must be refused with 401 or 403.
    None when all were; an ERROR when one got no answer that can carry the property (a reset, a
    timeout, a 5xx, 408 or 429: not "accepted"); else a FAIL (``fail``) naming the rest."""
    bad, silent = [], []
    for what, send in probes:
        r = send()
        if not r.status:
            silent.append(f"{what}: {r.error}")
        elif not_an_answer(r.status):
            silent.append(f"{what}: answered {r.status} {_excerpt(r)}".rstrip())
        elif r.status not in (401, 403):
            bad.append(f"{what}: {r.status}")
    if silent:
        return no_answer(cid, title, silent)
    if bad:
        return CheckResult(cid, title, Status.FAIL, fail.format(n=len(bad)), bad, fix)
    return None


@check("security", ids=("security.auth_required",))
def protected_endpoints(t: Target) -> list[CheckResult]:
    """Protected endpoints refuse missing and bad bearer tokens, the admin one bad API keys."""
    cid, title = "security.auth_required", "protected endpoints refuse bad tokens and API keys"
    if not t.base_url:
        return [_skip(cid, title)]
    base = t.base_url.rstrip("/")
    forged_token = {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.forged"}
    forged_key = {"X-API-Key": "btk_live_" + uuid.uuid4().hex + uuid.uuid4().hex[:10]}
    cases: list[tuple[str, str, dict[str, str]]] = [(path, "no token", {}) for path in PROTECTED]
    cases += [(path, "forged token", forged_token) for path in PROTECTED]
    cases += [(ADMIN, "no API key", {}), (ADMIN, "forged API key", forged_key)]
    probes = [
        (f"GET {path} with {label}", partial(call, "GET", base + path, headers=headers))
        for path, label, headers in cases
    ]
    failed = _must_refuse(
        cid, title, probes, "{n} endpoint(s) not protected", "require a valid token or API key"
    )
    found = (
        f"{len(PROTECTED)} endpoints refuse missing and forged tokens, "
        f"{ADMIN} missing and forged API keys"
    )
    return [failed or CheckResult(cid, title, Status.PASS, found)]


@check("security", ids=("security.webhook_signature",))
def webhook_signatures(t: Target) -> list[CheckResult]:
    """KYC webhooks without a valid signature are refused."""
    cid, title = "security.webhook_signature", "webhooks with bad signatures are refused"
    if not t.base_url:
        return [_skip(cid, title)]
    body = json.dumps(
        {
            "applicantId": "validate-probe",
            "reviewResult": {"reviewAnswer": "GREEN"},
            "createdAtMs": 1,
        }
    ).encode()
    url = t.base_url.rstrip("/") + "/api/kyc/webhook"
    signatures = {
        "unsigned": {},
        "wrong signature": {
            "X-Payload-Digest": "0" * 64,
            "X-Payload-Digest-Alg": "HMAC_SHA256_HEX",
        },
    }
    probes = [
        (
            f"{label} webhook",
            partial(
                call, "POST", url, headers={"Content-Type": "application/json", **h}, body=body
            ),
        )
        for label, h in signatures.items()
    ]
    failed = _must_refuse(
        cid,
        title,
        probes,
        "unsigned or forged webhooks accepted",
        "verify X-Payload-Digest (HMAC of the raw body) before acting",
    )
    return [failed or CheckResult(cid, title, Status.PASS, "unsigned and forged webhooks refused")]


@check("security", ids=("security.cors",))
def cors(t: Target) -> list[CheckResult]:
    """CORS preflights are allowed from the configured origins and refused from others."""
    cid, title = "security.cors", "CORS allows configured origins and refuses a foreign one"
    if not t.base_url:
        return [_skip(cid, title)]
    origins = [o.strip() for o in (t.env or {}).get("CORS_ORIGINS", "").split(",") if o.strip()]
    if not origins:
        return [CheckResult(cid, title, Status.SKIP, "no CORS_ORIGINS in the environment")]
    url = t.base_url.rstrip("/") + "/api/auth/login"
    bad: list[str] = []
    ok: list[str] = []
    for origin in [*origins, FOREIGN_ORIGIN]:
        r = call(
            "OPTIONS", url, headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
        )
        if not_an_answer(r.status):
            got = r.error if not r.status else f"answered {r.status} {_excerpt(r)}".rstrip()
            return [no_answer(cid, title, [f"OPTIONS preflight from {origin}: {got}", *ok, *bad])]
        allowed = r.headers.get("access-control-allow-origin") in (origin, "*")
        want = origin != FOREIGN_ORIGIN
        (ok if allowed == want else bad).append(
            f"{origin}: {'allowed' if allowed else 'refused'} (status {r.status})"
        )
    if bad:
        return [
            CheckResult(
                cid,
                title,
                Status.FAIL,
                "CORS answers differ from CORS_ORIGINS",
                bad + ok,
                "allow exactly the origins in CORS_ORIGINS",
            )
        ]
    return [CheckResult(cid, title, Status.PASS, f"{len(origins)} origin(s) allowed", ok)]
