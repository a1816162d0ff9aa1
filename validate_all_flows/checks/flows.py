"""The Blocktrust flows, end to end: register, KYC -> NFT, normal signature, duress signature.

The HTTP side runs natively as flow specs (``validate_all_flows/flows/blocktrust.yaml``, or the
operator's ``--flows FILE``; the contract is in :mod:`validate_all_flows.flow_contract`): one
sub-flow per check, run in order through :mod:`blocktrust_native.flows`. Between them, the
database and the chain are checked here from the values the sub-flow captured. The duress check
compares the captured duress answer with the normal one (status, JSON fields, header names) and
then sees the fail-safe cancel the NFT on chain and record a fail-safe event. Each check is
skipped when the one before it failed.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from blocktrust_native.digest import keccak256
from blocktrust_native.errors import FlowSpecError
from blocktrust_native.flows import FlowSpec, Report, run_flow
from blocktrust_native.jsonrpc import JsonRpcClient
from validate_all_flows.checks import CheckResult, Status, check
from validate_all_flows.duress_surfaces import SURFACES, captured_surfaces, surface_differences
from validate_all_flows.flow_contract import PARTS, load_flows
from validate_all_flows.target import Target

NORMAL, DURESS = "Normal-pass-" + uuid.uuid4().hex[:8], "Duress-pass-" + uuid.uuid4().hex[:8]

#: Response headers that may differ between any two answers.
_VOLATILE_HEADERS = {"date", "content-length", "x-request-id"}

#: For the built-in step names: what a failure means and how to fix it ({s}: seconds waited).
_HINTS = {
    "kyc_mint/webhook": (
        "",
        "check that the service's SUMSUB_SECRET_KEY is the one given and that it accepts "
        "X-Payload-Digest / X-Payload-Digest-Alg",
    ),
    "kyc_mint/minted": (
        "the identity NFT was not minted within {s} s of the GREEN review",
        "check the chain worker and its RPC endpoint",
    ),
    "sign_normal/confirmed": ("the proof was not confirmed within {s} s", "check the chain worker"),
}


class _FlowFailed(Exception):
    def __init__(
        self,
        found: str,
        evidence: list[str] | None = None,
        fix: str = "",
        status: Status = Status.FAIL,
    ) -> None:
        super().__init__(found)
        self.found, self.evidence, self.fix, self.status = found, evidence or [], fix, status


def _wait(timeout: float, fn: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def _document() -> str:
    return f"%PDF-1.7\n% validate_all_flows probe document {uuid.uuid4().hex}\n"


class _Chain:
    """Read-only calls to the configured contracts over the native JSON-RPC client (no key and
    no web3 needed: both calls have static arguments and results)."""

    _STATUS_OF = keccak256(b"statusOf(uint256)")[:4].hex()
    _GET_PROOF = keccak256(b"getProof(bytes32)")[:4].hex()

    def __init__(self, t: Target) -> None:
        from blocktrust_native.listener.contracts import load_contracts_config

        assert t.rpc_url
        assert t.contracts
        self.rpc = JsonRpcClient(t.rpc_url, request_timeout=10.0)
        cfg = load_contracts_config(t.contracts)
        self.nft = cfg.entry("IdentityNFT").address
        self.registry = cfg.entry("ProofRegistry").address

    def _call(self, to: str, selector: str, word: int) -> str:
        data = "0x" + selector + f"{word:064x}"
        return str(self.rpc.call("eth_call", [{"to": to, "data": data}, "latest"]))[2:]

    def status_of(self, token_id: int) -> int:
        """IdentityNFT.statusOf: 1 active, 2 cancelled."""
        return int(self._call(self.nft, self._STATUS_OF, token_id)[:64] or "0", 16)

    def proof_signer(self, doc_hex: str) -> str:
        """ProofRegistry.getProof(document hash).signer, lower-case (the zero address if none)."""
        word = self._call(self.registry, self._GET_PROOF, int(doc_hex, 16))[:64]
        return "0x" + word[24:].rjust(40, "0")


def _fields(body: object) -> list[str]:
    """The top-level JSON field names of a captured body (or what it is when not an object)."""
    try:
        doc = json.loads(body) if isinstance(body, str) else body
    except ValueError:
        return ["<not JSON>"]
    return sorted(doc) if isinstance(doc, dict) else [f"<JSON {type(doc).__name__}>"]


def _header_names(headers: object) -> list[str]:
    names = headers if isinstance(headers, dict) else {}
    return sorted(str(k).lower() for k in names if str(k).lower() not in _VOLATILE_HEADERS)


class _Session:
    """One probe user walking through the flows; ``values`` grows with each part's captures."""

    def __init__(self, t: Target, spec: FlowSpec, values: dict[str, Any]) -> None:
        assert t.base_url
        self.t, self.spec, self.values = t, spec, values
        self.email = str(values["user_email"])
        self.chain = _Chain(t) if t.rpc_url and t.contracts else None
        self.failsafe_wait = float(values["failsafe_wait_s"])

    def run(self, part: str) -> tuple[Report, FlowSpec]:
        """Runs sub-flow `part` once; its captures join ``values`` even when it fails."""
        spec = self.spec.subflow(part, vars=self.values)
        assert self.t.base_url
        report = run_flow(
            spec, self.t.base_url, iterations=1, connect_timeout=5, request_timeout=10
        )
        self.values.update(report.captures)
        return report, spec

    def expect(self, report: Report, spec: FlowSpec) -> None:
        """Raises _FlowFailed naming the failing step, its request and what came back."""
        if not report.failures and report.iterations == 1 and not report.failed_iterations:
            return
        if not report.failures:
            raise _FlowFailed("the flow did not finish (interrupted)")
        f = report.failures[0]
        steps = {s["name"]: s for s in spec.compiled()["steps"]}
        step = steps.get(f.step, {})
        request = f"{step.get('method', '?')} {step.get('url', '?')}"
        reason = f.reason.replace(f"assert {f.step}: ", "assert ", 1)
        detail = f"step {f.step} ({request}): {reason}"
        hint, hint_fix = _HINTS.get(f.step, ("", ""))
        waited = re.search(r"after \d+ attempts in ([0-9.]+) s\)$", f.reason)
        found = hint.format(s=f"{float(waited.group(1)):.0f}") if hint and waited else detail
        evidence = [detail] if found != detail else []
        fix = hint_fix or f"see the service log for {request}"
        head, _, body = f.excerpt.partition("\n\n")
        status_line = head.splitlines()[0] if head else ""
        excerpt = " ".join(x for x in (status_line, body[:200]) if x)
        if excerpt:
            evidence.append(excerpt)
        if f.status == 429:
            # The deployment's own limit, not a broken flow: the check could not be judged.
            retry = re.search(r"^retry-after: *(\S+)", head, re.I | re.M)
            raise _FlowFailed(
                f"rate-limited at step {f.step} (HTTP 429), so the flow could not be judged"
                + (f"; the service says retry after {retry.group(1)} s" if retry else ""),
                [detail, *([excerpt] if excerpt else [])],
                "every validation registers one probe user (--load one more) and deployments "
                "limit registrations per client address (reference service: RATE_LIMIT_REGISTER, "
                "3/hour): wait for the window or validate from another address",
                Status.ERROR,
            )
        raise _FlowFailed(found, evidence, fix)

    def register(self) -> list[str]:
        report, spec = self.run("register")
        self.expect(report, spec)
        ms = report.flow_latency["max_ms"]
        user = self.values.get("user_id", "?")
        evidence = [f"user {user} registered and logged in ({ms:.0f} ms)"]
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
        if not self.values.get("webhook_secret"):
            raise _FlowFailed("no webhook secret (SUMSUB_SECRET_KEY in --env-file)", fix="give it")
        report, spec = self.run("kyc_mint")
        self.expect(report, spec)
        token_id = self.values.get("token_id")
        evidence = [f"API: identity NFT {token_id} active"]
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
            if self.chain.status_of(int(str(token_id))) != 1:
                raise _FlowFailed("the NFT is not active on chain")
            evidence.append("chain: IdentityNFT.statusOf = Active")
        return evidence

    def sign_normal(self) -> list[str]:
        document = _document()
        self.values["document"] = document
        doc = hashlib.sha256(document.encode()).hexdigest()
        report, spec = self.run("sign_normal")
        self.expect(report, spec)
        sig = {k: self.values.get(k) for k in ("signature_id", "document_sha256")}
        if sig["document_sha256"] != doc:
            raise _FlowFailed("the service reports another document hash", [str(sig)])
        first = report.steps[0]
        evidence = [
            f"API: signature {sig['signature_id']} proof confirmed "
            f"({first.name} took {first.latency['max_ms']:.0f} ms)"
        ]
        if self.chain:
            signer = self.chain.proof_signer(doc)
            if signer != str(self.values.get("wallet_address", "")).lower():
                raise _FlowFailed(
                    "ProofRegistry does not hold the proof for the user's wallet",
                    [f"signer on chain: {signer}"],
                )
            evidence.append("chain: ProofRegistry.getProof names the user's wallet")
        return evidence

    def _latency_of(self, report: Report, spec: FlowSpec, var: str) -> float:
        """Latency (ms) of the step that captured `var` (0 when none did)."""
        for s in spec.compiled()["steps"]:
            if any(c["var"] == var for c in s["captures"]):
                return float(report.step(s["name"]).latency["max_ms"])
        return 0.0

    def sign_duress(self) -> list[str]:
        report, spec = self.run("sign_duress")
        v = self.values
        flow_failed: _FlowFailed | None = None
        try:
            self.expect(report, spec)
        except _FlowFailed as exc:
            flow_failed = exc
        # The shape first: a duress answer that gives itself away is the worse fault.
        if all(f"{w}_status" in v for w in ("normal", "duress")):
            a = (v["normal_status"], _fields(v["normal_body"]), _header_names(v["normal_headers"]))
            b = (v["duress_status"], _fields(v["duress_body"]), _header_names(v["duress_headers"]))
            if a != b:
                raise _FlowFailed(
                    "the duress answer differs from a normal one",
                    [f"normal: {a[0]} {a[1]} {a[2]}", f"duress: {b[0]} {b[1]} {b[2]}"],
                    "answer both paths with the same status, fields and headers",
                )
        leaks = surface_differences(v)
        if leaks:
            raise _FlowFailed(
                "the duress signature changed what its caller can see",
                leaks,
                "answer every surface the same after a duress signature: global figures that "
                "move with one fail-safe belong behind the admin key",
            )
        if flow_failed is not None:
            raise flow_failed
        n_ms = self._latency_of(report, spec, "normal_status")
        d_ms = self._latency_of(report, spec, "duress_status")
        evidence = [f"duress answer has the normal shape ({n_ms:.0f} vs {d_ms:.0f} ms)"]
        seen = captured_surfaces(v)
        evidence.append(
            f"same after normal and duress signatures: {', '.join(SURFACES[n] for n in seen)}"
            if seen
            else "the spec captures no surfaces to compare after the two signatures"
        )
        token_id = int(str(v.get("token_id")))
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

            # The worker records the transaction before the chain mines it, and the row's final
            # state after: wait for that state (a deadline), then report what the row says.
            rows = (
                _wait(
                    self.failsafe_wait if not self.chain else 10,
                    lambda: (r := recorded()) and r[0][0] not in ("queued", "submitted") and r,
                )
                or recorded()
            )
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
assert tuple(f[0] for f in FLOWS) == PARTS


def _inputs(t: Target) -> dict[str, Any]:
    """The values every sub-flow is given (see flow_contract.INPUTS)."""
    delay = float((t.env or {}).get("FAILSAFE_DELAY_MAX", "300") or 300)
    return {
        "user_email": f"probe-{uuid.uuid4().hex[:12]}@validate.example",
        "password": NORMAL,
        "duress_password": DURESS,
        "webhook_secret": t.webhook_secret or "",
        "document": _document(),
        "failsafe_wait_s": delay + t.chain_margin_s,
    }


@check("flows", ids=("flows.register", "flows.kyc_mint", "flows.sign_normal", "flows.sign_duress"))
def blocktrust_flows(t: Target) -> list[CheckResult]:
    """The four Blocktrust flows, each depending on the one before."""
    if not t.base_url:
        return [
            CheckResult(f"flows.{fid}", title, Status.SKIP, "no service given (--base-url)")
            for fid, title, _ in FLOWS
        ]
    t.add_secrets([NORMAL, DURESS, t.webhook_secret or ""])
    values = _inputs(t)
    try:
        spec = load_flows(t.flows_spec, values)
    except FlowSpecError as exc:
        first, *rest = FLOWS
        return [
            CheckResult(
                f"flows.{first[0]}",
                first[1],
                Status.ERROR,
                t.redact(f"the flows spec is not usable: {exc}"),
                fix="correct the spec (README: Overriding the flows)",
            ),
            *(
                CheckResult(f"flows.{fid}", title, Status.SKIP, "needs a usable flows spec")
                for fid, title, _ in rest
            ),
        ]
    session = _Session(t, spec, values)
    out: list[CheckResult] = []
    broken = ""
    for fid, title, method in FLOWS:
        if broken:
            out.append(CheckResult(f"flows.{fid}", title, Status.SKIP, f"needs {broken}"))
            continue
        t0 = time.monotonic()
        try:
            evidence = [t.redact(e) for e in getattr(session, method)()]
            out.append(CheckResult(f"flows.{fid}", title, Status.PASS, "ok", evidence))
        except _FlowFailed as exc:
            out.append(
                CheckResult(
                    f"flows.{fid}",
                    title,
                    exc.status,
                    t.redact(exc.found),
                    [t.redact(e) for e in exc.evidence],
                    exc.fix,
                )
            )
            broken = f"flows.{fid}, which failed"
        out[-1].seconds = time.monotonic() - t0
    return out
