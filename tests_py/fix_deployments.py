"""Three small deployments of our own making that do NOT look like the reference service, for the
profile tests: each runs the Blocktrust flows (two passwords, KYC approval, a normal and a duress
signature whose fail-safe cancels the identity after a delay) with its own framework, paths, token
fields, tables and migrations, plus a listener and a monitor worker writing their own tables.

- ``notary``: Flask (WSGI, werkzeug), Blocktrust v1.4-shaped: SQL files applied by hand, a monitor
  that creates its own ``metrics``/``alerts`` tables, the token in ``jwt``, a Sumsub-signed webhook.
- ``vault``: FastAPI, Alembic migrations, OAuth2 form login at ``/token``, a GitHub-style
  ``X-Hub-Signature-256`` webhook, a Tr4ction-style template upload.
- ``keysvc``: a bare ASGI callable under uvicorn, no migrations (it creates its tables), an
  ``X-API-Key`` admin route, the token at ``/session/token``, Prometheus ``/metrics``, a login
  rate limit, identities that read ``ok``/``revoked``.

``faults`` switch a deployment's defects on: ``unprotected`` (a protected route lets a forged or
missing credential through), ``duress_noop`` (a duress signature queues a fail-safe that never
runs), ``stale_listener`` (the listener stopped an hour ago), ``no_monitor`` (no monitor runs).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import re
import secrets
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from fix_asgi import serve_asgi
from fix_wsgi import serve_wsgi
from flask import Flask, jsonify, request

HERE = Path(__file__).resolve().parent / "deployments"
FAILSAFE_DELAY_S = 0.3
WORKER_PERIOD_S = 0.2


def _hash(password: str) -> str:
    salt = secrets.token_hex(8)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 1000).hex()
    return f"pbkdf2_sha256${salt}${digest}"


def _verify(password: str, stored: str) -> bool:
    _, salt, digest = stored.split("$")
    got = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 1000).hex()
    return hmac.compare_digest(got, digest)


@dataclass
class Sql:
    """One deployment's statements (psycopg ``%s`` parameters)."""

    register: str  # (email, pw_hash, duress_hash, wallet) -> id
    user: str  # (email) -> id, pw_hash, duress_hash
    approve: str  # (user_id, number)
    identity: str  # (user_id) -> state, number
    cancel: str  # (user_id)
    sign: str  # (user_id, sha256) -> id
    signature: str  # (id) -> state
    event: str  # (user_id) -> id
    event_done: str  # (id)
    listener_init: str  # ()
    listener_beat: str  # ()
    monitor_beat: str  # ()
    monitor_init: str = ""  # () a monitor that creates its own tables
    active: str = "active"
    cancelled: str = "cancelled"


@dataclass
class Domain:
    """The behaviour the three deployments share; their SQL, paths and shapes differ."""

    dsn: str
    sql: Sql
    faults: set[str] = field(default_factory=set)
    tokens: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def db(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def register(self, email: str, password: str, duress: str) -> tuple[int, str]:
        wallet = "0x" + secrets.token_hex(20)
        hashes = (_hash(password), _hash(duress))
        uid = int(self.db(self.sql.register, (email, *hashes, wallet))[0][0])
        self._by_id[uid] = hashes
        return uid, wallet

    def login(self, email: str, password: str) -> str | None:
        rows = self.db(self.sql.user, (email,))
        if not rows or not _verify(password, rows[0][1]):
            return None
        token = secrets.token_urlsafe(24)
        self.tokens[token] = int(rows[0][0])
        return token

    def user_of(self, authorization: str | None, *, lenient: bool = False) -> int | None:
        token = (authorization or "").removeprefix("Bearer ").strip()
        if lenient and "unprotected" in self.faults:
            return self.tokens.get(token, 0)  # the defect: anything goes
        return self.tokens.get(token)

    def approve(self, user_id: int) -> None:
        self.db(self.sql.approve, (user_id, 1000 + user_id))

    def identity(self, user_id: int) -> tuple[str, int | None]:
        rows = self.db(self.sql.identity, (user_id,))
        return (str(rows[0][0]), rows[0][1]) if rows else ("none", None)

    def sign(self, user_id: int, password: str, document: bytes) -> tuple[int, str] | None:
        stored = self._by_id.get(user_id)
        if stored is None:
            return None
        normal, duress = _verify(password, stored[0]), _verify(password, stored[1])
        if not normal and not duress:
            return None
        sha = hashlib.sha256(document).hexdigest()
        sig = int(self.db(self.sql.sign, (user_id, sha))[0][0])
        if duress:  # answer as usual; the fail-safe runs later, out of band
            event = int(self.db(self.sql.event, (user_id,))[0][0])
            if "duress_noop" not in self.faults:
                timer = threading.Timer(FAILSAFE_DELAY_S, self._failsafe, (user_id, event))
                timer.daemon = True
                timer.start()
        return sig, sha

    def _failsafe(self, user_id: int, event: int) -> None:
        self.db(self.sql.cancel, (user_id,))
        self.db(self.sql.event_done, (event,))

    def signature_state(self, sig: int) -> str:
        rows = self.db(self.sql.signature, (sig,))
        return str(rows[0][0]) if rows else "none"

    def start_workers(self) -> None:
        self.db(self.sql.listener_init)
        if "stale_listener" not in self.faults:
            self._loop(self.sql.listener_beat)
        if "no_monitor" not in self.faults:
            if self.sql.monitor_init:
                self.db(self.sql.monitor_init)
            self._loop(self.sql.monitor_beat)

    def _loop(self, sql: str) -> None:
        first = threading.Event()
        self._first_beats.append(first)

        def run() -> None:
            while True:
                with contextlib.suppress(psycopg.Error):
                    self.db(sql)
                    first.set()
                if self._stop.wait(WORKER_PERIOD_S):
                    return

        t = threading.Thread(target=run, daemon=True)
        t.start()
        self._threads.append(t)

    def wait_workers(self, timeout: float = 10.0) -> None:
        """Returns once every started worker has written once (AssertionError at the deadline)."""
        for first in self._first_beats:
            assert first.wait(timeout), "a worker did not write within the deadline"

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)

    def __post_init__(self) -> None:
        self._by_id: dict[int, tuple[str, str]] = {}
        self._first_beats: list[threading.Event] = []


def _signed(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------------------------
# notary: Flask, SQL files applied by hand, v1.4-shaped


NOTARY_SQL = Sql(
    register="INSERT INTO accounts (mail, pw_hash, coercion_hash, wallet) VALUES (%s, %s, %s, %s)"
    " RETURNING id",
    user="SELECT id, pw_hash, coercion_hash FROM accounts WHERE mail = %s",
    approve="INSERT INTO identities (account_id, state, number) VALUES (%s, 'active', %s)",
    identity="SELECT state, number FROM identities WHERE account_id = %s",
    cancel="UPDATE identities SET state = 'cancelled' WHERE account_id = %s",
    sign="INSERT INTO signatures (account_id, digest) VALUES (%s, %s) RETURNING id",
    signature="SELECT state FROM signatures WHERE id = %s",
    event="INSERT INTO failsafe_log (account_id) VALUES (%s) RETURNING id",
    event_done="UPDATE failsafe_log SET state = 'executed' WHERE id = %s",
    listener_init="INSERT INTO listener_state VALUES ('polygon', 100, now() - interval '1 hour')",
    listener_beat="UPDATE listener_state SET last_processed_block = last_processed_block + 1,"
    " updated_at = now()",
    monitor_init="CREATE TABLE IF NOT EXISTS metrics (recorded_at timestamptz NOT NULL,"
    " name text NOT NULL, value double precision NOT NULL);"
    " CREATE TABLE IF NOT EXISTS alerts (raised_at timestamptz NOT NULL, message text NOT NULL)",
    monitor_beat="INSERT INTO metrics VALUES (now(), 'uptime', 1)",
)


def notary_app(dom: Domain, kyc_secret: str) -> Any:
    """The notary service (Flask)."""
    app = Flask("notary")

    def auth(lenient: bool = False) -> int | None:
        return dom.user_of(request.headers.get("Authorization"), lenient=lenient)

    @app.get("/api/health")
    def health() -> Any:
        return jsonify(healthy=True, service="notary")

    @app.post("/api/v2/accounts")
    def accounts() -> Any:
        b = request.get_json(force=True)
        uid, wallet = dom.register(b["mail"], b["secret"], b["coercion_secret"])
        return jsonify(account_id=uid, wallet=wallet), 201

    @app.post("/api/v2/session")
    def session() -> Any:
        b = request.get_json(force=True)
        token = dom.login(b.get("mail", ""), b.get("secret", ""))
        return (jsonify(jwt=token), 200) if token else (jsonify(error="denied"), 401)

    @app.post("/api/v2/kyc/callback")
    def kyc() -> Any:
        raw = request.get_data()
        sig = request.headers.get("X-Payload-Digest", "")
        alg = request.headers.get("X-Payload-Digest-Alg", "")
        if alg != "HMAC_SHA256_HEX" or not hmac.compare_digest(sig, _signed(kyc_secret, raw)):
            return jsonify(error="bad signature"), 401
        b = json.loads(raw)
        if b["reviewResult"]["reviewAnswer"] == "GREEN":
            dom.approve(int(b["applicantId"]))
        return jsonify(ok=True)

    @app.get("/api/v2/identity")
    def identity() -> Any:
        uid = auth()
        if uid is None:
            return jsonify(error="unauthorized"), 401
        state, number = dom.identity(uid)
        return jsonify(identity={"state": state, "number": number})

    @app.post("/api/v2/signatures")
    def sign() -> Any:
        uid = auth()
        if uid is None:
            return jsonify(error="unauthorized"), 401
        b = request.get_json(force=True)
        got = dom.sign(uid, b["secret"], b["document"].encode())
        if got is None:
            return jsonify(error="wrong secret"), 403
        return jsonify(receipt=got[0], digest=got[1]), 201

    @app.get("/api/v2/signatures/<int:sig>")
    def signature(sig: int) -> Any:
        if auth() is None:
            return jsonify(error="unauthorized"), 401
        return jsonify(state=dom.signature_state(sig))

    @app.get("/api/failsafe/status")
    def failsafe_status() -> Any:
        if auth() is None:
            return jsonify(error="unauthorized"), 401
        return jsonify(armed=True)

    @app.get("/api/explorer/events")
    def events() -> Any:
        if auth(lenient=True) is None:
            return jsonify(error="unauthorized"), 401
        return jsonify(events=[])

    return app


# --------------------------------------------------------------------------------------------
# vault: FastAPI + Alembic


VAULT_SQL = Sql(
    register="INSERT INTO members (email, pw, duress_pw, wallet) VALUES (%s, %s, %s, %s)"
    " RETURNING id",
    user="SELECT id, pw, duress_pw FROM members WHERE email = %s",
    approve="INSERT INTO badges (member_id, status, token_no) VALUES (%s, 'active', %s)",
    identity="SELECT status, token_no FROM badges WHERE member_id = %s",
    cancel="UPDATE badges SET status = 'cancelled' WHERE member_id = %s",
    sign="INSERT INTO papers (member_id, sha256) VALUES (%s, %s) RETURNING id",
    signature="SELECT state FROM papers WHERE id = %s",
    event="INSERT INTO emergency_events (member_id) VALUES (%s) RETURNING id",
    event_done="UPDATE emergency_events SET phase = 'done' WHERE id = %s",
    listener_init="INSERT INTO chain_cursor VALUES (1, 5000, now() - interval '1 hour')",
    listener_beat="UPDATE chain_cursor SET last_block = last_block + 1, moved_at = now()",
    monitor_beat="INSERT INTO monitor_pings VALUES (now(), true)",
)


def vault_app(dom: Domain, hook_secret: str) -> Any:
    """The vault service (FastAPI)."""
    app = FastAPI(title="vault", version="2.0.0")
    oauth = OAuth2PasswordBearer(tokenUrl="token")

    def member(token: str = Depends(oauth)) -> int:
        uid = dom.user_of(f"Bearer {token}")
        if uid is None:
            raise HTTPException(401, "unauthorized")
        return uid

    def member_lenient(token: str = Depends(oauth)) -> int:
        uid = dom.user_of(f"Bearer {token}", lenient=True)
        if uid is None:
            raise HTTPException(401, "unauthorized")
        return uid

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": "2.0.0"}

    @app.get("/ready")
    def ready() -> dict[str, str]:
        dom.db("SELECT 1")
        return {"database": "ok"}

    @app.post("/members", status_code=201)
    def members(body: dict[str, str]) -> dict[str, Any]:
        uid, wallet = dom.register(body["email"], body["password"], body["duress_password"])
        return {"member": {"id": uid, "wallet": wallet}}

    @app.post("/token")
    def token(form: OAuth2PasswordRequestForm = Depends()) -> dict[str, str]:  # noqa: B008
        got = dom.login(form.username, form.password)
        if got is None:
            raise HTTPException(401, "bad credentials")
        return {"access_token": got, "token_type": "bearer"}

    @app.post("/webhooks/kyc")
    async def kyc(request: Request) -> JSONResponse:
        raw = await request.body()
        want = "sha256=" + _signed(hook_secret, raw)
        if not hmac.compare_digest(request.headers.get("X-Hub-Signature-256", ""), want):
            return JSONResponse({"error": "bad signature"}, 401)
        b = json.loads(raw)
        if b.get("verdict") == "approved":
            dom.approve(int(b["member_id"]))
        return JSONResponse({"ok": True})

    @app.get("/me/badge")
    def badge(uid: int = Depends(member)) -> dict[str, Any]:
        status, token_no = dom.identity(uid)
        return {"status": status, "token_no": token_no}

    @app.post("/papers", status_code=201)
    async def papers(
        password: str = Form(...),
        file: UploadFile = File(...),  # noqa: B008
        uid: int = Depends(member),
    ) -> dict[str, Any]:
        got = dom.sign(uid, password, await file.read())
        if got is None:
            raise HTTPException(403, "wrong password")
        return {"paper_id": got[0], "sha256": got[1]}

    @app.get("/papers/{paper_id}")
    def paper(paper_id: int, uid: int = Depends(member)) -> dict[str, str]:
        return {"state": dom.signature_state(paper_id)}

    @app.get("/admin/stats")
    def stats(uid: int = Depends(member_lenient)) -> dict[str, int]:
        return {"members": int(dom.db("SELECT count(*) FROM members")[0][0])}

    @app.post("/admin/templates/upload")
    async def upload(
        cycle: str,
        file: UploadFile = File(...),  # noqa: B008
        uid: int = Depends(member),
    ) -> dict[str, Any]:
        data = await file.read()
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                fields = [x for x in z.read("fields.txt").decode().splitlines() if x.strip()]
        except (zipfile.BadZipFile, KeyError):
            return {"validation_report": {"valid": False}, "fields_count": 0}
        return {
            "template_id": 1,
            "template_key": f"{cycle}-template",
            "file_hash_sha256": hashlib.sha256(data).hexdigest(),
            "validation_report": {"valid": True},
            "fields_count": len(fields),
        }

    return app


def xlsx_template(path: Path, fields: int = 3) -> Path:
    """A small zip shaped like the templates vault accepts (fields.txt inside)."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("fields.txt", "\n".join(f"field_{i}" for i in range(fields)))
    return path


# --------------------------------------------------------------------------------------------
# keysvc: a bare ASGI callable, no migrations


KEYSVC_SCHEMA = """
CREATE TABLE IF NOT EXISTS principals (id serial PRIMARY KEY, email text UNIQUE NOT NULL,
    pass_hash text NOT NULL, panic_hash text NOT NULL, address text NOT NULL);
CREATE TABLE IF NOT EXISTS ident (principal int PRIMARY KEY REFERENCES principals,
    status text NOT NULL, serial int NOT NULL);
CREATE TABLE IF NOT EXISTS attestations (id serial PRIMARY KEY, principal int NOT NULL,
    sha256 text NOT NULL);
CREATE TABLE IF NOT EXISTS duress_events (id serial PRIMARY KEY, principal int NOT NULL,
    outcome text NOT NULL DEFAULT 'waiting', created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS listener_progress (block bigint NOT NULL, seen_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS heartbeat (instance text NOT NULL, at timestamptz NOT NULL);
"""

KEYSVC_SQL = Sql(
    register="INSERT INTO principals (email, pass_hash, panic_hash, address)"
    " VALUES (%s, %s, %s, %s) RETURNING id",
    user="SELECT id, pass_hash, panic_hash FROM principals WHERE email = %s",
    approve="INSERT INTO ident VALUES (%s, 'ok', %s)",
    identity="SELECT status, serial FROM ident WHERE principal = %s",
    cancel="UPDATE ident SET status = 'revoked' WHERE principal = %s",
    sign="INSERT INTO attestations (principal, sha256) VALUES (%s, %s) RETURNING id",
    signature="SELECT 'done' FROM attestations WHERE id = %s",
    event="INSERT INTO duress_events (principal) VALUES (%s) RETURNING id",
    event_done="UPDATE duress_events SET outcome = 'revoked' WHERE id = %s",
    listener_init="INSERT INTO listener_progress VALUES (77, now() - interval '1 hour')",
    listener_beat="INSERT INTO listener_progress SELECT max(block) + 1, now()"
    " FROM listener_progress",
    monitor_beat="INSERT INTO heartbeat VALUES ('keysvc-monitor', now())",
    active="ok",
    cancelled="revoked",
)


def keysvc_app(dom: Domain, admin_key: str, verify_secret: str) -> Callable[..., Any]:
    """The keysvc service: a bare ASGI callable, routes matched by hand."""
    requests = {"n": 0}
    failed_logins: dict[str, list[float]] = {}

    async def send_json(send: Any, status: int, doc: Any, headers: tuple = ()) -> None:
        body = json.dumps(doc).encode()
        hdrs = [(b"content-type", b"application/json"), *headers]
        await send({"type": "http.response.start", "status": status, "headers": hdrs})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        requests["n"] += 1
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        uid = dom.user_of(headers.get("authorization"))
        if (method, path) == ("GET", "/healthz"):
            return await send_json(send, 200, {"alive": True})
        if (method, path) == ("GET", "/readyz"):
            dom.db("SELECT 1")
            return await send_json(send, 200, {"db": True})
        if (method, path) == ("GET", "/metrics"):
            text = (
                "# HELP keysvc_requests_total Requests served.\n"
                "# TYPE keysvc_requests_total counter\n"
                f'keysvc_requests_total{{service="keysvc"}} {requests["n"]}\n'
            ).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/plain; version=0.0.4")]})  # fmt: skip
            return await send({"type": "http.response.body", "body": text})
        if (method, path) == ("POST", "/v1/principals"):
            b = json.loads(body)
            pid, address = dom.register(b["email"], b["pass"], b["panic_pass"])
            return await send_json(send, 201, {"principal": pid, "address": address})
        if (method, path) == ("POST", "/v1/sessions"):
            b = json.loads(body or b"{}")
            email = str(b.get("email", ""))
            now = time.monotonic()
            recent = [t for t in failed_logins.get(email, []) if now - t < 60]
            if len(recent) >= 5:
                return await send_json(
                    send, 429, {"error": "slow down"}, ((b"retry-after", b"60"),)
                )
            token = dom.login(email, str(b.get("pass", "")))
            if token is None:
                failed_logins[email] = [*recent, now]
                return await send_json(send, 401, {"error": "denied"})
            return await send_json(send, 200, {"session": {"token": token}})
        if (method, path) == ("POST", "/v1/hooks/verification"):
            if not hmac.compare_digest(
                headers.get("x-signature", ""), _signed(verify_secret, body)
            ):
                return await send_json(send, 401, {"error": "bad signature"})
            b = json.loads(body)
            if b.get("result") == "verified":
                dom.approve(int(b["principal"]))
            return await send_json(send, 200, {"ok": True})
        if (method, path) == ("GET", "/v1/admin/stats"):
            key_ok = hmac.compare_digest(headers.get("x-api-key", ""), admin_key)
            if not key_ok and "unprotected" not in dom.faults:
                return await send_json(send, 401, {"error": "api key required"})
            return await send_json(send, 200, {"principals": 1})
        if uid is None and path.startswith("/v1/"):
            return await send_json(send, 401, {"error": "unauthorized"})
        assert uid is not None
        if (method, path) == ("GET", "/v1/ident"):
            status, serial = dom.identity(uid)
            return await send_json(send, 200, {"ident": {"status": status, "serial": serial}})
        if (method, path) == ("POST", "/v1/attestations"):
            b = json.loads(body)
            got = dom.sign(uid, b["pass"], b["text"].encode())
            if got is None:
                return await send_json(send, 403, {"error": "wrong pass"})
            return await send_json(send, 201, {"attestation": got[0], "sha256": got[1]})
        m = re.fullmatch(r"/v1/attestations/(\d+)", path)
        if method == "GET" and m:
            return await send_json(
                send, 200, {"done": dom.signature_state(int(m.group(1))) == "done"}
            )
        return await send_json(send, 404, {"error": "not found"})

    return app


# --------------------------------------------------------------------------------------------
# Starting them


@dataclass
class Deployment:
    """A running deployment: its URL, database, profile and .env file, and its domain core."""

    name: str
    base_url: str
    dsn: str
    profile: Path
    env_file: Path
    domain: Domain


def _env_file(tmp: Path, values: dict[str, str]) -> Path:
    f = tmp / ".env"
    f.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return f


def _apply_sql_files(dsn: str, directory: Path) -> None:
    """What ``for f in sql/*.sql; do psql -f $f; done`` does."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for f in sorted(directory.glob("*.sql")):
            conn.execute(f.read_text())


def _alembic_upgrade(dsn: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE / "vault" / "alembic"))
    cfg.set_main_option("sqlalchemy.url", dsn.replace("postgresql://", "postgresql+psycopg://", 1))
    command.upgrade(cfg, "head")


@contextlib.contextmanager
def start(name: str, dsn: str, tmp: Path, faults: set[str] = frozenset()) -> Iterator[Deployment]:
    """Starts deployment ``name`` (notary, vault, keysvc) on the empty database ``dsn``."""
    secret = "whsec-" + secrets.token_hex(16)
    env = {"DATABASE_URL": dsn, "FAILSAFE_DELAY_MAX": "1", "DEBUG_MODE": "false"}
    if name == "notary":
        _apply_sql_files(dsn, HERE / "notary" / "sql")
        dom = Domain(dsn, NOTARY_SQL, set(faults))
        env |= {"JWT_SECRET": secrets.token_hex(24), "SUMSUB_SECRET_KEY": secret,
                "SUMSUB_APP_TOKEN": "sbx:" + secrets.token_hex(12)}  # fmt: skip
        serve: Any = serve_wsgi(notary_app(dom, secret))
    elif name == "vault":
        _alembic_upgrade(dsn)
        dom = Domain(dsn, VAULT_SQL, set(faults))
        env |= {"JWT_SECRET": secrets.token_hex(24), "KYC_WEBHOOK_SECRET": secret}
        serve = serve_asgi(vault_app(dom, secret))
        xlsx_template(tmp / "probe_template.xlsx")
    else:
        dom = Domain(dsn, KEYSVC_SQL, set(faults))
        dom.db(KEYSVC_SCHEMA)
        admin = "ks_" + secrets.token_hex(20)
        env |= {"API_KEY_SALT": secrets.token_hex(20), "ADMIN_API_KEY": admin,
                "VERIFY_SECRET": secret}  # fmt: skip
        serve = serve_asgi(keysvc_app(dom, admin, secret))
    dom.start_workers()
    dom.wait_workers()
    env_file = _env_file(tmp, env)
    profile = tmp / f"{name}.profile.yaml"
    text = (HERE / name / "profile.yaml").read_text().replace("@HERE@", str(HERE / name))
    profile.write_text(text)
    try:
        with serve as url:
            yield Deployment(name, url, dsn, profile, env_file, dom)
    finally:
        dom.stop()


def env_of(dep: Deployment) -> dict[str, str]:
    """The deployment's .env as a dict."""
    return dict(line.split("=", 1) for line in dep.env_file.read_text().splitlines() if line)


__all__ = ["HERE", "Deployment", "env_of", "serve_asgi", "start", "xlsx_template"]
