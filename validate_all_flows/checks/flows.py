"""The Blocktrust flows, end to end: register, KYC -> NFT, normal signature, duress signature.

Each flow is checked through the API and, when given, in the database and on chain. The duress
flow checks that the duress answer is indistinguishable from a normal one and that the fail-safe
then cancels the NFT on chain and records a fail-safe event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from validate_all_flows.checks import CheckResult, Status, check
from validate_all_flows.httpcall import HttpResult, call
from validate_all_flows.target import Target

NORMAL, DURESS = "Normal-pass-" + uuid.uuid4().hex[:8], "Duress-pass-" + uuid.uuid4().hex[:8]
PDF = b"%PDF-1.7\n% validate_all_flows probe document\n"


class _FlowFailed(Exception):
    def __init__(self, found: str, evidence: list[str] | None = None, fix: str = "") -> None:
        super().__init__(found)
        self.found, self.evidence, self.fix = found, evidence or [], fix


def _expect(r: HttpResult, status: int, what: str) -> Any:
    if r.status != status:
        body = r.body[:200].decode(errors="replace")
        raise _FlowFailed(
            f"{what}: expected {status}, got {r.status or r.error}",
            [body] if body else [],
            f"see the service log for {what}",
        )
    return r.json()


def _multipart(fields: dict[str, str], file: tuple[str, bytes, str]) -> tuple[bytes, str]:
    boundary = "bt" + uuid.uuid4().hex
    parts = []
    for k, v in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n')
    name, data, ctype = file
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: {ctype}\r\n\r\n"
    )
    body = "".join(parts).encode() + head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _wait(timeout: float, fn: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


class _Chain:
    """Read-only views of the configured contracts (no key needed)."""

    def __init__(self, t: Target) -> None:
        from web3 import Web3

        from validate_all_flows.embedded.chain import load_contracts_config

        assert t.rpc_url
        assert t.contracts
        w3 = Web3(Web3.HTTPProvider(t.rpc_url, request_kwargs={"timeout": 10}))
        cfg = load_contracts_config(t.contracts)
        nft, reg = cfg.entry("IdentityNFT"), cfg.entry("ProofRegistry")
        self.nft = w3.eth.contract(address=Web3.to_checksum_address(nft.address), abi=nft.abi)
        self.reg = w3.eth.contract(address=Web3.to_checksum_address(reg.address), abi=reg.abi)

    def status_of(self, token_id: int) -> int:
        return int(self.nft.functions.statusOf(token_id).call())  # 1 active, 2 cancelled

    def proof_signer(self, doc_hex: str) -> str:
        signer = self.reg.functions.getProof(bytes.fromhex(doc_hex)).call()[0]
        return str(signer).lower()


class _Session:
    """One probe user walking through the flows."""

    def __init__(self, t: Target) -> None:
        assert t.base_url
        self.t, self.url = t, t.base_url.rstrip("/")
        t.add_secrets([NORMAL, DURESS])
        self.email = f"probe-{uuid.uuid4().hex[:12]}@validate.example"
        self.token = ""
        self.user: dict[str, Any] = {}
        self.nft: dict[str, Any] = {}
        self.chain = _Chain(t) if t.rpc_url and t.contracts else None
        delay = float((t.env or {}).get("FAILSAFE_DELAY_MAX", "300") or 300)
        self.failsafe_wait = delay + t.chain_margin_s

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def register(self) -> list[str]:
        body = {"email": self.email, "password": NORMAL, "duress_password": DURESS}
        self.user = _expect(
            call("POST", self.url + "/api/auth/register", json_body=body),
            201,
            "POST /api/auth/register",
        )
        login = {"email": self.email, "password": NORMAL}
        r = call("POST", self.url + "/api/auth/login", json_body=login)
        self.token = _expect(r, 200, "POST /api/auth/login")["access_token"]
        evidence = [f"user {self.user.get('id')} registered and logged in ({r.ms:.0f} ms)"]
        if self.t.database_url:
            rows = self.t.pool().execute(
                "SELECT password_hash LIKE '$argon2id$%', duress_password_hash LIKE '$argon2id$%' "
                "FROM users WHERE lower(email) = lower($1)",
                (self.email,),
            )
            if rows != [(True, True)]:
                raise _FlowFailed("both password hashes not stored as Argon2id", [str(rows)])
            evidence.append("database: normal and duress Argon2id hashes stored")
        return evidence

    def kyc(self) -> list[str]:
        secret = self.t.webhook_secret
        if not secret:
            raise _FlowFailed("no webhook secret (SUMSUB_SECRET_KEY in --env-file)", fix="give it")
        start = call("POST", self.url + "/api/kyc/start", headers=self.auth())
        applicant = _expect(start, 200, "POST /api/kyc/start")["applicant_id"]
        review = {
            "applicantId": applicant,
            "type": "applicantReviewed",
            "reviewResult": {"reviewAnswer": "GREEN"},
            "createdAtMs": int(time.time() * 1000),
        }
        body = json.dumps(review).encode()
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "X-Payload-Digest": digest,
            "X-Payload-Digest-Alg": "HMAC_SHA256_HEX",
            "Content-Type": "application/json",
        }
        _expect(
            call("POST", self.url + "/api/kyc/webhook", headers=headers, body=body),
            200,
            "POST /api/kyc/webhook",
        )

        def minted() -> Any:
            nft = call("GET", self.url + "/api/identity", headers=self.auth()).json() or {}
            return (nft.get("nft") or {}).get("status") == "active" and nft["nft"]

        self.nft = _wait(60, minted) or {}
        if not self.nft:
            raise _FlowFailed(
                "the identity NFT was not minted within 60 s of the GREEN review",
                fix="check the chain worker and its RPC endpoint",
            )
        evidence = [f"API: identity NFT {self.nft['token_id']} active"]
        if self.t.database_url:
            rows = self.t.pool().execute(
                "SELECT n.status FROM identity_nfts n JOIN users u ON u.id = n.user_id "
                "WHERE lower(u.email) = lower($1)",
                (self.email,),
            )
            if rows != [("active",)]:
                raise _FlowFailed("database does not show the NFT active", [str(rows)])
            evidence.append("database: identity_nfts row active")
        if self.chain:
            if self.chain.status_of(int(self.nft["token_id"])) != 1:
                raise _FlowFailed("the NFT is not active on chain")
            evidence.append("chain: IdentityNFT.statusOf = Active")
        return evidence

    def sign(self, password: str) -> tuple[HttpResult, str]:
        doc = PDF + uuid.uuid4().bytes
        body, ctype = _multipart({"password": password}, ("probe.pdf", doc, "application/pdf"))
        headers = {**self.auth(), "Content-Type": ctype}
        r = call("POST", self.url + "/api/documents/sign", headers=headers, body=body)
        return r, hashlib.sha256(doc).hexdigest()

    def sign_normal(self) -> list[str]:
        r, doc = self.sign(NORMAL)
        sig = _expect(r, 201, "POST /api/documents/sign")
        if sig.get("document_sha256") != doc:
            raise _FlowFailed("the service reports another document hash", [str(sig)])

        def confirmed() -> Any:
            d = call("GET", f"{self.url}/api/documents/{sig['signature_id']}", headers=self.auth())
            return (d.json() or {}).get("status") == "confirmed"

        if not _wait(60, confirmed):
            raise _FlowFailed(
                "the proof was not confirmed within 60 s", fix="check the chain worker"
            )
        evidence = [f"API: signature {sig['signature_id']} proof confirmed ({r.ms:.0f} ms)"]
        if self.chain:
            signer = self.chain.proof_signer(doc)
            if signer != str(self.user.get("wallet_address", "")).lower():
                raise _FlowFailed(
                    "ProofRegistry does not hold the proof for the user's wallet",
                    [f"signer on chain: {signer}"],
                )
            evidence.append("chain: ProofRegistry.getProof names the user's wallet")
        return evidence

    def sign_duress(self) -> list[str]:
        normal, _ = self.sign(NORMAL)
        duress, _ = self.sign(DURESS)
        a, b = _expect(normal, 201, "normal signature"), _expect(duress, 201, "duress signature")
        ignore = {"date", "content-length", "x-request-id"}
        ha = {k for k in normal.headers if k not in ignore}
        hb = {k for k in duress.headers if k not in ignore}
        if set(a) != set(b) or ha != hb:
            raise _FlowFailed(
                "the duress answer differs from a normal one",
                [f"normal: {sorted(a)} {sorted(ha)}", f"duress: {sorted(b)} {sorted(hb)}"],
                "answer both paths with the same status, fields and headers",
            )
        evidence = [f"duress answer has the normal shape ({normal.ms:.0f} vs {duress.ms:.0f} ms)"]
        token_id = int(self.nft["token_id"])
        if self.chain:
            chain = self.chain
            if not _wait(self.failsafe_wait, lambda: chain.status_of(token_id) == 2):
                raise _FlowFailed(
                    f"the NFT was not cancelled on chain within "
                    f"{self.failsafe_wait:.0f} s of the duress signature",
                    fix="check that the duress path queues the fail-safe "
                    "and that the worker runs it",
                )
            evidence.append("chain: IdentityNFT.statusOf = Cancelled")
        if self.t.database_url:
            pool = self.t.pool()

            def recorded() -> Any:
                return pool.execute(
                    "SELECT f.status FROM failsafe_events f JOIN users u ON u.id = f.user_id "
                    "WHERE lower(u.email) = lower($1) AND f.source = 'signature'",
                    (self.email,),
                )

            rows = _wait(self.failsafe_wait if not self.chain else 10, recorded)
            if not rows:
                raise _FlowFailed(
                    "no failsafe_events row for the duress signature",
                    fix="the duress path must record a fail-safe event",
                )
            evidence.append(f"database: failsafe_events row ({rows[0][0]})")
        if not self.chain and not self.t.database_url:
            raise _FlowFailed("cannot see the fail-safe without --rpc-url or --database-url")
        return evidence


FLOWS = [
    ("register", "register with a normal and a duress password", "register"),
    ("kyc_mint", "KYC approval mints the identity NFT (API, database, chain)", "kyc"),
    ("sign_normal", "a normal signature is recorded on chain", "sign_normal"),
    ("sign_duress", "a duress signature looks normal and trips the fail-safe", "sign_duress"),
]


@check("flows", ids=("flows.register", "flows.kyc_mint", "flows.sign_normal", "flows.sign_duress"))
def blocktrust_flows(t: Target) -> list[CheckResult]:
    """The four Blocktrust flows, each depending on the one before."""
    if not t.base_url:
        return [
            CheckResult(f"flows.{fid}", title, Status.SKIP, "no service given (--base-url)")
            for fid, title, _ in FLOWS
        ]
    session = _Session(t)
    out: list[CheckResult] = []
    broken = ""
    for fid, title, method in FLOWS:
        if broken:
            out.append(CheckResult(f"flows.{fid}", title, Status.SKIP, f"needs {broken}"))
            continue
        t0 = time.monotonic()
        try:
            evidence = getattr(session, method)()
            out.append(CheckResult(f"flows.{fid}", title, Status.PASS, "ok", evidence))
        except _FlowFailed as exc:
            out.append(
                CheckResult(
                    f"flows.{fid}",
                    title,
                    Status.FAIL,
                    t.redact(exc.found),
                    [t.redact(e) for e in exc.evidence],
                    exc.fix,
                )
            )
            broken = f"flows.{fid}, which failed"
        out[-1].seconds = time.monotonic() - t0
    return out
