"""Secrets never reach an output: validate_all_flows.redact on its own, then every input planted
with secrets (DSN in both forms, an RPC URL with a key in its path, the env file, the webhook
secret, tokens and passwords in logs, a service that leaks its config in an error page) and every
output grepped (text, JSON, JUnit and any later format, stderr progress, the monitor's alerts to
Slack and Telegram, its Prometheus exposition and SLO reports)."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fix_wsgi import serve_wsgi

from validate_all_flows.cli import main
from validate_all_flows.embedded.postgres import free_port
from validate_all_flows.redact import Redactor, redact_text, redact_url
from validate_all_flows.report import FORMATS

ROOT = Path(__file__).resolve().parents[1]


# --- the module


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:s3cret-pw@db:5432/x", "postgresql://app:***@db:5432/x"),
        ("postgresql://app@db:5432/x", "postgresql://app@db:5432/x"),  # user alone: kept
        ("postgresql+psycopg2://u:pw@h/d?sslmode=require", "postgresql+psycopg2://u:***@h/d?sslmode=require"),
        ("postgresql://u@h/d?password=pw&sslpassword=k", "postgresql://u@h/d?password=***&sslpassword=***"),
        ("https://mainnet.infura.io/v3/0123456789abcdef0123", "https://mainnet.infura.io/v3/***"),
        ("https://polygon-amoy.g.alchemy.com/v2/Ab9Cd8Ef7Gh6", "https://polygon-amoy.g.alchemy.com/v2/***"),
        ("https://x.quiknode.pro/9f3kQ2LmZx8Rt5Wv1Yb4Nc7Hd0Ps6Ju/", "https://x.quiknode.pro/***/"),
        ("https://rpc.example/?apikey=k&chain=1", "https://rpc.example/?apikey=***&chain=1"),
        ("https://KEY123456@rpc.example/", "https://***@rpc.example/"),
        ("https://api.telegram.org/bot123:AAbbCC/sendMessage", "https://api.telegram.org/***/sendMessage"),
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        ("https://api.example/api/documents/42", "https://api.example/api/documents/42"),
        ("https://scan.example/tx/0x" + "ab" * 32, "https://scan.example/tx/0x" + "ab" * 32),
    ],
)  # fmt: skip
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_text_hides_credentials_and_keeps_the_rest() -> None:
    text = (
        "connect host=db port=5432 user=app password='a b c' sslpassword=kk dbname=x; "
        'json {"password": "pw1", "token_id": 7, "api_key": "abc"} '
        "Authorization: Bearer abcdefghijklmnop; jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln "
        "key btk_live_" + "a1" * 16 + " env JWT_SECRET=xyz123 ref ${DB_PASSWORD}"
    )
    out = redact_text(text)
    for gone in ("a b c", "kk", "pw1", '"abc"', "abcdefghijklmnop", "eyJhbGci", "a1a1a1", "xyz123"):
        assert gone not in out, (gone, out)
    for kept in ("host=db", "port=5432", "user=app", "dbname=x", '"token_id": 7', "${DB_PASSWORD}"):
        assert kept in out, (kept, out)


def test_a_registered_secret_is_hidden_in_any_form() -> None:
    secret = "Zx+9/q" + secrets.token_hex(8) + "=="
    r = Redactor()
    r.add([secret])
    forms = [
        secret,
        secret.upper(),
        quote(secret, safe=""),
        json.dumps(secret)[1:-1],
        base64.b64encode(secret.encode()).decode(),
        base64.b64encode(b"user:" + secret.encode()).decode(),  # inside longer base64
        secret.encode().hex(),
    ]
    for form in forms:
        line = f"logged <{form}>"
        assert r.found_in(line), form
        assert secret not in r(line), form
        assert form not in r(line), form
    assert not r.found_in("an ordinary line")


# --- the command: every input, every output


def _grep_forms(value: str) -> list[str]:
    raw = value.encode()
    return [value, quote(value, safe=""), base64.b64encode(raw).decode()[:-4]]


@pytest.fixture
def planted(tmp_path: Path) -> dict[str, Any]:
    closed = free_port()
    s = {
        "db_pw": "Db-pa55-" + secrets.token_hex(6),
        "kw_pw": "Kw-pa55-" + secrets.token_hex(6),
        "rpc_key": secrets.token_hex(16),
        "jwt": secrets.token_urlsafe(32),
        "webhook": secrets.token_hex(24),
        "salt": base64.b64encode(os.urandom(33)).decode(),  # '+', '/': URL-encoding differs
        "app_token": "sbx:" + secrets.token_hex(16),
        "hook": "T0B0" + secrets.token_hex(12),
        "tg": f"{secrets.randbelow(10**9)}:AA" + secrets.token_urlsafe(30),
        "log_pw": "hunter-" + secrets.token_hex(5),
        "bearer": secrets.token_urlsafe(24),
    }
    s["db_url"] = f"postgresql://app:{s['db_pw']}@127.0.0.1:{closed}/app"
    s["kw_dsn"] = f"host=127.0.0.1 port={closed} dbname=app user=app password={s['kw_pw']}"
    s["rpc_url"] = f"http://127.0.0.1:{closed}/v3/{s['rpc_key']}"
    env = {
        "ENVIRONMENT": "production",
        "DATABASE_URL": s["db_url"],
        "JWT_SECRET": s["jwt"],
        "SUMSUB_APP_TOKEN": s["app_token"],
        "SUMSUB_SECRET_KEY": s["webhook"],
        "API_KEY_SALT": s["salt"],
        "RPC_URL": s["rpc_url"],
        "SLACK_WEBHOOK_URL": f"https://hooks.slack.com/services/{s['hook']}",
        "TELEGRAM_BOT_TOKEN": s["tg"],
        "CORS_ORIGINS": "https://app.example",
        "JWT_SECRTE": s["jwt"],  # misspelt: a warning, still a secret
    }
    (tmp_path / "service.env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    log = [
        "INFO started",
        f"DEBUG settings loaded jwt={s['jwt']}",  # the env secret as it is
        f"DEBUG salt {quote(s['salt'], safe='')}",  # URL-encoded
        "DEBUG basic " + base64.b64encode(f"app:{s['webhook']}".encode()).decode(),  # base64
        f"INFO db connect host=db user=app password={s['log_pw']}",  # password= outside a URL
        f"INFO Authorization: Bearer {s['bearer']}",
        f"INFO calling {s['rpc_url']}",
    ]
    (tmp_path / "api.log").write_text("\n".join(log) + "\n")
    s["env_file"], s["log"] = tmp_path / "service.env", tmp_path / "api.log"
    s["secrets"] = [s[k] for k in ("db_pw", "kw_pw", "rpc_key", "jwt", "webhook", "salt",
                                   "app_token", "hook", "tg", "log_pw", "bearer")]  # fmt: skip
    return s


def _leaky(s: dict[str, Any]) -> Any:
    """A service whose error pages dump its configuration (a real and common leak)."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = (
            f"Traceback (most recent call last):\nDATABASE_URL={s['db_url']}\n"
            f"JWT_SECRET={s['jwt']} webhook={s['webhook']} Authorization: Bearer {s['bearer']}\n"
        ).encode()
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
        return [body]

    return app


def _assert_clean(text: str, s: dict[str, Any], where: str) -> None:
    for secret in s["secrets"]:
        for form in _grep_forms(secret):
            assert form not in text, f"{where}: a secret ({form[:4]}...) shows"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dsn_form", ["url", "keywords"])
def test_no_secret_reaches_any_report_or_stderr(
    fmt: str, dsn_form: str, planted: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    s = planted
    with serve_wsgi(_leaky(s)) as url:
        rc = main(
            [
                *("--base-url", url, "--env-file", str(s["env_file"])),
                *("--database-url", s["db_url"] if dsn_form == "url" else s["kw_dsn"]),
                *("--rpc-url", s["rpc_url"], "--logs", str(s["log"])),
                *("--only", "env,database,http,workers,logs", "--format", fmt),
            ]
        )
    out, err = capsys.readouterr()
    assert rc == 1
    assert "checking" in err  # the progress went to stderr and was grepped too
    _assert_clean(out, s, f"{fmt} report")
    _assert_clean(err, s, "stderr")
    if fmt == "json":
        doc = json.loads(out)
        checks = {c["id"]: c for c in doc["checks"]}
        assert doc["target"]["rpc_url"].endswith("/v3/***")
        leaks = checks["logs.secrets"]["evidence"]
        assert [e.split(": ", 1)[0].rsplit(":", 1)[1] for e in leaks] == [
            "2", "3", "4", "5", "6", "7"
        ], leaks  # fmt: skip
        assert any("a password" in e for e in leaks)
        assert checks["http.health"]["status"] == "fail"
        assert any(
            "JWT_SECRTE" in w and "JWT_SECRET" in w for w in checks["env.schema"]["warnings"]
        )


def test_only_logs_still_knows_the_env_secrets(
    planted: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: with --only logs the env check never ran, nothing was registered: GO, and the
    # evidence printed the JWT secret verbatim.
    s = planted
    log = tmp_path / "one.log"
    log.write_text(f"INFO token signing key is {s['jwt']}\n")
    argv = ["--env-file", str(s["env_file"]), "--logs", str(log), "--only", "logs"]
    for fmt in FORMATS:
        rc = main([*argv, "--format", fmt])
        out, err = capsys.readouterr()
        assert rc == 1, out
        assert s["jwt"] not in out + err
    rc = main([*argv, "--format", "json", "--quiet"])
    doc = json.loads(capsys.readouterr().out)
    secrets_check = next(c for c in doc["checks"] if c["id"] == "logs.secrets")
    assert secrets_check["status"] == "fail"
    assert secrets_check["evidence"] == [f"{log}:1: a secret from the environment"]


# --- the monitor: alerts, SLO reports, Prometheus


class _Receiver:
    """Keeps the JSON bodies POSTed to it (Slack's webhook or Telegram's bot API)."""

    def __init__(self, reply: dict[str, Any]) -> None:
        self.posts: list[dict[str, Any]] = []
        owner = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", "0"))
                owner.posts.append({"path": self.path, "doc": json.loads(self.rfile.read(n))})
                body = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def store(fresh_pg_dsn: str) -> str:
    from blocktrust_native.pool import Pool
    from validate_all_flows.embedded.migrate import apply_migrations

    with Pool(fresh_pg_dsn, min_size=0, max_size=1) as pool:
        apply_migrations(pool)
    return fresh_pg_dsn


@pytest.fixture
def receivers() -> Iterator[tuple[_Receiver, _Receiver]]:
    slack, telegram = _Receiver({"ok": True}), _Receiver({"ok": True, "result": {}})
    yield slack, telegram
    slack.close()
    telegram.close()


@pytest.mark.pg
def test_no_secret_reaches_the_monitors_outputs(
    planted: dict[str, Any], store: str, receivers: tuple[_Receiver, _Receiver], tmp_path: Path
) -> None:
    from validate_all_flows.monitor import Monitor, MonitorConfig, MonitorStore
    from validate_all_flows.monitor.alerts import SlackWebhook, TelegramBot
    from validate_all_flows.target import Target

    s = planted
    slack, telegram = receivers
    reports = tmp_path / "reports"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SLACK_"))}
    env.pop("ALERT_WEBHOOK_URL", None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "python"), str(ROOT)])
    env["SLACK_WEBHOOK_URL"] = f"{slack.url}/services/{s['hook']}"
    with serve_wsgi(_leaky(s)) as url:
        args = [
            *("--once", "--base-url", url, "--database-url", store, "--groups", "http,env"),
            *("--env-file", str(s["env_file"]), "--report-dir", str(reports)),
            *("--telegram-token", s["tg"], "--telegram-chat-id", "-1001"),
            *("--telegram-api-base", telegram.url, "--name", "prod"),
        ]
        proc = subprocess.run(
            [sys.executable, "-m", "validate_all_flows", "monitor", *args],
            capture_output=True, text=True, timeout=120, env=env, cwd=ROOT, check=False,
        )  # fmt: skip
        assert proc.returncode == 1, proc.stderr
        payloads = [p["doc"] for p in slack.posts + telegram.posts]
        assert slack.posts, proc.stderr
        assert telegram.posts, proc.stderr
        assert any("http.health" in p["doc"]["text"] for p in slack.posts)
        _assert_clean(json.dumps(payloads), s, "alert payloads")
        _assert_clean(proc.stdout + proc.stderr, s, "monitor stderr")
        written = sorted(reports.iterdir())
        assert [p.name for p in written] == [
            "slo-history.jsonl",
            "slo-report.html",
            "slo-report.json",
            "slo-report.txt",
        ]
        for p in written:
            _assert_clean(p.read_text(), s, p.name)
        # The exposition, from a monitor holding the same secrets.
        target = Target(base_url=url, database_url=store)
        target.env = {"JWT_SECRET": s["jwt"], "SUMSUB_SECRET_KEY": s["webhook"]}
        target.register_inputs()
        m = Monitor(
            target,
            MonitorStore(store, "prom"),
            MonitorConfig(instance=f"prom-{s['jwt']}", groups=("http",)),
            [
                SlackWebhook(f"{slack.url}/services/{s['hook']}"),
                TelegramBot(s["tg"], "-1001", api_base=telegram.url),
            ],
        )
        try:
            m.start()
            m.run_cycle()
            exposition = m.exposition()
        finally:
            m.close()
            m.store.close()
            target.close()
    assert 'blocktrust_monitor_check_up{check="http.health"} 0.0' in exposition
    _assert_clean(exposition, s, "Prometheus exposition")
    _assert_clean(json.dumps([p["doc"] for p in slack.posts + telegram.posts]), s, "alerts")


def test_no_secret_reaches_the_pytest_plugins_report(
    planted: dict[str, Any], tmp_path: Path
) -> None:
    # The plugin's items fail with the evidence (a leaky error page, the env file's findings):
    # pytest's own report of them must hold no secret either.
    s = planted
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "python"), str(ROOT)]),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    with serve_wsgi(_leaky(s)) as url:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "validate_all_flows.pytest_plugin",
             "-p", "no:cacheprovider", "--pyargs", "validate_all_flows", "-rA", "-v",
             "-k", "env or http or database", "--blocktrust-url", url,
             "--blocktrust-database-url", s["kw_dsn"], "--blocktrust-rpc-url", s["rpc_url"],
             "--blocktrust-env-file", str(s["env_file"])],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600, check=False,
        )  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "test_check[http.health] FAILED" in proc.stdout
    _assert_clean(proc.stdout + proc.stderr, s, "pytest plugin output")


def test_a_failing_logs_command_does_not_echo_a_secret(
    planted: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    s = planted
    cmd = f"sh -c 'echo connecting to {s['db_url']} with {s['jwt']} >&2; exit 3'"
    rc = main(["--env-file", str(s["env_file"]), "--logs-cmd", cmd, "--only", "logs"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "--logs-cmd exited 3" in err
    _assert_clean(err, s, "cannot-run message")
