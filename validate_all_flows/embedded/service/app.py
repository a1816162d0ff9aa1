"""The Blocktrust reference service: a FastAPI app built on blocktrust_native.

(No ``from __future__ import annotations`` here: FastAPI must evaluate the dependency annotations
of the routes, which refer to functions local to create_app.)

Endpoints (all JSON): ``GET /api/health``, ``GET /api/ready``, ``POST /api/auth/register``,
``POST /api/auth/login``, ``POST /api/kyc/start``, ``POST /api/kyc/webhook``, ``GET /api/identity``,
``POST /api/documents/sign``, ``GET /api/documents/{id}``, ``GET /api/failsafe/status``,
``GET /api/explorer/events``, ``GET /api/admin/overview`` and ``GET /api/admin/failsafe`` (API key
with the admin role; the fail-safe queue's figures, which other callers never see).

Duress, done right: login and signing always run both Argon2id checks in a fixed order
(``check_dual``); a duress match answers exactly like a normal one (status, body shape, headers,
rate-limit accounting) and only queues the fail-safe, which the chain worker runs after a randomised
delay through the same queue as all chain work.
"""

import hashlib
import ipaddress
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any

from eth_account import Account
from fastapi import Depends, FastAPI, File, Form, Header, HTTPException, Request, UploadFile
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from blocktrust_native import __version__, passwords
from blocktrust_native.apikeys.store import PgKeyStore
from blocktrust_native.digest import sha256
from blocktrust_native.pool import Pool
from blocktrust_native.ratelimit.postgres import PgRateLimiter
from validate_all_flows.embedded.chain import BlocktrustContracts
from validate_all_flows.embedded.service.limits import BodyLimit, Busy, HashingGate
from validate_all_flows.embedded.service.security import (
    UploadRejected,
    WebhookRejected,
    decode_token,
    issue_token,
    sniff_upload,
    verify_webhook,
)
from validate_all_flows.embedded.service.settings import ServiceSettings
from validate_all_flows.embedded.service.store import EmailTaken, Store

__all__ = ["Services", "create_app"]

log = logging.getLogger("blocktrust.service")

#: The rate-limit rules that deny when their store cannot be reached (see create_app).
_FAIL_CLOSED = frozenset({"login", "login_ip", "login_account", "register"})


@dataclass
class Services:
    """What the app runs on: settings, the pool, the contracts (None without a chain) and the
    API-key store (admin endpoints answer 503 without one)."""

    settings: ServiceSettings
    pool: Pool
    contracts: BlocktrustContracts | None = None
    keys: PgKeyStore | None = None


class RegisterIn(BaseModel):
    """Body of POST /api/auth/register."""

    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    password: str = Field(min_length=8, max_length=1024)
    duress_password: str | None = Field(default=None, min_length=8, max_length=1024)


class LoginIn(BaseModel):
    """Body of POST /api/auth/login."""

    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


def client_address(request: Request, trusted: tuple[Any, ...]) -> str:
    """The client's address: the peer's, or when the peer is one of the ``trusted`` proxies, the
    nearest address in X-Forwarded-For that is not a trusted proxy. Never a header from anyone
    else (a client could name any address and spread its attempts over them)."""
    peer = request.client.host if request.client else "unknown"

    def is_trusted(addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr.strip())
        except ValueError:
            return False
        return any(ip in net for net in trusted)

    if not trusted or not is_trusted(peer):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",")]
    for hop in reversed([h for h in hops if h]):
        if not is_trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage from beyond the proxies: the proxy is all we know
    return peer


def create_app(services: Services) -> FastAPI:
    """Builds the app on ``services`` (the caller owns the pool and the chain worker)."""
    s = services.settings
    store = Store(services.pool)
    params = passwords.Parameters(
        memory_kib=s.password_memory_kib, iterations=s.password_iterations, parallelism=1
    )
    # Unknown e-mails are checked against these, so timing does not tell whether an account exists.
    decoy = (
        passwords.hash_password(secrets.token_urlsafe(24), params=params),
        passwords.hash_password(secrets.token_urlsafe(24), params=params),
    )
    limits_on = "no_rate_limits" not in s.faults
    # Shared by every worker process through PostgreSQL. The failure policy is explicit per
    # rule: the login and register limits fail closed (a database outage must not unlock password
    # guessing or mass sign-ups); uploads fail open (the body cap and the hashing gate bound them).
    limiters = {
        name: PgRateLimiter(services.pool, rule, fail_open=name not in _FAIL_CLOSED)
        for name, rule in s.rate_limits.items()
    }
    hashing = HashingGate(s.password_hash_concurrency)
    app = FastAPI(title="Blocktrust reference service", version=__version__, debug=s.debug)
    app.state.hashing = hashing
    # Bodies are capped before anything reads them (uploads are never spooled whole first).
    app.add_middleware(
        BodyLimit,
        default=s.max_body_bytes,
        per_path={
            "/api/kyc/webhook": s.webhook_max_bytes,
            "/api/documents/sign": s.max_upload_bytes + 64 * 1024,  # the file plus the form
        },
    )

    def _client_ip(request: Request) -> str:
        return client_address(request, s.trusted_proxies)

    def argon2(fn: Any, *args: Any) -> Any:
        """Runs Argon2 work with at most password_hash_concurrency at once; 503 when busy."""
        try:
            return hashing.run(fn, *args)
        except Busy:
            raise HTTPException(503, "busy, try again", headers={"Retry-After": "1"}) from None

    if s.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(s.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key"],
        )

    def nft_target() -> tuple[int, str] | None:
        if services.contracts is None:
            return None
        entry = services.contracts.config.entry("IdentityNFT")
        return services.contracts.client.chain_id, entry.address.lower()

    def proof_target() -> tuple[int, str] | None:
        if services.contracts is None:
            return None
        entry = services.contracts.config.entry("ProofRegistry")
        return services.contracts.client.chain_id, entry.address.lower()

    def spend(name: str, key: str) -> dict[str, str]:
        """Consumes one unit of rule ``name`` for ``key``; raises 429 when exhausted."""
        limiter = limiters[name]
        if not limits_on:
            return {}
        decision = limiter.hit(f"{name}:{key}")
        headers = limiter.headers(decision)
        if not decision and decision.degraded:
            raise HTTPException(503, "rate limits unavailable, try again", headers=headers)
        if not decision:
            raise HTTPException(429, "too many requests", headers=headers)
        return headers

    def current_user(authorization: Annotated[str | None, Header()] = None) -> int:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise HTTPException(401, "missing bearer token", {"WWW-Authenticate": "Bearer"})
        user_id = decode_token(s.jwt_secret, authorization[7:].strip())
        if user_id is None:
            raise HTTPException(401, "invalid or expired token", {"WWW-Authenticate": "Bearer"})
        return user_id

    def dual_check(password: str, normal: str, duress: str) -> str:
        return str(argon2(lambda: passwords.check_dual(password, normal, duress).name))

    def rehash_if_needed(user: Any, result: str, password: str) -> None:
        # Hashes made under weaker parameters are upgraded at the first login that proves them.
        column, old = (
            ("password_hash", user.password_hash)
            if result == "NORMAL"
            else ("duress_password_hash", user.duress_password_hash)
        )
        if passwords.needs_rehash(old, params=params):
            new = argon2(lambda: passwords.hash_password(password, params=params))
            store.replace_hash(user.id, column, old, new)

    def failsafe_delay() -> float:
        lo, hi = s.failsafe_delay
        return lo + (hi - lo) * secrets.randbelow(1_000_001) / 1_000_000

    def reason_hash(user_id: int, source: str) -> str:
        # A hash that commits to the event without revealing it on the public chain.
        salt = secrets.token_bytes(16)
        return "0x" + hashlib.sha256(salt + f"{user_id}:{source}".encode()).hexdigest()

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        if "slow_health" in s.faults:
            time.sleep(1.5)
        # Reporting debug lets a post-deploy check catch it (it is no secret that it is off).
        return {"status": "ok", "version": __version__, "debug": s.debug}

    @app.get("/api/ready")
    def ready() -> JSONResponse:
        checks: dict[str, Any] = {}
        try:
            services.pool.execute("SELECT 1")
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        if services.contracts is None:
            checks["chain"] = "not configured"
        else:
            try:
                checks["chain"] = {"block": services.contracts.client.block_number()}
            except Exception as exc:
                checks["chain"] = f"error: {type(exc).__name__}"
        ok = checks["database"] == "ok" and isinstance(checks["chain"], dict)
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    @app.post("/api/auth/register", status_code=201)
    def register(body: RegisterIn, request: Request) -> JSONResponse:
        headers = spend("register", _client_ip(request))
        if body.duress_password is not None and body.duress_password == body.password:
            raise HTTPException(400, "the duress password must differ from the password")
        # Every account has a duress hash, a random one when the user sets none.
        duress = body.duress_password or secrets.token_urlsafe(32)
        normal_hash = argon2(lambda: passwords.hash_password(body.password, params=params))
        duress_hash = argon2(lambda: passwords.hash_password(duress, params=params))
        wallet = Account.create().address.lower()  # custodial: the registrar signs for it
        try:
            store.create_user(body.email, normal_hash, duress_hash, wallet)
        except EmailTaken:
            # The same answer, after the same work, as for a new account: register must not
            # tell who has one. (The account, its passwords and wallet stay as they were.)
            log.info("register: the e-mail already has an account; answered as for a new one")
        # The id and wallet come from GET /api/identity once logged in.
        content = {"email": body.email, "status": "registered"}
        return JSONResponse(content, status_code=201, headers=headers)

    @app.post("/api/auth/login")
    def login(body: LoginIn, request: Request) -> JSONResponse:
        # Per client address whatever the e-mail (varying it buys no Argon2 work), per account
        # whatever the address (a loose cap on distributed guessing), and per address and account
        # (the tight one: a guesser locks out himself, not the owner, when addresses are real).
        # A duress login spends exactly what a normal one does.
        ip, email = _client_ip(request), body.email.strip().lower()
        spend("login_ip", ip)
        spend("login_account", email)
        headers = spend("login", f"{ip}:{email}")
        user = store.user_by_email(body.email)
        normal, duress = (user.password_hash, user.duress_password_hash) if user else decoy
        result = dual_check(body.password, normal, duress)
        if user is None or result == "REJECTED":
            raise HTTPException(401, "invalid e-mail or password", headers=headers)
        rehash_if_needed(user, result, body.password)
        if result == "DURESS" and "duress_noop" not in s.faults:
            store.queue_failsafe(user.id, "login", reason_hash(user.id, "login"), failsafe_delay())
        token, ttl = issue_token(s.jwt_secret, user.id, s.jwt_ttl)
        content = {"access_token": token, "token_type": "bearer", "expires_in": ttl}
        return JSONResponse(content, headers=headers)

    @app.post("/api/kyc/start")
    def kyc_start(user_id: Annotated[int, Depends(current_user)]) -> dict[str, Any]:
        return {"applicant_id": store.kyc_start(user_id), "status": "pending"}

    @app.post("/api/kyc/webhook")
    async def kyc_webhook(request: Request) -> JSONResponse:
        body = await request.body()  # capped by BodyLimit before it is read
        if "unsigned_webhooks" not in s.faults:
            try:
                verify_webhook(
                    s.sumsub_secret_key,
                    body,
                    request.headers.get("x-payload-digest"),
                    request.headers.get("x-payload-digest-alg"),
                    algorithms=s.webhook_algorithms,
                )
            except WebhookRejected as exc:
                raise HTTPException(401, f"webhook refused: {exc}") from None
        try:
            event = json.loads(body)
            applicant = str(event["applicantId"])
            answer = str((event.get("reviewResult") or {}).get("reviewAnswer", ""))
            created = int(event["createdAtMs"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise HTTPException(
                422, "expected JSON with applicantId, reviewResult.reviewAnswer, createdAtMs"
            ) from None
        outcome = store.apply_review(
            hashlib.sha256(body).hexdigest(), applicant, answer, created, nft_target()
        )
        return JSONResponse({"outcome": outcome}, status_code=404 if outcome == "unknown" else 200)

    @app.get("/api/identity")
    def identity(user_id: Annotated[int, Depends(current_user)]) -> dict[str, Any]:
        return {"user_id": user_id, **store.identity(user_id)}

    @app.post("/api/documents/sign", status_code=201)
    def sign(
        user_id: Annotated[int, Depends(current_user)],
        file: Annotated[UploadFile, File()],
        password: Annotated[str, Form(max_length=1024)],
    ) -> JSONResponse:
        headers = spend("upload", str(user_id))
        data = file.file.read(s.max_upload_bytes + 1)
        user = store.user_by_id(user_id)
        if user is None:
            raise HTTPException(401, "invalid or expired token")
        result = dual_check(password, user.password_hash, user.duress_password_hash)
        if result == "REJECTED":
            raise HTTPException(403, "password does not match", headers=headers)
        try:
            media_type = sniff_upload(data, s.max_upload_bytes)
        except UploadRejected as exc:
            status = 413 if "larger" in str(exc) else 415
            raise HTTPException(status, str(exc), headers=headers) from None
        doc = sha256(data).hex()
        failsafe = None
        if result == "DURESS" and "duress_noop" not in s.faults:
            failsafe = (reason_hash(user_id, "signature"), failsafe_delay())
        sig_id = store.record_signature(
            user_id,
            doc,
            (file.filename or "")[:255] or None,
            media_type,
            len(data),
            s.proof_mode,
            proof_target(),
            failsafe,
        )
        content = {"signature_id": sig_id, "document_sha256": doc, "proof_status": "pending"}
        return JSONResponse(content, status_code=201, headers=headers)

    @app.get("/api/documents/{signature_id}")
    def document(
        signature_id: int, user_id: Annotated[int, Depends(current_user)]
    ) -> dict[str, Any]:
        row = store.signature(user_id, signature_id)
        if row is None:
            raise HTTPException(404, "no such signature")
        return row

    def failsafe_contract() -> str | None:
        if services.contracts is None:
            return None
        return str(services.contracts.config.entry("FailSafe").address)

    @app.get("/api/failsafe/status")
    def failsafe_status(_: Annotated[int, Depends(current_user)]) -> dict[str, Any]:
        # The same answer whatever happened: queue counts move by one at a duress, and the
        # coercer may hold the victim's token. The figures are behind the admin key.
        if "duress_visible" in s.faults:
            return {**store.failsafe_status(), "contract": failsafe_contract()}
        return {"contract": failsafe_contract()}

    def admin_key(x_api_key: Annotated[str | None, Header()] = None) -> str:
        if services.keys is None:
            raise HTTPException(503, "API keys are not configured")
        info = services.keys.authenticate(x_api_key) if x_api_key else None
        if info is None:
            raise HTTPException(401, "missing or invalid API key")
        if info.role != "admin":
            raise HTTPException(403, "this endpoint needs an API key with the admin role")
        return info.key_id

    @app.get("/api/admin/overview")
    def admin_overview(_: Annotated[str, Depends(admin_key)]) -> dict[str, Any]:
        counts = services.pool.execute(
            "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM signatures), "
            "(SELECT count(*) FROM identity_nfts WHERE status = 'active')"
        )[0]
        return {
            "users": int(counts[0]),
            "signatures": int(counts[1]),
            "active_identities": int(counts[2]),
            "pool": services.pool.stats(),
        }

    @app.get("/api/admin/failsafe")
    def admin_failsafe(_: Annotated[str, Depends(admin_key)]) -> dict[str, Any]:
        return {**store.failsafe_status(), "contract": failsafe_contract()}

    @app.get("/api/explorer/events")
    def explorer(_: Annotated[int, Depends(current_user)], limit: int = 50) -> dict[str, Any]:
        return {"events": store.chain_events(max(1, min(limit, 500)))}

    return app
