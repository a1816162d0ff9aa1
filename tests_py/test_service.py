"""The reference service end to end on the embedded stack: real PostgreSQL, real anvil, real HTTP.

The four Blocktrust flows are checked in the API, in the database and on chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fix_wait import wait_until

from validate_all_flows.embedded.chain import IdentityStatus
from validate_all_flows.embedded.stack import Stack

pytestmark = [pytest.mark.pg, pytest.mark.slow]

PDF = b"%PDF-1.7\n% a tiny test document\n"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # Loose limits: the tests below register many users from one address.
    env = {
        "RATE_LIMIT_REGISTER": "1000/hour",
        "RATE_LIMIT_UPLOAD": "1000/hour",
        "RATE_LIMIT_LOGIN_IP": "1000/hour",  # every registration here logs in from one address
    }
    with Stack(env=env) as s:
        yield s


@pytest.fixture
def api(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.base_url, timeout=30) as c:
        yield c


def _email() -> str:
    return f"u{uuid.uuid4().hex[:10]}@example.org"


def _register(
    api: httpx.Client, duress: str | None = "duress-pass-1"
) -> tuple[str, dict[str, Any]]:
    email = _email()
    body = {"email": email, "password": "normal-pass-1"}
    if duress:
        body["duress_password"] = duress
    r = api.post("/api/auth/register", json=body)
    assert r.status_code == 201, r.text
    assert r.json() == {"email": email, "status": "registered"}  # no id: no enumeration
    auth = {"Authorization": f"Bearer {_login(api, email)}"}
    me = api.get("/api/identity", headers=auth).json()
    return email, {"id": me["user_id"], "email": email, "wallet_address": me["wallet_address"]}


def _login(api: httpx.Client, email: str, password: str = "normal-pass-1") -> str:
    r = api.post("/api/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _signed(stack: Stack, payload: dict[str, Any], alg: str = "HMAC_SHA256_HEX") -> dict[str, Any]:
    body = json.dumps(payload).encode()
    fn = {"HMAC_SHA1_HEX": "sha1", "HMAC_SHA256_HEX": "sha256", "HMAC_SHA512_HEX": "sha512"}[alg]
    digest = hmac.new(stack.service_env["SUMSUB_SECRET_KEY"].encode(), body, fn).hexdigest()
    return {
        "content": body,
        "headers": {
            "X-Payload-Digest": digest,
            "X-Payload-Digest-Alg": alg,
            "Content-Type": "application/json",
        },
    }


def _kyc_approved_user(stack: Stack, api: httpx.Client) -> tuple[str, str, dict[str, Any]]:
    email, user = _register(api)
    token = _login(api, email)
    auth = {"Authorization": f"Bearer {token}"}
    applicant = api.post("/api/kyc/start", headers=auth).json()["applicant_id"]
    review = {
        "applicantId": applicant,
        "type": "applicantReviewed",
        "reviewResult": {"reviewAnswer": "GREEN"},
        "createdAtMs": int(time.time() * 1000),
    }
    r = api.post("/api/kyc/webhook", **_signed(stack, review))
    assert r.json() == {"outcome": "applied"}
    nft = wait_until(
        lambda: (
            (n := api.get("/api/identity", headers=auth).json()["nft"])
            and n["status"] == "active"
            and n
        ),
        timeout=30,
        what="the identity NFT",
    )
    return email, token, {**user, "nft": nft}


def test_health_and_ready(api: httpx.Client) -> None:
    r = api.get("/api/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    ready = api.get("/api/ready").json()
    assert ready["ready"] is True
    assert ready["checks"]["database"] == "ok"


def test_register_stores_both_hashes_and_refuses_equal_passwords(
    stack: Stack, api: httpx.Client
) -> None:
    email, user = _register(api)
    row = stack.pool.execute(
        "SELECT password_hash, duress_password_hash FROM users WHERE id = $1", (user["id"],)
    )[0]
    assert row[0].startswith("$argon2id$")
    assert row[1].startswith("$argon2id$")
    assert row[0] != row[1]
    same = {"email": _email(), "password": "same-pass-1", "duress_password": "same-pass-1"}
    assert api.post("/api/auth/register", json=same).status_code == 400
    again = {"email": email.upper(), "password": "other-pass-1"}
    r = api.post("/api/auth/register", json=again)  # the same answer as for a new account
    assert (r.status_code, r.json()) == (201, {"email": email.upper(), "status": "registered"})
    assert api.post("/api/auth/login", json=again).status_code == 401  # nothing was changed
    # Without a duress password the account still gets a (random) duress hash.
    _, lone = _register(api, duress=None)
    assert stack.pool.execute(
        "SELECT duress_password_hash IS NOT NULL FROM users WHERE id = $1", (lone["id"],)
    ) == [(True,)]


def test_login_refuses_wrong_passwords_and_unknown_users(api: httpx.Client) -> None:
    email, _ = _register(api)
    assert (
        api.post("/api/auth/login", json={"email": email, "password": "nope-nope"}).status_code
        == 401
    )
    r = api.post("/api/auth/login", json={"email": _email(), "password": "normal-pass-1"})
    assert r.status_code == 401


def test_kyc_green_mints_the_identity_nft_on_chain(stack: Stack, api: httpx.Client) -> None:
    _, _, user = _kyc_approved_user(stack, api)
    token_id = user["nft"]["token_id"]
    assert stack.contracts is not None
    assert stack.contracts.status_of(token_id) is IdentityStatus.ACTIVE
    assert stack.contracts.token_of(user["wallet_address"]) == token_id


def test_webhook_signatures_replays_and_stale_reviews(stack: Stack, api: httpx.Client) -> None:
    email, _ = _register(api)
    auth = {"Authorization": f"Bearer {_login(api, email)}"}
    applicant = api.post("/api/kyc/start", headers=auth).json()["applicant_id"]
    now = int(time.time() * 1000)
    red = {"applicantId": applicant, "reviewResult": {"reviewAnswer": "RED"}, "createdAtMs": now}
    unsigned = api.post("/api/kyc/webhook", json=red)
    assert unsigned.status_code == 401
    forged = _signed(stack, red)
    forged["headers"]["X-Payload-Digest"] = "00" * 32
    assert api.post("/api/kyc/webhook", **forged).status_code == 401
    bad_alg = _signed(stack, red)
    bad_alg["headers"]["X-Payload-Digest-Alg"] = "MD5"
    assert api.post("/api/kyc/webhook", **bad_alg).status_code == 401
    signed = _signed(stack, {**red, "createdAtMs": now - 10}, "HMAC_SHA512_HEX")
    assert api.post("/api/kyc/webhook", **signed).status_code == 200
    # SHA-1 is accepted only when WEBHOOK_ALGORITHMS lists it, even correctly signed.
    sha1 = _signed(stack, {**red, "createdAtMs": now - 10}, "HMAC_SHA1_HEX")
    assert api.post("/api/kyc/webhook", **sha1).status_code == 401
    assert api.post("/api/kyc/webhook", **_signed(stack, red)).json() == {"outcome": "applied"}
    assert api.post("/api/kyc/webhook", **_signed(stack, red)).json() == {"outcome": "duplicate"}
    older = {**red, "reviewResult": {"reviewAnswer": "GREEN"}, "createdAtMs": now - 1000}
    assert api.post("/api/kyc/webhook", **_signed(stack, older)).json() == {"outcome": "stale"}
    assert api.get("/api/identity", headers=auth).json()["kyc_status"] == "rejected"


def test_normal_signature_is_recorded_on_chain(stack: Stack, api: httpx.Client) -> None:
    _, token, user = _kyc_approved_user(stack, api)
    auth = {"Authorization": f"Bearer {token}"}
    doc = PDF + uuid.uuid4().bytes
    r = api.post(
        "/api/documents/sign",
        headers=auth,
        files={"file": ("contract.pdf", doc, "application/pdf")},
        data={"password": "normal-pass-1"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["document_sha256"] == hashlib.sha256(doc).hexdigest()
    sig = r.json()["signature_id"]
    row = wait_until(
        lambda: (
            (d := api.get(f"/api/documents/{sig}", headers=auth).json())["status"] == "confirmed"
            and d
        ),
        timeout=30,
        what="the proof",
    )
    assert stack.contracts is not None
    proof = stack.contracts.get_proof("0x" + hashlib.sha256(doc).hexdigest())
    assert proof is not None
    assert proof.signer.lower() == user["wallet_address"]
    assert proof.token_id == user["nft"]["token_id"]
    assert row["tx_hash"].startswith("0x")


def test_duress_signature_looks_normal_and_cancels_the_nft(stack: Stack, api: httpx.Client) -> None:
    _, token, user = _kyc_approved_user(stack, api)
    auth = {"Authorization": f"Bearer {token}"}

    def sign(password: str) -> httpx.Response:
        return api.post(
            "/api/documents/sign",
            headers=auth,
            files={"file": ("a.pdf", PDF + uuid.uuid4().bytes, "application/pdf")},
            data={"password": password},
        )

    normal, duress = sign("normal-pass-1"), sign("duress-pass-1")
    assert normal.status_code == duress.status_code == 201
    assert normal.json().keys() == duress.json().keys()
    assert sorted(normal.headers.keys()) == sorted(duress.headers.keys())
    assert sign("wrong-password").status_code == 403
    assert stack.contracts is not None
    token_id = user["nft"]["token_id"]
    wait_until(
        lambda: stack.contracts.status_of(token_id) is IdentityStatus.CANCELLED,  # type: ignore[union-attr]
        timeout=30,
        what="the fail-safe",
    )
    # The worker commits its row right after the chain transaction is mined: wait for that too.
    events = wait_until(
        lambda: (
            (
                rows := stack.pool.execute(  # type: ignore[union-attr]
                    "SELECT source, status, tx_hash FROM failsafe_events WHERE user_id = $1",
                    (user["id"],),
                )
            )
            and rows[0][1] == "confirmed"
            and rows
        ),
        timeout=30,
        what="the fail-safe row",
    )
    assert len(events) == 1
    assert events[0][0] == "signature"
    assert events[0][1] == "confirmed"
    nft = api.get("/api/identity", headers=auth).json()["nft"]
    assert nft["status"] == "cancelled"


def test_duress_login_answers_like_a_normal_one_and_queues_the_failsafe(
    stack: Stack, api: httpx.Client
) -> None:
    email, token, user = _kyc_approved_user(stack, api)
    auth = {"Authorization": f"Bearer {token}"}
    admin = {"X-API-Key": stack.admin_key}
    before = sum(api.get("/api/admin/failsafe", headers=admin).json()["events"].values())
    seen = api.get("/api/failsafe/status", headers=auth).json()
    a = api.post("/api/auth/login", json={"email": email, "password": "normal-pass-1"})
    b = api.post("/api/auth/login", json={"email": email, "password": "duress-pass-1"})
    assert a.status_code == b.status_code == 200
    assert a.json().keys() == b.json().keys()
    assert a.json()["expires_in"] == b.json()["expires_in"]
    # The coercer holding a token sees nothing move; the admin's figures do.
    assert api.get("/api/failsafe/status", headers=auth).json() == seen
    assert seen == {"contract": stack.contracts.config.entry("FailSafe").address}  # type: ignore[union-attr]
    assert (
        sum(api.get("/api/admin/failsafe", headers=admin).json()["events"].values()) == before + 1
    )
    wait_until(
        lambda: (
            stack.pool.execute(
                "SELECT status FROM failsafe_events WHERE user_id = $1", (user["id"],)
            )
            == [("confirmed",)]
        ),
        timeout=30,
        what="the login fail-safe",
    )


def test_protected_endpoints_refuse_missing_and_bad_tokens(api: httpx.Client) -> None:
    for path in ("/api/identity", "/api/failsafe/status", "/api/explorer/events"):
        assert api.get(path).status_code == 401
        assert api.get(path, headers={"Authorization": "Bearer x.y.z"}).status_code == 401


def test_uploads_are_judged_by_their_bytes(stack: Stack, api: httpx.Client) -> None:
    email, _ = _register(api)
    auth = {"Authorization": f"Bearer {_login(api, email)}"}

    def sign(data: bytes, name: str = "x.pdf") -> int:
        return api.post(
            "/api/documents/sign",
            headers=auth,
            files={"file": (name, data, "application/pdf")},
            data={"password": "normal-pass-1"},
        ).status_code

    assert sign(b"MZ\x90\x00 disguised executable") == 415
    assert sign(b"\x00\x01\x02\x03 binary junk") == 415
    assert sign(b"") == 415
    assert sign(b"%PDF-" + b"x" * (5 * 1024 * 1024)) == 413
    assert sign(b"plain text is fine\n", "notes.txt") == 201


def test_login_rate_limit_answers_429_with_retry_after(api: httpx.Client) -> None:
    email, _ = _register(api)  # which logs in once (for the id and wallet)
    codes = []
    for _ in range(5):
        r = api.post("/api/auth/login", json={"email": email, "password": "normal-pass-1"})
        codes.append(r.status_code)
    assert codes == [200] * 4 + [429]
    assert int(r.headers["Retry-After"]) > 0
    assert r.headers["RateLimit-Remaining"] == "0"


def test_admin_endpoint_needs_an_admin_api_key(stack: Stack, api: httpx.Client) -> None:
    assert api.get("/api/admin/overview").status_code == 401
    bad = stack.admin_key[:-1] + ("A" if stack.admin_key[-1] != "A" else "B")
    assert api.get("/api/admin/overview", headers={"X-API-Key": bad}).status_code == 401
    client = api.get("/api/admin/overview", headers={"X-API-Key": stack.client_key})
    assert client.status_code == 403
    ok = api.get("/api/admin/overview", headers={"X-API-Key": stack.admin_key})
    assert ok.status_code == 200
    assert ok.json()["users"] >= 0
