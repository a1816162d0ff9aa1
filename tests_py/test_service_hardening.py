"""The reference service is safe to copy: login limits per address and per account, the client
address only from trusted proxies, bounded Argon2 work, bodies capped before they are read,
webhook digests that cannot crash it, hashes upgraded at login. Real PostgreSQL and real HTTP on
loopback (uvicorn), no chain."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fix_wait import wait_until

from blocktrust_native import passwords
from blocktrust_native.pool import Pool
from validate_all_flows.embedded.migrate import apply_migrations
from validate_all_flows.embedded.postgres import free_port
from validate_all_flows.embedded.service.app import Services, create_app
from validate_all_flows.embedded.service.settings import ServiceSettings

pytestmark = pytest.mark.pg

WEBHOOK_SECRET = "Zr8" + "q9w8e7r6" * 3


class Service:
    """The app on its own PostgreSQL database, served by uvicorn on a free loopback port."""

    def __init__(self, dsn: str, env: dict[str, str]) -> None:
        import uvicorn

        self.pool = Pool(dsn, min_size=1, max_size=8)
        apply_migrations(self.pool)
        self.settings = ServiceSettings.from_env(
            {
                "ENVIRONMENT": "test",
                "DATABASE_URL": dsn,
                "JWT_SECRET": "k3Jx9vQ2mZ7pL4tR8wY1nB6cF0hD5sGa",
                "SUMSUB_APP_TOKEN": "sbx:" + "a1b2c3d4" * 3,
                "SUMSUB_SECRET_KEY": WEBHOOK_SECRET,
                "API_KEY_SALT": "aG5sD0hFc6Bn1Yw8Rt4Lp7Zm2Qv9xJ3k",
                "PASSWORD_MEMORY_KIB": "1024",
                "PASSWORD_ITERATIONS": "1",
                **env,
            }
        )
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.app = app = create_app(Services(self.settings, self.pool))
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            proxy_headers=False,  # as the service runs it (see its __main__)
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(self._started, timeout=20, what="uvicorn to start")

    def _started(self) -> bool:
        if self.server.started:
            return True
        assert self.thread.is_alive(), "uvicorn exited"
        return False

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.pool.close()


@pytest.fixture
def service(fresh_pg_dsn: str, request: pytest.FixtureRequest) -> Iterator[Service]:
    svc = Service(fresh_pg_dsn, getattr(request, "param", {}))
    try:
        yield svc
    finally:
        svc.close()


def service_env(env: dict[str, str]) -> pytest.MarkDecorator:
    """Runs the test on a service started with these extra settings."""
    return pytest.mark.parametrize("service", [env], indirect=True, ids=["env"])


def _user(api: httpx.Client) -> tuple[str, str]:
    email, password = f"u{uuid.uuid4().hex[:10]}@example.org", "normal-pass-1"
    r = api.post("/api/auth/register", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    return email, password


def _login(api: httpx.Client, email: str, password: str, **kw: Any) -> httpx.Response:
    return api.post("/api/auth/login", json={"email": email, "password": password}, **kw)


# ---- login limits


@service_env({"RATE_LIMIT_LOGIN_IP": "6/15minutes", "RATE_LIMIT_REGISTER": "100/hour"})
def test_varying_the_email_buys_no_more_login_attempts_from_one_address(service: Service):
    with httpx.Client(base_url=service.url, timeout=30) as api:
        codes = [
            _login(api, f"nobody{i}@example.org", "wrong-password").status_code for i in range(8)
        ]
    assert codes[:6] == [401] * 6
    assert codes[6:] == [429, 429]


@service_env(
    {
        "RATE_LIMIT_LOGIN": "3/15minutes",
        "RATE_LIMIT_LOGIN_IP": "100/15minutes",
        "TRUSTED_PROXIES": "127.0.0.1",
        "RATE_LIMIT_REGISTER": "100/hour",
    }
)
def test_behind_a_trusted_proxy_a_guesser_locks_out_himself_not_the_owner(service: Service):
    with httpx.Client(base_url=service.url, timeout=30) as api:
        victim, password = _user(api)
        guesser = {"X-Forwarded-For": "198.51.100.7"}
        codes = [
            _login(api, victim, "wrong-password", headers=guesser).status_code for _ in range(4)
        ]
        assert codes == [401, 401, 401, 429]
        # The owner, behind the same proxy, is a different client.
        owner = {"X-Forwarded-For": "203.0.113.7, 10.0.0.1"}
        assert _login(api, victim, password, headers=owner).status_code == 200


@service_env(
    {
        "RATE_LIMIT_LOGIN_ACCOUNT": "4/15minutes",
        "RATE_LIMIT_LOGIN_IP": "100/15minutes",
        "TRUSTED_PROXIES": "127.0.0.1",
    }
)
def test_guessing_one_account_from_many_addresses_is_capped_per_account(service: Service):
    with httpx.Client(base_url=service.url, timeout=30) as api:
        codes = [
            _login(
                api, "target@example.org", "wrong", headers={"X-Forwarded-For": f"192.0.2.{i}"}
            ).status_code
            for i in range(5)
        ]
    assert codes == [401, 401, 401, 401, 429]


@service_env({"RATE_LIMIT_LOGIN_IP": "3/15minutes"})
def test_without_trusted_proxies_x_forwarded_for_is_ignored(service: Service):
    with httpx.Client(base_url=service.url, timeout=30) as api:
        codes = [
            _login(
                api,
                "nobody@example.org",
                "wrong-password",
                headers={"X-Forwarded-For": f"198.51.100.{i}"},
            ).status_code
            for i in range(4)
        ]
    assert codes == [401, 401, 401, 429]


@service_env({"PASSWORD_HASH_CONCURRENCY": "1", "RATE_LIMIT_LOGIN_IP": "1000/hour"})
def test_concurrent_password_hashing_is_capped(service: Service):
    seen: list[int] = []

    def attempt(i: int) -> None:
        with httpx.Client(base_url=service.url, timeout=60) as api:
            seen.append(_login(api, f"n{i}@example.org", "wrong-password").status_code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == [401] * 6  # every one answered ...
    gate = service.app.state.hashing
    assert gate.passed == 6  # ... each through the gate
    assert gate.peak == 1  # ... one hash at a time


# ---- bodies capped before they are read


def _raw(url: str, head: str, body: bytes = b"") -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(head.encode() + body)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
            if b"\r\n\r\n" in out:
                head_end = out.index(b"\r\n\r\n") + 4
                length = 0
                for line in out[:head_end].split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                if len(out) >= head_end + length:
                    break
        return out


@service_env({"WEBHOOK_MAX_BYTES": "4096"})
def test_an_oversized_webhook_body_is_refused_before_it_is_read(service: Service):
    # Declares 1 GB and sends only the head: the answer comes without the body ever being sent.
    head = (
        "POST /api/kyc/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000000000\r\n\r\n"
    )
    assert _raw(service.url, head).startswith(b"HTTP/1.1 413")


@service_env({"WEBHOOK_MAX_BYTES": "4096"})
def test_a_chunked_webhook_body_is_cut_at_the_cap(service: Service):
    chunk = b"x" * 1024
    body = b"".join(b"400\r\n" + chunk + b"\r\n" for _ in range(8)) + b"0\r\n\r\n"
    head = (
        "POST /api/kyc/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    assert _raw(service.url, head, body).startswith(b"HTTP/1.1 413")


def test_an_oversized_upload_is_refused_before_it_is_spooled(service: Service):
    cap = service.settings.max_upload_bytes
    head = (
        "POST /api/documents/sign HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {cap * 4}\r\n\r\n"
    )
    assert _raw(service.url, head).startswith(b"HTTP/1.1 413")


# ---- the webhook's digest


def _webhook(api: httpx.Client, digest: str | bytes, alg: str) -> httpx.Response:
    body = json.dumps({"applicantId": "a", "createdAtMs": 1}).encode()
    return api.post(
        "/api/kyc/webhook",
        content=body,
        headers={"X-Payload-Digest": digest, "X-Payload-Digest-Alg": alg},
    )


def test_a_non_ascii_digest_is_a_401_not_a_500(service: Service):
    with httpx.Client(base_url=service.url, timeout=30) as api:
        r = _webhook(api, "é".encode("latin-1") * 64, "HMAC_SHA256_HEX")
    assert r.status_code == 401
    assert "Traceback" not in r.text


def test_the_webhook_algorithms_are_the_configured_ones(service: Service):
    body = json.dumps({"applicantId": "a", "createdAtMs": 1}).encode()
    good = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha1).hexdigest()
    with httpx.Client(base_url=service.url, timeout=30) as api:
        r = api.post(
            "/api/kyc/webhook",
            content=body,
            headers={"X-Payload-Digest": good, "X-Payload-Digest-Alg": "HMAC_SHA1_HEX"},
        )
    assert r.status_code == 401  # SHA-1 is not in the default set, correct signature or not
    assert "HMAC_SHA256_HEX" in r.text


# ---- hashes upgraded at login


def test_a_weaker_stored_hash_is_rehashed_at_login(service: Service):
    with httpx.Client(base_url=service.url, timeout=30) as api:
        email, password = _user(api)
        weak = passwords.hash_password(
            password, params=passwords.Parameters(memory_kib=512, iterations=1, parallelism=1)
        )
        service.pool.execute("UPDATE users SET password_hash = $2 WHERE email = $1", (email, weak))
        assert _login(api, email, password).status_code == 200
    [(stored,)] = service.pool.execute("SELECT password_hash FROM users WHERE email = $1", (email,))
    assert stored != weak
    params = passwords.Parameters(
        memory_kib=service.settings.password_memory_kib,
        iterations=service.settings.password_iterations,
        parallelism=1,
    )
    assert not passwords.needs_rehash(stored, params=params)
    assert passwords.verify_password(password, stored)


# ---- the shared limiter's failure policy


def test_login_limits_fail_closed_when_their_store_is_down(service: Service):
    with httpx.Client(base_url=service.url, timeout=30) as api:
        email, password = _user(api)
        assert _login(api, email, password).status_code == 200
        service.pool.execute("ALTER TABLE blocktrust_ratelimit RENAME TO ratelimit_away")
        try:
            r = _login(api, email, password)
            assert r.status_code == 503  # denied: an outage never unlocks guessing
            assert r.headers["Retry-After"]
        finally:
            service.pool.execute("ALTER TABLE ratelimit_away RENAME TO blocktrust_ratelimit")
        assert _login(api, email, password).status_code == 200


# ---- no account enumeration


@service_env({"RATE_LIMIT_REGISTER": "100/hour"})
def test_register_answers_the_same_whether_or_not_the_email_exists(service: Service):
    email = f"u{uuid.uuid4().hex[:10]}@example.org"
    with httpx.Client(base_url=service.url, timeout=30) as api:
        new = api.post("/api/auth/register", json={"email": email, "password": "normal-pass-1"})
        taken = api.post("/api/auth/register", json={"email": email, "password": "other-pass-22"})
        assert (new.status_code, new.json()) == (taken.status_code, taken.json())
        assert sorted(new.headers.keys()) == sorted(taken.headers.keys())
        # ... and the existing account is untouched.
        assert _login(api, email, "normal-pass-1").status_code == 200
        assert _login(api, email, "other-pass-22").status_code == 401
    assert service.pool.execute("SELECT count(*) FROM users WHERE email = $1", (email,)) == [(1,)]
