"""Security checks: login rate limit, protected endpoints, webhook signatures, CORS preflights."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from functools import partial
from urllib.parse import urlencode

from validate_all_flows.check_model import CheckResult, Status, check, no_answer, not_an_answer
from validate_all_flows.checks.http import not_in_service
from validate_all_flows.httpcall import HttpResult, call
from validate_all_flows.target import Target

FOREIGN_ORIGIN = "https://attacker.invalid"


def _skip(cid: str, title: str) -> CheckResult:
    return CheckResult(cid, title, Status.SKIP, "no service given (--base-url)")


def _undeclared(t: Target, cid: str, title: str, what: str) -> CheckResult:
    why = f"the profile ({t.profile.name}) declares no {what}"
    return CheckResult(cid, title, Status.SKIP, why)


def _render(value: object) -> object:
    """``value`` with ``{{uuid}}`` replaced by a fresh one (probe bodies stay unique)."""
    if isinstance(value, str):
        return value.replace("{{uuid}}", uuid.uuid4().hex[:10])
    if isinstance(value, list):
        return [_render(v) for v in value]
    if isinstance(value, dict):
        return {k: _render(v) for k, v in value.items()}
    return value


@check("security")
def login_rate_limit(t: Target) -> list[CheckResult]:
    """Repeated logins are refused with 429 and Retry-After."""
    cid, title = "security.login_rate_limit", "login rate limit answers 429 with Retry-After"
    if not t.base_url:
        return [_skip(cid, title)]
    probe = t.profile.rate_limit
    if probe is None:
        return [_undeclared(t, cid, title, "login rate-limit probe (security.login_rate_limit)")]
    url, what = t.base_url.rstrip("/") + probe.probe.path, str(probe.probe)
    if probe.form is not None:
        form = urlencode(_render(dict(probe.form)))  # type: ignore[arg-type]
        send = partial(
            call,
            probe.probe.method,
            url,
            body=form.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    else:
        body = _render(probe.json if probe.json is not None else {})
        send = partial(call, probe.probe.method, url, json_body=body)
    codes = []
    for attempt in range(1, probe.attempts + 1):
        r = send()
        if not r.status or (not_an_answer(r.status) and r.status != 429):
            got = r.error if not r.status else f"answered {r.status} {_excerpt(r)}".rstrip()
            return [no_answer(cid, title, [f"{what} attempt {attempt}: {got}"])]
        if r.status in (404, 405):
            return [not_in_service(cid, title, [f"{what}: {r.status}"])]
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
    timeout, a 5xx, 408 or 429: not "accepted") or named a path the service does not have (404,
    405); else a FAIL (``fail``) naming the rest."""
    bad, silent, absent = [], [], []
    for what, send in probes:
        r = send()
        if not r.status:
            silent.append(f"{what}: {r.error}")
        elif not_an_answer(r.status):
            silent.append(f"{what}: answered {r.status} {_excerpt(r)}".rstrip())
        elif r.status in (404, 405):
            absent.append(f"{what}: {r.status}")
        elif r.status not in (401, 403):
            bad.append(f"{what}: {r.status}")
    if silent:
        return no_answer(cid, title, silent)
    if absent:
        return not_in_service(cid, title, absent)
    if bad:
        return CheckResult(cid, title, Status.FAIL, fail.format(n=len(bad)), bad, fix)
    return None


@check("security")
def protected_endpoints(t: Target) -> list[CheckResult]:
    """Protected endpoints refuse missing and forged bearer tokens, API-key ones missing and
    forged keys."""
    cid, title = "security.auth_required", "protected endpoints refuse bad tokens and API keys"
    if not t.base_url:
        return [_skip(cid, title)]
    prof = t.profile
    bearer, keys = list(prof.bearer), prof.api_keys
    if not bearer and not prof.bearer_from_openapi and keys is None:
        return [_undeclared(t, cid, title, "protected endpoints (security.bearer, api_keys)")]
    base = t.base_url.rstrip("/")
    key_endpoints = list(keys.endpoints) if keys is not None else []
    if prof.bearer_from_openapi or (keys is not None and keys.from_openapi):
        from validate_all_flows.openapi import fetch_openapi
        from validate_all_flows.profile import Probe

        api = fetch_openapi(base)
        if api is None:
            return [
                CheckResult(
                    cid,
                    title,
                    Status.ERROR,
                    "the profile takes the protected routes from the service's OpenAPI "
                    "document, and the service publishes none",
                    fix="list the routes in the profile (security.bearer, security.api_keys)",
                )
            ]
        if prof.bearer_from_openapi:
            bearer += [Probe(m, p) for m, p in api.protected("bearer")]
        if keys is not None and keys.from_openapi:
            key_endpoints += [Probe(m, p) for m, p in api.protected("api_key", keys.header)]
        if not bearer and not key_endpoints:
            key = keys.header if keys else "a key"
            why = f"{api.path} marks no GET route as needing a token or {key}"
            return [CheckResult(cid, title, Status.SKIP, why)]
    forged_token = {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.forged"}
    cases: list[tuple[str, str, str, dict[str, str]]] = [
        (p.method, p.path, "no token", {}) for p in bearer
    ]
    cases += [(p.method, p.path, "forged token", forged_token) for p in bearer]
    if keys is not None:
        forged_key = {keys.header: "btk_live_" + uuid.uuid4().hex + uuid.uuid4().hex[:10]}
        for p in key_endpoints:
            cases.append((p.method, p.path, "no API key", {}))
            cases.append((p.method, p.path, "forged API key", forged_key))
    probes = [
        (f"{method} {path} with {label}", partial(call, method, base + path, headers=headers))
        for method, path, label, headers in cases
    ]
    failed = _must_refuse(
        cid, title, probes, "{n} endpoint(s) not protected", "require a valid token or API key"
    )
    said = []
    if bearer:
        said.append(f"{len(bearer)} endpoints refuse missing and forged tokens")
    if keys is not None and key_endpoints:
        paths = ", ".join(p.path for p in key_endpoints)
        said.append(f"{paths} missing and forged API keys")
    return [failed or CheckResult(cid, title, Status.PASS, ", ".join(said))]


def _forged_signatures(scheme: str, header: str, algorithm: str) -> dict[str, dict[str, str]]:
    """Headers of a wrongly signed webhook, as each signing scheme sends them."""
    if scheme == "sumsub":
        return {"wrong signature": {header: "0" * 64, "X-Payload-Digest-Alg": algorithm}}
    if scheme == "stripe":
        return {"wrong signature": {header: f"t={int(time.time())},v1={'0' * 64}"}}
    return {"wrong signature": {header: "sha256=" + "0" * 64}}


@check("security")
def webhook_signatures(t: Target) -> list[CheckResult]:
    """Webhooks without a valid signature are refused."""
    cid, title = "security.webhook_signature", "webhooks with bad signatures are refused"
    if not t.base_url:
        return [_skip(cid, title)]
    hook = t.profile.webhook
    if hook is None:
        return [_undeclared(t, cid, title, "webhook (security.webhook)")]
    body = json.dumps(hook.body).encode()
    url = t.base_url.rstrip("/") + hook.path
    signatures = {"unsigned": {}, **_forged_signatures(hook.scheme, hook.header, hook.algorithm)}
    probes = [
        (
            f"{label} webhook",
            partial(
                call, "POST", url, headers={"Content-Type": "application/json", **h}, body=body
            ),
        )
        for label, h in signatures.items()
    ]
    fixes = {
        "sumsub": "verify X-Payload-Digest (HMAC of the raw body) before acting",
        "hmac-sha256": f"verify {hook.header} (sha256= HMAC of the raw body) before acting",
        "stripe": f"verify {hook.header} (t=..., v1= HMAC of t.body) and its age before acting",
    }
    failed = _must_refuse(
        cid, title, probes, "unsigned or forged webhooks accepted", fixes[hook.scheme]
    )
    found = "unsigned and forged webhooks refused"
    return [failed or CheckResult(cid, title, Status.PASS, found, [f"POST {hook.path}"])]


@check("security")
def cors(t: Target) -> list[CheckResult]:
    """CORS preflights are allowed from the configured origins and refused from others."""
    cid, title = "security.cors", "CORS allows configured origins and refuses a foreign one"
    if not t.base_url:
        return [_skip(cid, title)]
    cors_spec = t.profile.cors
    if cors_spec is None:
        return [_undeclared(t, cid, title, "CORS probe (security.cors)")]
    if cors_spec.origins is not None:
        origins = list(cors_spec.origins)
    else:
        raw = (t.env or {}).get("CORS_ORIGINS", "")
        origins = [o.strip() for o in raw.split(",") if o.strip()]
    if not origins:
        return [CheckResult(cid, title, Status.SKIP, "no CORS_ORIGINS in the environment")]
    url = t.base_url.rstrip("/") + cors_spec.path
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
