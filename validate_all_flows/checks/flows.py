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
from blocktrust_native.flows import FlowSpec, Report, run_flow, start_flow
from blocktrust_native.jsonrpc import JsonRpcClient
from validate_all_flows.check_model import CheckResult, Status, check
from validate_all_flows.duress_surfaces import SURFACES, captured_surfaces, surface_differences
from validate_all_flows.flow_contract import PARTS, load_flows
from validate_all_flows.profile import ContractCall
from validate_all_flows.target import Target

NORMAL, DURESS = "Normal-pass-" + uuid.uuid4().hex[:8], "Duress-pass-" + uuid.uuid4().hex[:8]

#: Response headers that may differ between any two answers.
_VOLATILE_HEADERS = {"date", "content-length", "x-request-id"}

#: For the built-in step names: what a failure means and how to fix it ({s}: seconds waited).
#: A hint applies only to an HTTP answer that can mean it (see _hint): a reset or a 5xx says
#: nothing about the webhook secret or the chain worker.
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


#: The statuses of the rows a step waits on after which nothing more will happen.
_TERMINAL = ("failed",)

#: The proof row the reference schema keeps for a signature (status, last_error): the
#: sign_normal wait watches it when the profile's tables have ``proofs``.
_PROOF_SQL = (
    "SELECT p.status, p.last_error FROM proofs p JOIN signatures s ON s.id = p.signature_id "
    "JOIN users u ON u.id = s.user_id WHERE lower(u.email) = lower($1) ORDER BY p.id DESC LIMIT 1"
)


def _hint(step: str, status: int) -> tuple[str, str]:
    """The (found, fix) hint for a failing built-in step, when the answer can mean it."""
    if step == "kyc_mint/webhook" and status not in (400, 401, 403):
        return "", ""
    if step in ("kyc_mint/minted", "sign_normal/confirmed") and (status == 0 or status >= 500):
        return "", ""
    return _HINTS.get(step, ("", ""))


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
    """Read-only calls to the profile's view functions over the native JSON-RPC client (no key
    and no web3 needed: each takes one static argument and answers static words)."""

    def __init__(self, t: Target) -> None:
        assert t.rpc_url
        assert t.profile.chain
        self.rpc = JsonRpcClient(t.rpc_url, request_timeout=10.0)
        self.cfg = t.contracts_config()
        self.identity = t.profile.chain.identity
        self.proof = t.profile.chain.proof

    def _word(self, c: ContractCall, arg: int) -> int:
        to = self.cfg.entry(c.contract).address
        data = "0x" + keccak256(c.function.encode())[:4].hex() + f"{arg:064x}"
        answer = str(self.rpc.call("eth_call", [{"to": to, "data": data}, "latest"]))[2:]
        return int(answer[64 * c.word : 64 * (c.word + 1)] or "0", 16)

    @staticmethod
    def describe(c: ContractCall) -> str:
        """``IdentityNFT.statusOf``: the contract and function a call reads."""
        return f"{c.contract}.{c.function.split('(')[0]}"

    def identity_is(self, token_id: int, state: str) -> bool:
        """Whether the identity view function answers the profile's value for ``state``."""
        assert self.identity
        return self._word(self.identity, token_id) == self.identity.values.get(state, -1)

    def proof_signer(self, doc_hex: str) -> str:
        """The signer the proof view function names for a document hash, lower-case (the zero
        address if none)."""
        assert self.proof
        return "0x" + f"{self._word(self.proof, int(doc_hex, 16)):040x}"[-40:]


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
        chain = t.profile.chain
        self.chain = _Chain(t) if chain is not None and not t.contracts_missing() else None
        self.evidence = t.profile.flows.evidence
        self.failsafe_wait = float(values["failsafe_wait_s"])

    def run(self, part: str) -> tuple[Report, FlowSpec]:
        """Runs sub-flow `part` once; its captures join ``values`` even when it fails. While it
        polls, the state it waits on is watched (see _watch): a terminal one (``failed``) stops
        the run at once and raises _FlowFailed quoting the reason read."""
        spec = self.spec.subflow(part, vars=self.values)
        assert self.t.base_url
        run = start_flow(spec, self.t.base_url, iterations=1, connect_timeout=5, request_timeout=10)
        ended: list[tuple[str, str | None]] = []
        watch = self._watch(part)

        def terminal(_progress: dict[str, Any]) -> bool:
            nonlocal watch
            if watch is None:
                return True
            try:
                state = watch[1]()
            except Exception:  # a source this deployment cannot answer: stop watching
                watch = None
                return True
            if state is not None and state[0] in _TERMINAL:
                ended.append(state)
                return False  # cancels the run
            return True

        report = run.wait(terminal, 0.5)
        self.values.update(report.captures)
        if ended and watch is not None:
            state, reason = ended[0]
            raise _FlowFailed(
                f"the {watch[0]} is {state}"
                + (f": {reason}" if reason else " (no reason recorded)"),
                [f"{watch[0]} read {state} after {report.elapsed_s:.1f} s; stopped waiting"],
                "see the chain worker's log for the failing call; fix its cause (funds, "
                "contract address, RPC endpoint) and retry the job",
            )
        return report, spec

    def _watch(self, part: str) -> tuple[str, Callable[[], tuple[str, str | None] | None]] | None:
        """(what, read) for the state sub-flow ``part`` waits on, read while it polls: the
        profile's identity_sql (or, without a database, its API path) for the mint, the
        reference schema's proof row for a signature. ``read`` gives (state, reason) or None."""
        ev, db = self.evidence, bool(self.t.database_url)

        def by_sql(sql: str) -> Callable[[], tuple[str, str | None] | None]:
            def read() -> tuple[str, str | None] | None:
                rows = self.t.read_only(sql, (self.email,))
                row = rows[0] if rows and rows[0] else None
                if row is None:
                    return None
                return str(row[0]), (str(row[1]) if len(row) > 1 and row[1] else None)

            return read

        if part == "kyc_mint" and db and ev.identity_sql:
            return "identity NFT mint", by_sql(ev.identity_sql)
        if part == "kyc_mint" and ev.api_path and ev.api_pointer and self.values.get("token"):
            from validate_all_flows.checks.http import json_at
            from validate_all_flows.httpcall import call

            url = str(self.t.base_url).rstrip("/") + ev.api_path
            auth = {"Authorization": f"Bearer {self.values['token']}"}
            pointer = ev.api_pointer

            def by_api() -> tuple[str, str | None] | None:
                r = call("GET", url, headers=auth, timeout=5)
                state = json_at(r.json(), pointer) if r.status == 200 else None
                return (str(state), None) if state is not None else None

            return "identity NFT mint", by_api
        if part == "sign_normal" and db and "proofs" in self.t.profile.tables.columns:
            return "proof", by_sql(_PROOF_SQL)
        return None

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
        hint, hint_fix = _hint(f.step, f.status)
        waited = re.search(r"after \d+ attempts in ([0-9.]+) s\)$", f.reason)
        found = hint.format(s=f"{float(waited.group(1)):.0f}") if hint and waited else detail
        evidence = [detail] if found != detail else []
        fix = hint_fix or f"see the service log for {request}"
        if f.status == 0:
            # No answer at all (reset, timeout, refused): nothing about the step itself is known.
            fix = (
                f"the service did not answer {request}: check that it is up and what is in "
                "front of it (proxy, load balancer), then its log"
            )
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
        sql = self.evidence.passwords_sql
        if self.t.database_url and sql:
            rows = self.t.read_only(sql, (self.email,))
            if len(rows) != 1 or not rows[0] or not all(v is True for v in rows[0]):
                raise _FlowFailed(
                    "the stored password hashes are not as the profile expects",
                    [f"flows.evidence.passwords_sql answered {rows}"],
                    "store both the normal and the duress password hash (Argon2id)",
                )
            evidence.append("database: normal and duress password hashes stored as expected")
        return evidence

    def kyc(self) -> list[str]:
        if not self.values.get("webhook_secret"):
            raise _FlowFailed("no webhook secret (SUMSUB_SECRET_KEY in --env-file)", fix="give it")
        report, spec = self.run("kyc_mint")
        self.expect(report, spec)
        token_id = self.values.get("token_id")
        evidence = [f"API: identity NFT {token_id} active"]
        active = self.evidence.active
        if self.t.database_url and self.evidence.identity_sql:
            rows = self.t.read_only(self.evidence.identity_sql, (self.email,))
            if rows != [(active,)]:
                raise _FlowFailed(f"database does not show the NFT {active}", [str(rows)])
            evidence.append(f"database: identity row {active}")
        if self.chain and self.chain.identity:
            if not self.chain.identity_is(int(str(token_id)), "active"):
                raise _FlowFailed("the NFT is not active on chain")
            evidence.append(f"chain: {self.chain.describe(self.chain.identity)} = Active")
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
        if self.chain and self.chain.proof:
            signer = self.chain.proof_signer(doc)
            if signer != str(self.values.get("wallet_address", "")).lower():
                raise _FlowFailed(
                    "ProofRegistry does not hold the proof for the user's wallet",
                    [f"signer on chain: {signer}"],
                )
            evidence.append(
                f"chain: {self.chain.describe(self.chain.proof)} names the user's wallet"
            )
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
        ev = self.evidence
        wait = self.failsafe_wait
        seen_cancelled = False
        event_sql = ev.event_sql if self.t.database_url else None

        def event() -> tuple[str, str | None] | None:
            """The duress signature's fail-safe event row: (state, reason when the profile's
            event_sql selects one as its second column), the newest first."""
            if event_sql is None:
                return None
            rows = self.t.read_only(event_sql, (self.email,))
            if not rows or not rows[0]:
                return None
            row = rows[0]
            return str(row[0]), (str(row[1]) if len(row) > 1 and row[1] else None)

        def failed_event() -> None:
            """Raises _FlowFailed quoting the recorded reason once the event row is terminal."""
            row = event()
            if row and row[0] in (*_TERMINAL, "skipped"):
                raise _FlowFailed(
                    f"the fail-safe is {row[0]}"
                    + (f": {row[1]}" if row[1] else " (the database records no reason)"),
                    [
                        f"database: fail-safe event row {row[0]}"
                        + (f", last_error: {row[1]}" if row[1] else "")
                    ],
                    "see the chain worker's log; fix the cause (funds, the FailSafe address, "
                    "the RPC endpoint) and make sure the fail-safe is retried, never dropped",
                )

        if self.chain and self.chain.identity:
            chain, identity = self.chain, self.chain.identity

            def cancelled() -> bool:
                failed_event()  # a failed fail-safe ends the wait with its reason
                return chain.identity_is(token_id, "cancelled")

            if not _wait(wait, cancelled):
                row = event()
                last = f"database: fail-safe event row {row[0]}" if row else ""
                if row and row[1]:
                    last += f", last_error: {row[1]}"
                raise _FlowFailed(
                    f"the NFT was not cancelled on chain within "
                    f"{wait:.0f} s of the duress signature",
                    [last] if last else [],
                    fix="check that the duress path queues the fail-safe "
                    "and that the worker runs it",
                )
            evidence.append(f"chain: {chain.describe(identity)} = Cancelled")
            seen_cancelled, wait = True, 10.0
        else:
            # No chain to ask: the cancellation must show through the API or the database
            # before the fail-safe deadline; a queued request alone proves nothing.
            seen_cancelled = self._cancelled_off_chain(wait, evidence, failed_event)
            wait = 10.0
        if event_sql is not None:

            def recorded() -> Any:
                failed_event()
                row = event()
                return row if row and (not ev.event_done or row[0] in ev.event_done) else None

            row = _wait(wait, recorded)
            if not row:
                done = f" in a final state ({', '.join(ev.event_done)})" if ev.event_done else ""
                raise _FlowFailed(
                    f"no fail-safe event row{done} for the duress signature",
                    fix="the duress path must record a fail-safe event",
                )
            evidence.append(f"database: fail-safe event row ({row[0]})")
        if not seen_cancelled:
            raise _FlowFailed(
                "the fail-safe could not be observed: no chain, no API path and no database "
                "query shows the identity's state",
                fix="give --rpc-url (and the contracts), or flows.evidence.api / identity_sql "
                "in the profile with --database-url",
                status=Status.ERROR,
            )
        return evidence

    def _cancelled_off_chain(
        self, wait: float, evidence: list[str], failed: Callable[[], None] = lambda: None
    ) -> bool:
        """Polls the identity's state through the API and/or the database until it reads
        cancelled or the fail-safe deadline passes (FAIL); False when neither can be read."""
        ev = self.evidence
        token = self.values.get("token")
        base = str(self.t.base_url).rstrip("/")
        readers: list[tuple[str, Callable[[], Any]]] = []
        if ev.api_path and ev.api_pointer and token:
            from validate_all_flows.checks.http import json_at
            from validate_all_flows.httpcall import call

            path, pointer = ev.api_path, ev.api_pointer

            def via_api() -> Any:
                r = call("GET", base + path, headers={"Authorization": f"Bearer {token}"})
                return json_at(r.json(), pointer) if r.status == 200 else f"HTTP {r.status}"

            readers.append((f"API: GET {path} {pointer}", via_api))
        if self.t.database_url and ev.identity_sql:
            sql = ev.identity_sql

            def via_db() -> Any:
                rows = self.t.read_only(sql, (self.email,))
                return rows[0][0] if rows and rows[0] else None

            readers.append(("database: identity row", via_db))
        if not readers:
            return False
        last: dict[str, Any] = {}

        def cancelled() -> bool:
            failed()  # a failed fail-safe ends the wait with its reason
            for label, read in readers:
                last[label] = read()
            return all(value == ev.cancelled for value in last.values())

        if not _wait(wait, cancelled):
            raise _FlowFailed(
                f"the identity was not cancelled within {wait:.0f} s of the duress signature",
                [f"{label}: {value!r}" for label, value in last.items()],
                "check that the duress path queues the fail-safe and that the worker runs it",
            )
        evidence += [f"{label} = {ev.cancelled!r}" for label in last]
        return True


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


@check("flows")
def blocktrust_flows(t: Target) -> list[CheckResult]:
    """The four Blocktrust flows, each depending on the one before."""
    if not t.base_url or t.flows_spec is None:
        why = (
            "no service given (--base-url)"
            if not t.base_url
            else f"the profile ({t.profile.name}) declares no Blocktrust flows (flows.spec)"
        )
        return [CheckResult(f"flows.{fid}", title, Status.SKIP, why) for fid, title, _ in FLOWS]
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
            found = "; ".join(evidence)  # a PASS says what was seen, never just "ok"
            out.append(CheckResult(f"flows.{fid}", title, Status.PASS, found, evidence))
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


def _extra_spec(t: Target, name: str, body: dict[str, Any], values: dict[str, Any]) -> FlowSpec:
    """The profile's check ``name`` as a flow spec: the auth steps (capturing ``token``) first
    when the profile logs in that way, then the check's own steps."""
    steps = [*t.profile.auth_steps, *body["steps"]]
    return FlowSpec.from_dict(
        {"name": name, "vars": body["vars"], "steps": steps},
        base_dir=body["base_dir"],
        vars=values,
    )


@check("flows")
def profile_flows(t: Target) -> list[CheckResult]:
    """The profile's own named flow checks (``flows.checks``): requests and asserts only."""
    checks = t.profile.flows.checks
    if not checks:
        return []  # the profile declares none: nothing to report
    out = []
    values: dict[str, Any] = {
        "user_email": f"probe-{uuid.uuid4().hex[:12]}@validate.example",
        "password": NORMAL,
    }
    if t.profile.token_env:
        token = t.env_value(t.profile.token_env)
        if token:
            values["token"] = token
            t.add_secrets([token])
    t.add_secrets([NORMAL])
    for name, body in checks.items():
        cid, title = f"flows.{name}", str(body["title"])
        if not t.base_url:
            out.append(CheckResult(cid, title, Status.SKIP, "no service given (--base-url)"))
            continue
        if t.profile.token_env and "token" not in values:
            why = f"no token: {t.profile.token_env} is not set (auth.token_env)"
            out.append(CheckResult(cid, title, Status.SKIP, why))
            continue
        t0 = time.monotonic()
        try:
            spec = _extra_spec(t, name, body, values)
        except FlowSpecError as exc:
            out.append(CheckResult(cid, title, Status.ERROR, t.redact(str(exc))))
            continue
        report = run_flow(spec, t.base_url, iterations=1, connect_timeout=5, request_timeout=30)
        if report.failures or report.iterations != 1 or report.failed_iterations:
            f = report.failures[0] if report.failures else None
            found = f"step {f.step}: {f.reason}" if f else "the flow did not finish"
            head, _, tail = (f.excerpt if f else "").partition("\n\n")
            excerpt = " ".join(x for x in (head.splitlines()[0] if head else "", tail[:200]) if x)
            status = Status.ERROR if f is not None and f.status in (404, 405) else Status.FAIL
            if status is Status.ERROR:
                found = f"the profile names a path the service does not have ({found})"
            out.append(
                CheckResult(
                    cid,
                    title,
                    status,
                    t.redact(found),
                    [t.redact(excerpt)] if excerpt else [],
                    "see the service log for the failing step",
                )
            )
        else:
            seen = [
                f"{s.name}: " + ", ".join(f"{code}" for code in sorted(s.status_counts))
                for s in report.steps
            ]
            found = f"{len(seen)} step(s) answered as asserted ({'; '.join(seen)})"
            out.append(CheckResult(cid, title, Status.PASS, t.redact(found)))
        out[-1].seconds = time.monotonic() - t0
    return out
