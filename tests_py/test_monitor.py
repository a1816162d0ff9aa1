"""The monitor (python -m validate_all_flows monitor) against real parts on loopback.

A real PostgreSQL database with the migrations applied is the store (and the monitored database);
a small stdlib HTTP server stands in for the monitored deployment, its /api/health switchable to
500 or slow; two more servers stand in for Slack and the Telegram bot API and keep what they got.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from blocktrust_native.http import http_request
from blocktrust_native.pool import Pool
from validate_all_flows.checks import Status, run_checks
from validate_all_flows.cli import main as cli_main
from validate_all_flows.embedded.migrate import apply_migrations
from validate_all_flows.monitor import Monitor, MonitorConfig, MonitorStore
from validate_all_flows.monitor.alerts import SlackWebhook, TelegramBot
from validate_all_flows.monitor.cli import parse_duration
from validate_all_flows.monitor.runner import DEFAULT_GROUPS
from validate_all_flows.target import DeploymentSlo, Target

pytestmark = pytest.mark.pg

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "7355608:AAH-monitor-test-token-never-shown-0123456789"
CHAT = "-100424242"


class _Server:
    """A ThreadingHTTPServer on 127.0.0.1 running ``handler`` in a thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def _reply(self, status: int, doc: Any) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Deployment(_Server):
    """The monitored service: /api/health answers per ``mode`` (ok, 500, slow); /api/ready 200."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.slow_s = 0.3
        self.hits = 0

        class H(_Quiet):
            def do_GET(self) -> None:
                dep: Deployment = self.server.owner  # type: ignore[attr-defined]
                dep.hits += 1
                if self.path == "/api/health":
                    if dep.mode == "500":
                        self._reply(500, {"status": "error"})
                        return
                    if dep.mode == "slow":
                        time.sleep(dep.slow_s)
                    self._reply(200, {"status": "ok"})
                elif self.path == "/api/ready":
                    self._reply(200, {"status": "ready"})
                else:
                    self._reply(404, {})

        super().__init__(H)


class Receiver(_Server):
    """A webhook receiver (Slack or Telegram): keeps every POST; ``fail`` refuses them."""

    def __init__(self, telegram: bool = False) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.fail = False
        self.refused = 0

        class H(_Quiet):
            def do_POST(self) -> None:
                rec: Receiver = self.server.owner  # type: ignore[attr-defined]
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if rec.fail:
                    rec.refused += 1
                    doc = {"ok": False, "description": "Bad Gateway"} if telegram else {}
                    self._reply(502, doc)
                    return
                rec.posts.append((self.path, json.loads(body)))
                self._reply(200, {"ok": True, "result": {}} if telegram else {"ok": True})

        super().__init__(H)

    @property
    def texts(self) -> list[str]:
        return [doc["text"] for _path, doc in self.posts]


@pytest.fixture
def dsn(fresh_pg_dsn: str) -> str:
    with Pool(fresh_pg_dsn, min_size=0, max_size=1) as pool:
        apply_migrations(pool)
    return fresh_pg_dsn


@pytest.fixture
def db(dsn: str) -> Iterator[Pool]:
    with Pool(dsn, min_size=0, max_size=2) as pool:
        yield pool


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    d = Deployment()
    yield d
    d.close()


@pytest.fixture
def slack() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def telegram() -> Iterator[Receiver]:
    r = Receiver(telegram=True)
    yield r
    r.close()


def _monitor(
    dsn: str,
    deployment: Deployment,
    channels: list[Any],
    *,
    slo: DeploymentSlo | None = None,
    clock: Any = None,
    **config: Any,
) -> Monitor:
    target = Target(base_url=deployment.url, database_url=dsn, slo=slo or DeploymentSlo())
    target.add_secrets([TOKEN])
    store = MonitorStore(dsn, "test")
    cfg = MonitorConfig(**{"instance": "test", "groups": ("database", "http"), **config})
    kw = {"clock": clock} if clock else {}
    return Monitor(target, store, cfg, channels, **kw)


def _close(m: Monitor) -> None:
    m.close()
    m.store.close()
    m.target.close()


def _channels(slack: Receiver, telegram: Receiver) -> list[Any]:
    return [SlackWebhook(slack.url + "/services/T0/B0/hooksecret"),
            TelegramBot(TOKEN, CHAT, api_base=telegram.url)]  # fmt: skip


# --- alerts


def test_alert_on_failure_dedup_and_recovery_with_rows(
    dsn: str, db: Pool, deployment: Deployment, slack: Receiver, telegram: Receiver
) -> None:
    m = _monitor(dsn, deployment, _channels(slack, telegram))
    m.start()
    try:
        c1 = m.run_cycle()
        assert c1.failing == []
        assert c1.up is True
        assert slack.posts == []
        assert telegram.posts == []

        deployment.mode = "500"
        c2 = m.run_cycle()
        assert c2.failing == ["http.health"]
        assert c2.up is False
        assert len(slack.texts) == 1
        assert len(telegram.texts) == 1
        assert "FAILING http.health (critical)" in slack.texts[0]
        assert "status 500" in slack.texts[0]
        # The Telegram bot API shape: POST /bot<token>/sendMessage with chat_id and text.
        path, doc = telegram.posts[0]
        assert path == f"/bot{TOKEN}/sendMessage"
        assert doc["chat_id"] == CHAT
        assert doc["text"] == slack.texts[0]

        c3 = m.run_cycle()  # still failing: no second notice
        assert c3.failing == ["http.health"]
        assert len(slack.texts) == 1
        assert len(telegram.texts) == 1
        rows = db.execute(
            "SELECT check_name, fingerprint, severity, status, opened_at < last_seen_at, "
            "notified_at IS NOT NULL, notify_attempts FROM monitor_alerts"
        )
        assert rows == [("http.health", "test/http.health", "critical", "open", True, True, 1)]

        deployment.mode = "ok"
        c4 = m.run_cycle()
        assert c4.failing == []
        assert c4.notices == 1
        assert len(slack.texts) == 2
        assert len(telegram.texts) == 2
        assert slack.texts[1].startswith("[blocktrust monitor test] RECOVERED http.health after")
        rows = db.execute(
            "SELECT status, resolved_at IS NOT NULL, notified_at >= resolved_at, "
            "details->>'instance', details->>'status' FROM monitor_alerts"
        )
        assert rows == [("resolved", True, True, "test", "fail")]

        c5 = m.run_cycle()  # healthy again: nothing more to say
        assert c5.notices == 0
        assert len(slack.texts) == 2
    finally:
        _close(m)
    ups = db.execute(
        "SELECT value FROM monitor_metrics WHERE name = 'monitor.up' ORDER BY recorded_at"
    )
    assert [r[0] for r in ups] == [1.0, 0.0, 0.0, 1.0, 1.0]
    statuses = db.execute(
        "SELECT value FROM monitor_metrics WHERE name = 'probe.status' "
        'AND labels @> \'{"check": "http.health"}\' ORDER BY recorded_at'
    )
    assert [r[0] for r in statuses] == [200.0, 500.0, 500.0, 200.0, 200.0]
    checks = db.execute(
        "SELECT labels->>'check', count(*) FROM monitor_metrics WHERE name = 'check.status' "
        "GROUP BY 1 ORDER BY 1"
    )
    assert [c for c, _n in checks] == [
        "database.migrations",
        "database.reachable",
        "database.schema",
        "http.debug_off",
        "http.health",
        "http.ready",
    ]
    assert all(n == 5 for _c, n in checks)
    assert db.execute("SELECT count(*) FROM monitor_metrics WHERE name = 'probe.latency_ms'") == [
        (10,)
    ]


def test_a_failing_channel_is_retried_next_cycle_and_never_shows_the_token(
    dsn: str,
    deployment: Deployment,
    slack: Receiver,
    telegram: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="validate_all_flows.monitor")
    m = _monitor(dsn, deployment, _channels(slack, telegram))
    m.start()
    try:
        deployment.mode = "500"
        telegram.fail = True
        c1 = m.run_cycle()
        assert c1.notices == 0  # Slack took it, Telegram did not: not delivered everywhere yet
        assert len(slack.texts) == 1
        assert telegram.refused == 1
        assert "via telegram(127.0.0.1) failed (answered 502: Bad Gateway)" in caplog.text

        telegram.fail = False
        c2 = m.run_cycle()
        assert c2.notices == 1
        assert len(telegram.texts) == 1
        assert "FAILING http.health" in telegram.texts[0]
        assert len(slack.texts) == 1  # Slack is not sent the same notice twice

        # A receiver that is gone: logged, the monitor goes on.
        telegram.close()
        deployment.mode = "ok"
        c3 = m.run_cycle()
        assert c3.failing == []
        assert len(slack.texts) == 2
        assert "recovery notice for http.health via telegram(127.0.0.1) failed" in caplog.text
        assert (
            m.exposition().count('blocktrust_monitor_webhook_failures_total{channel="telegram') == 1
        )
    finally:
        _close(m)
    assert TOKEN not in caplog.text
    assert "hooksecret" not in caplog.text
    assert TOKEN not in repr(m.alerts.channels)


def test_a_reminder_at_most_once_per_period(
    dsn: str, deployment: Deployment, slack: Receiver, telegram: Receiver
) -> None:
    now = [dt.datetime.now(dt.timezone.utc)]
    m = _monitor(
        dsn, deployment, [SlackWebhook(slack.url)], clock=lambda: now[0], remind_every_s=600
    )
    m.start()
    try:
        deployment.mode = "500"
        for step in (0, 300, 400, 300, 300):  # t = 0, 300, 700, 1000, 1300
            now[0] += dt.timedelta(seconds=step)
            m.run_cycle()
        kinds = [t.split("] ", 1)[1].split(" http.health")[0] for t in slack.texts]
        assert kinds == ["FAILING", "STILL FAILING", "STILL FAILING"]  # at t = 0, 700, 1300
        assert "for 11 min, since" in slack.texts[1]
    finally:
        _close(m)


def test_open_alerts_survive_a_restart(
    dsn: str, db: Pool, deployment: Deployment, slack: Receiver
) -> None:
    deployment.mode = "500"
    m = _monitor(dsn, deployment, [SlackWebhook(slack.url)])
    m.start()
    m.run_cycle()
    _close(m)
    assert len(slack.texts) == 1
    m = _monitor(dsn, deployment, [SlackWebhook(slack.url)])
    m.start()
    try:
        m.run_cycle()  # the same failure after a restart: still the one alert, no new notice
        assert len(slack.texts) == 1
        deployment.mode = "ok"
        m.run_cycle()
        assert "RECOVERED http.health" in slack.texts[1]
    finally:
        _close(m)
    assert db.execute("SELECT status, count(*) FROM monitor_alerts GROUP BY 1") == [("resolved", 1)]


def test_a_store_down_at_start_still_ends_with_one_alert_row(
    dsn: str, db: Pool, deployment: Deployment, slack: Receiver, pg_cluster: Any
) -> None:
    name = dsn.rsplit("/", 1)[1]
    deployment.mode = "500"
    m = _monitor(dsn, deployment, [SlackWebhook(slack.url)], groups=("http",))
    m.start()
    m.run_cycle()
    _close(m)
    with Pool(pg_cluster.dsn(), min_size=0, max_size=1) as admin:
        admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        m = _monitor(dsn, deployment, [SlackWebhook(slack.url)], groups=("http",))
        try:
            m.start()  # the store refuses: the open alert cannot be taken over yet
            c = m.run_cycle()
            assert c.report is None
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
            m.run_cycle()  # takes the stored alert over instead of writing a second one
            deployment.mode = "ok"
            m.run_cycle()
        finally:
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
            _close(m)
    heads = [t.split("] ", 1)[1].split(" (")[0].split(" after")[0] for t in slack.texts]
    # Unreachable store: the monitor cannot know the failure was announced, and says it again
    # rather than stay silent during an outage.
    assert heads == ["FAILING http.health", "FAILING http.health", "RECOVERED http.health"]
    rows = db.execute("SELECT status, notify_attempts FROM monitor_alerts")
    assert rows == [("resolved", 3)]


def test_an_alert_for_a_check_that_raised_resolves_once_the_check_completes(
    dsn: str, pg_cluster: Any, slack: Receiver
) -> None:
    # The monitored database lacks the listener's table: the check raises (an ERROR under its
    # own declared id); once migrated, it completes and fails (no checkpoint): the same alert.
    watched = pg_cluster.create_database("monitor_watched_bare")
    target = Target(database_url=watched, slo=DeploymentSlo())
    m = Monitor(
        target,
        MonitorStore(dsn, "test"),
        MonitorConfig(instance="test", groups=("workers",)),
        [SlackWebhook(slack.url)],
    )
    m.start()
    try:
        first = m.run_cycle()
        assert first.failing == ["workers.listener"]
        assert {r.id: r.status for r in first.results}["workers.listener"] is Status.ERROR
        with Pool(watched, min_size=0, max_size=1) as pool:
            apply_migrations(pool)
        second = m.run_cycle()
        assert second.failing == ["workers.listener"]  # no checkpoint written yet
        assert {r.id: r.status for r in second.results}["workers.listener"] is Status.FAIL
    finally:
        _close(m)
    heads = [t.split("\n")[0].split("] ", 1)[1].split(" (")[0] for t in slack.texts]
    assert heads == ["FAILING workers.listener"]


# --- SLO figures


def test_slo_report_on_a_known_sequence_of_up_and_down_cycles(
    dsn: str, db: Pool, deployment: Deployment, tmp_path: Path
) -> None:
    slo = DeploymentSlo(p95_ms=5000, error_rate=0.2, availability=0.5, listener_lag_s=180)
    m = _monitor(
        dsn,
        deployment,
        [],
        slo=slo,
        report_dir=tmp_path,
        report_every_s=3600,
        burn_alert=0.3,
        burn_alert_min_cycles=10,
    )
    m.start()
    try:
        for mode in ["ok", "ok", "500", "ok", "500", "ok", "ok", "ok", "ok", "ok"]:
            deployment.mode = mode
            m.run_cycle()
    finally:
        _close(m)
    r = m.report
    assert r is not None
    i = r.inputs
    assert (i.cycles, i.up_cycles, i.cycles_1h, i.up_cycles_1h) == (10, 8, 10, 8)
    assert (i.probes, i.probe_errors) == (20, 2)  # health and ready each cycle
    assert r.uptime == pytest.approx(0.8)
    # 2 of 10 cycles down against an allowed 50 %: burn 0.2 / 0.5 = 0.4, 60 % of the budget left.
    assert r.uptime_burn_rate == pytest.approx(0.4)
    assert r.uptime_budget_remaining == pytest.approx(0.6)
    assert r.uptime_burn_rate_1h == pytest.approx(0.4)
    # 2 of 20 probes failed against an allowed 20 %: burn 0.5, half the budget left.
    assert r.error_rate == pytest.approx(0.1)
    assert r.error_burn_rate == pytest.approx(0.5)
    assert r.error_budget_remaining == pytest.approx(0.5)
    assert i.p95_ms is not None
    assert 0 < i.p95_ms < 5000
    assert r.passed
    assert [v.objective for v in r.verdicts] == ["uptime", "p95 latency", "error rate"]

    # Written on the first cycle and, being hourly, next at shutdown with the final figures.
    doc = json.loads((tmp_path / "slo-report.json").read_text())
    assert doc["schema"] == "blocktrust.monitor.slo/1"
    assert doc["uptime"]["cycles"] == 10
    assert doc["uptime"]["up"] == 8
    assert doc["uptime"]["ratio"] == pytest.approx(0.8)
    assert doc["uptime"]["budget_remaining"] == pytest.approx(0.6)
    assert doc["errors"]["burn_rate"] == pytest.approx(0.5)
    assert doc["passed"] is True
    text = (tmp_path / "slo-report.txt").read_text()
    assert "SLO report for test — MET" in text
    assert "uptime:       80.000 % (8/10 cycles up), objective 50 %" in text
    assert "budget remaining 0.600, burn rate 0.40 (last hour 0.40)" in text
    assert "error rate:   10.000 % (2/20 probes), objective 20 %" in text
    history = (tmp_path / "slo-history.jsonl").read_text().splitlines()
    assert [json.loads(h)["uptime"]["cycles"] for h in history] == [1, 10]
    # The page beside them: the verdict, and one point per history entry on each budget line
    # (tests_py/test_report_html.py opens such a page in a browser).
    page = (tmp_path / "slo-report.html").read_text()
    assert '<h1 id="verdict">SLO MET</h1>' in page
    assert page.count('<circle class="pt s1"') == 2 + 2  # budget and burn-rate charts

    # The 1-hour burn rate 0.4 is over the 0.3 alert threshold once the hour holds 10 cycles.
    assert db.execute(
        "SELECT check_name, status FROM monitor_alerts WHERE check_name = 'slo.uptime_burn'"
    ) == [("slo.uptime_burn", "open")]


def test_slow_answers_are_up_but_miss_the_latency_objective(
    dsn: str, deployment: Deployment
) -> None:
    deployment.mode, deployment.slow_s = "slow", 0.3
    m = _monitor(dsn, deployment, [], slo=DeploymentSlo(p95_ms=150))
    m.start()
    try:
        c = m.run_cycle()
    finally:
        _close(m)
    assert c.failing == ["http.health"]  # slower than the objective
    assert c.up is True  # ... but up
    r = m.report
    assert r is not None
    assert r.uptime == 1.0
    assert r.error_rate == 0.0
    assert r.inputs.p95_ms is not None
    assert r.inputs.p95_ms >= 150
    assert not r.passed
    assert [v.objective for v in r.verdicts if not v.passed] == ["p95 latency"]


def test_samples_wait_for_a_store_that_does_not_answer(
    dsn: str, deployment: Deployment, pg_cluster: Any
) -> None:
    later = dsn.rsplit("/", 1)[0] + "/monitor_store_later"
    target = Target(base_url=deployment.url, slo=DeploymentSlo())
    store = MonitorStore(later, "test")
    m = Monitor(target, store, MonitorConfig(instance="test", groups=("http",)))
    m.start()
    try:
        c1 = m.run_cycle()
        assert c1.report is None
        assert store.buffered > 0
        deployment.mode = "500"
        m.run_cycle()
        pending = store.buffered
        # The store comes up: the next cycle writes the buffered samples with their own times.
        pg_cluster.create_database("monitor_store_later")
        with Pool(later, min_size=0, max_size=1) as pool:
            apply_migrations(pool)
        deployment.mode = "ok"
        c3 = m.run_cycle()
        assert store.buffered == 0
        assert pending > 0
        assert c3.report is not None
        assert (c3.report.inputs.cycles, c3.report.inputs.up_cycles) == (3, 2)
        with Pool(later, min_size=0, max_size=1) as pool:
            times = pool.execute(
                "SELECT recorded_at FROM monitor_metrics WHERE name = 'monitor.up' "
                "ORDER BY recorded_at"
            )
        assert len(times) == 3
        assert times[0][0] == c1.at
    finally:
        _close(m)


# --- heartbeat and the workers check


def test_the_heartbeat_is_what_the_workers_check_reads(
    dsn: str, db: Pool, deployment: Deployment
) -> None:
    def check() -> tuple[Status, str]:
        t = Target(database_url=dsn)
        try:
            (r,) = [r for r in run_checks(t, {"workers"}) if r.id == "workers.monitor"]
        finally:
            t.close()
        return r.status, r.found

    assert check() == (Status.SKIP, "no monitor runs")
    m = _monitor(dsn, deployment, [], interval_s=30)
    m.start()
    assert check() == (Status.PASS, "1 monitor(s) beating")
    m.run_cycle()
    assert db.execute("SELECT instance, interval_seconds, cycles FROM monitor_heartbeats") == [
        ("test", 30.0, 1)
    ]
    # 3 intervals + 60 s of silence without a clean stop: the monitor died.
    db.execute("UPDATE monitor_heartbeats SET beat_at = now() - interval '149 seconds'")
    assert check()[0] is Status.PASS
    db.execute("UPDATE monitor_heartbeats SET beat_at = now() - interval '160 seconds'")
    status, found = check()
    assert status is Status.FAIL
    assert "without a clean shutdown" in found
    _close(m)  # a clean stop: nothing runs, nothing is expected
    assert check() == (Status.SKIP, "no monitor runs (1 stopped cleanly)")


def test_the_workers_check_skips_without_the_heartbeat_table(fresh_pg_dsn: str) -> None:
    t = Target(database_url=fresh_pg_dsn)
    try:
        (r,) = [r for r in run_checks(t, {"workers"}) if r.id == "workers.monitor"]
    finally:
        t.close()
    assert r.status is Status.SKIP
    assert "migration 009 not applied" in r.found


# --- Prometheus


def _scrape(url: str) -> dict[str, float]:
    r = http_request("GET", url)
    assert r["status"] == 200, r
    headers = {k.lower(): v for k, v in r["headers"]}
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    out = {}
    for line in r["body"].decode().splitlines():
        if line.startswith("#"):
            assert line.startswith(("# HELP blocktrust_monitor_", "# TYPE blocktrust_monitor_"))
            continue
        key, value = line.rsplit(" ", 1)
        out[key] = float(value)
    return out


def test_prometheus_endpoint(dsn: str, deployment: Deployment) -> None:
    m = _monitor(dsn, deployment, [])
    m.start()
    srv = m.serve_metrics("127.0.0.1", 0)
    try:
        m.run_cycle()
        got = _scrape(srv.url)
        assert got['blocktrust_monitor_check_up{check="http.health"}'] == 1.0
        assert got['blocktrust_monitor_check_up{check="database.reachable"}'] == 1.0
        assert got['blocktrust_monitor_probe_status{check="http.health"}'] == 200.0
        assert 0 < got['blocktrust_monitor_probe_latency_seconds{check="http.health"}'] < 10
        assert got["blocktrust_monitor_up"] == 1.0
        assert got["blocktrust_monitor_uptime_ratio"] == 1.0
        assert got['blocktrust_monitor_error_budget_remaining{objective="availability"}'] == 1.0
        assert got['blocktrust_monitor_burn_rate{objective="availability",window="slo"}'] == 0.0
        assert got['blocktrust_monitor_slo_objective{objective="availability"}'] == 0.995
        assert got["blocktrust_monitor_cycles_total"] == 1.0
        assert got["blocktrust_monitor_slo_met"] == 1.0
        assert 0 < got["blocktrust_monitor_latency_p95_seconds"] < 10

        deployment.mode = "500"
        m.run_cycle()
        got = _scrape(srv.url)
        assert got['blocktrust_monitor_check_up{check="http.health"}'] == 0.0
        assert got['blocktrust_monitor_probe_status{check="http.health"}'] == 500.0
        assert got["blocktrust_monitor_up"] == 0.0
        assert got["blocktrust_monitor_uptime_ratio"] == 0.5
        assert got["blocktrust_monitor_alerts_open"] == 1.0
        assert got["blocktrust_monitor_slo_met"] == 0.0
        # 1 of 2 cycles down against an allowed 0.5 %: burn 100, the budget overspent 99 times.
        burn = got['blocktrust_monitor_burn_rate{objective="availability",window="slo"}']
        left = got['blocktrust_monitor_error_budget_remaining{objective="availability"}']
        assert burn == pytest.approx(100.0)
        assert left == pytest.approx(-99.0)

        assert http_request("GET", srv.url.replace("/metrics", "/other"))["status"] == 404
    finally:
        _close(m)
    assert http_request("GET", srv.url, connect_timeout=1)["error"]  # stopped with the monitor


# --- the command line


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SLACK_"))}
    env.pop("ALERT_WEBHOOK_URL", None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "python"), str(ROOT)])
    return {**env, **extra}


def _cli(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "validate_all_flows", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(**env),
        cwd=ROOT,
        check=False,
    )


def test_cli_once_posts_reports_and_keeps_the_token_secret(
    dsn: str,
    db: Pool,
    deployment: Deployment,
    slack: Receiver,
    telegram: Receiver,
    tmp_path: Path,
) -> None:
    args = ["--once", "--base-url", deployment.url, "--database-url", dsn, "--groups",
            "database,http", "--report-dir", str(tmp_path), "--telegram-api-base", telegram.url,
            "--name", "prod"]  # fmt: skip
    env = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": CHAT,
           "SLACK_WEBHOOK_URL": slack.url + "/services/T0/B0/hooksecret"}  # fmt: skip
    deployment.mode = "500"
    p1 = _cli(args, **env)
    assert p1.returncode == 1, p1.stderr  # --once: 1 when a check failed in the cycle
    assert "cycle 1: 5 pass, 1 fail, 0 error, 0 skip | DOWN | failing: http.health" in p1.stderr
    assert "alerts to slack(127.0.0.1), telegram(127.0.0.1)" in p1.stderr
    assert len(slack.texts) == 1
    assert len(telegram.texts) == 1
    assert "FAILING http.health" in telegram.texts[0]
    assert (tmp_path / "slo-report.json").exists()
    assert (tmp_path / "slo-report.txt").exists()

    deployment.mode = "ok"
    p2 = _cli(args, **env)
    assert p2.returncode == 0, p2.stderr
    assert "RECOVERED http.health" in slack.texts[1]
    assert "RECOVERED" in telegram.texts[1]
    for p in (p1, p2):
        for stream in (p.stdout, p.stderr):
            assert TOKEN not in stream
            assert "hooksecret" not in stream
            assert TOKEN.split(":")[1] not in stream
    assert db.execute("SELECT stopped_at IS NOT NULL, cycles FROM monitor_heartbeats") == [
        (True, 1)
    ]
    dumped = json.dumps(db.execute("SELECT message, details FROM monitor_alerts"), default=str)
    assert TOKEN not in dumped
    assert "hooksecret" not in dumped


def test_cli_refuses_what_it_cannot_run(
    dsn: str, pg_cluster: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = pg_cluster.create_database("monitor_no_tables")

    def run(*args: str) -> tuple[int, str]:
        once = [] if "--cycles" in args else ["--once"]
        rc = cli_main(["monitor", *once, *args])
        cap = capsys.readouterr()
        return rc, cap.out + cap.err

    rc, out = run()
    assert rc == 2
    assert "the monitor needs a deployment to watch" in out
    rc, out = run("--base-url", "http://127.0.0.1:9")
    assert rc == 2
    assert "metrics and alerts need a store" in out
    rc, out = run("--database-url", bare)  # reachable, but no monitor tables
    assert rc == 2
    assert "the store lacks monitor_metrics, monitor_alerts, monitor_heartbeats" in out
    rc, out = run("--database-url", dsn, "--groups", "database,nosuch")
    assert rc == 2
    assert "unknown group(s) ['nosuch']" in out
    rc, out = run("--database-url", dsn, "--telegram-token", TOKEN)
    assert rc == 2
    assert "Telegram needs both a token and a chat id" in out
    assert TOKEN not in out
    rc, out = run("--database-url", dsn, "--slack-webhook", "ftp://hooks.example/T0/secretpath")
    assert rc == 2
    assert "not an http(s) URL" in out
    assert "secretpath" not in out
    rc, out = run("--database-url", dsn, "--cycles", "0")
    assert rc == 2
    assert "--cycles must be at least 1" in out


def test_durations() -> None:
    assert [parse_duration(x) for x in ("90", "90s", "15m", "12h", "30d", "1.5h")] == [
        90,
        90,
        900,
        43200,
        2592000,
        5400,
    ]
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


def test_sigterm_stops_cleanly(dsn: str, db: Pool, deployment: Deployment) -> None:
    args = ["--base-url", deployment.url, "--database-url", dsn, "--groups", "http",
            "--interval", "3600"]  # fmt: skip
    cmd = [sys.executable, "-m", "validate_all_flows", "monitor", *args]
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT) as proc:
        try:
            assert proc.stderr is not None
            lines = []
            for line in proc.stderr:  # the first cycle's line, then it sleeps for an hour
                lines.append(line)
                if "cycle 1:" in line:
                    break
            proc.terminate()
            rc = proc.wait(30)
            rest = proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
    assert rc == 0, "".join(lines) + rest
    assert "SIGTERM: stopping after this cycle" in rest
    assert "stopped after 1 cycle(s)" in rest
    assert db.execute("SELECT stopped_at IS NOT NULL FROM monitor_heartbeats") == [(True,)]


def test_cli_once_against_the_embedded_stack(tmp_path: Path) -> None:
    from validate_all_flows.embedded.stack import Stack

    with Stack() as stack:
        p = _cli(
            [
                "--once",
                "--base-url",
                stack.base_url,
                "--database-url",
                stack.database_url,
                "--rpc-url",
                stack.rpc_url,
                "--contracts",
                stack.contracts_config,
                "--report-dir",
                str(tmp_path),
            ]
        )
        beats = stack.pool.execute("SELECT instance, cycles, stopped_at IS NOT NULL "
                                   "FROM monitor_heartbeats")  # fmt: skip
    assert p.returncode == 0, p.stderr
    # database 3, http 2, chain 1, workers 3 (the listener, this monitor's own heartbeat and
    # the chain worker's)
    assert "cycle 1: 10 pass, 0 fail, 0 error, 0 skip | up" in p.stderr, p.stderr
    assert beats == [(stack.base_url.split("//")[1], 1, True)]
    doc = json.loads((tmp_path / "slo-report.json").read_text())
    assert doc["uptime"]["ratio"] == 1.0
    assert doc["listener_lag"]["max_s"] is not None


def test_an_overdue_failsafe_alerts_on_the_first_cycle_of_the_default_groups(
    dsn: str, db: Pool, deployment: Deployment, slack: Receiver
) -> None:
    uid = db.execute(
        "INSERT INTO users (email, password_hash, duress_password_hash) "
        "VALUES ('late@example.org', $1, $1) RETURNING id",
        ("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA",),
    )[0][0]
    # Due ten minutes ago and still queued: the worker is down or the chain refuses it.
    fid = db.execute(
        "INSERT INTO failsafe_events (user_id, source, reason_hash, execute_after) "
        "VALUES ($1, 'login', $2, now() - interval '10 minutes') RETURNING id",
        (uid, "0x" + "cd" * 32),
    )[0][0]
    m = _monitor(dsn, deployment, [SlackWebhook(slack.url + "/hook")], groups=DEFAULT_GROUPS)
    m.start()
    try:
        c1 = m.run_cycle()
    finally:
        _close(m)
    assert "workers.chain" in c1.failing
    text = next(t for t in slack.texts if "workers.chain" in t)
    assert "FAILING workers.chain (critical)" in text
    assert f"failsafe_events {fid}" in text


# --- the chain worker's backlog and its signer's gas (Prometheus gauges)

_HASH = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA"


def _user(db: Pool, email: str) -> int:
    return int(
        db.execute(
            "INSERT INTO users (email, password_hash, duress_password_hash) "
            "VALUES ($1, $2, $2) RETURNING id",
            (email, _HASH),
        )[0][0]
    )


def _mint(db: Pool, status: str, age: str) -> None:
    uid = _user(db, f"mint-{status}-{age.replace(' ', '')}-{time.monotonic_ns()}@example.org")
    db.execute(
        "INSERT INTO identity_nfts (user_id, chain_id, contract_address, wallet_address, "
        "status, created_at) VALUES ($1, 31337, $2, $2, $3, now() - $4::interval)",
        (uid, "0x" + "ab" * 20, status, age),
    )


def _failsafe(db: Pool, status: str, created: str, due: str) -> None:
    uid = _user(db, f"fs-{status}-{time.monotonic_ns()}@example.org")
    db.execute(
        "INSERT INTO failsafe_events (user_id, source, reason_hash, status, execute_after, "
        "created_at) VALUES ($1, 'login', $2, $3, now() + $5::interval, now() - $4::interval)",
        (uid, "0x" + "cd" * 32, status, created, due),
    )


def _gauges(got: dict[str, float], family: str) -> dict[str, float]:
    return {k: v for k, v in got.items() if k.split("{")[0] == family}


def test_the_backlog_gauges_count_the_chain_jobs_by_kind(
    dsn: str, db: Pool, deployment: Deployment
) -> None:
    _mint(db, "pending", "5 minutes")  # the oldest pending mint
    _mint(db, "pending", "1 minute")
    _mint(db, "submitted", "0 seconds")
    _mint(db, "failed", "1 hour")
    _failsafe(db, "queued", "15 minutes", "-10 minutes")  # due ten minutes ago: overdue
    _failsafe(db, "queued", "1 minute", "1 hour")  # its randomised delay not over yet
    _failsafe(db, "failed", "2 hours", "-1 hour")
    m = _monitor(dsn, deployment, [], groups=("workers",))
    m.start()
    srv = m.serve_metrics("127.0.0.1", 0)
    try:
        m.run_cycle()
        got = _scrape(srv.url)
        assert _gauges(got, "blocktrust_monitor_chain_jobs_pending") == {
            'blocktrust_monitor_chain_jobs_pending{kind="mint"}': 3.0,
            'blocktrust_monitor_chain_jobs_pending{kind="proof"}': 0.0,
            'blocktrust_monitor_chain_jobs_pending{kind="batch"}': 0.0,
            'blocktrust_monitor_chain_jobs_pending{kind="failsafe"}': 2.0,
        }
        assert _gauges(got, "blocktrust_monitor_chain_jobs_failed") == {
            'blocktrust_monitor_chain_jobs_failed{kind="mint"}': 1.0,
            'blocktrust_monitor_chain_jobs_failed{kind="proof"}': 0.0,
            'blocktrust_monitor_chain_jobs_failed{kind="batch"}': 0.0,
            'blocktrust_monitor_chain_jobs_failed{kind="failsafe"}': 1.0,
        }
        oldest = _gauges(got, "blocktrust_monitor_chain_job_oldest_pending_seconds")
        # Ages from the rows' timestamps: at least what was inserted, less an hour's slack.
        assert (
            300 <= oldest['blocktrust_monitor_chain_job_oldest_pending_seconds{kind="mint"}'] < 900
        )
        assert (
            900
            <= oldest['blocktrust_monitor_chain_job_oldest_pending_seconds{kind="failsafe"}']
            < 1500
        )
        assert oldest['blocktrust_monitor_chain_job_oldest_pending_seconds{kind="proof"}'] == 0.0
        assert 600 <= got["blocktrust_monitor_chain_failsafe_overdue_seconds"] < 1200
        assert got['blocktrust_monitor_slo_objective{objective="failsafe_margin_seconds"}'] == 60.0
        assert got['blocktrust_monitor_slo_objective{objective="worker_stale_seconds"}'] == 120.0
        assert got['blocktrust_monitor_slo_objective{objective="chain_job_seconds"}'] == 600.0
        assert not _gauges(got, "blocktrust_monitor_signer_balance")  # no --rpc-url

        # The overdue one fires; nothing is overdue any more, the gauge says 0, not absent.
        db.execute(
            "UPDATE failsafe_events SET status = 'confirmed', tx_hash = $1 "
            "WHERE execute_after < now() AND status = 'queued'",
            ("0x" + "ef" * 32,),
        )
        # A table that is not there is not a zero: its kind is left out.
        db.execute("DROP TABLE proof_batches CASCADE")
        m.run_cycle()
        got = _scrape(srv.url)
        assert got["blocktrust_monitor_chain_failsafe_overdue_seconds"] == 0.0
        assert got['blocktrust_monitor_chain_jobs_pending{kind="failsafe"}'] == 1.0
        kinds = {k for k in _gauges(got, "blocktrust_monitor_chain_jobs_pending")}
        assert kinds == {
            'blocktrust_monitor_chain_jobs_pending{kind="mint"}',
            'blocktrust_monitor_chain_jobs_pending{kind="proof"}',
            'blocktrust_monitor_chain_jobs_pending{kind="failsafe"}',
        }
    finally:
        _close(m)


def test_a_profile_queue_is_read_as_the_profile_says(
    dsn: str, db: Pool, deployment: Deployment, tmp_path: Path
) -> None:
    from validate_all_flows.profile import load_profile

    db.execute("CREATE TABLE jobs_q (id serial, state text, queued_at timestamptz)")
    db.execute(
        "INSERT INTO jobs_q (state, queued_at) VALUES ('waiting', now() - interval '200 s'), "
        "('waiting', now()), ('broken', now()), ('done', now() - interval '1 day')"
    )
    prof = tmp_path / "queue.yaml"
    prof.write_text(
        "schema: blocktrust.profile/1\nextends: reference\nname: queue\nworkers:\n"
        "  chain: none\n"
        "  jobs: {table: jobs_q, status: state, pending: [waiting], failed: [broken], "
        "time: queued_at}\n"
    )
    m = _monitor(dsn, deployment, [], groups=("workers",))
    m.target.use_profile(load_profile(prof))
    m.start()
    srv = m.serve_metrics("127.0.0.1", 0)
    try:
        m.run_cycle()
        got = _scrape(srv.url)
        # Only the profile's queue: the reference tables are there but the profile runs no
        # reference chain worker.
        assert _gauges(got, "blocktrust_monitor_chain_jobs_pending") == {
            'blocktrust_monitor_chain_jobs_pending{kind="queue"}': 2.0
        }
        assert got['blocktrust_monitor_chain_jobs_failed{kind="queue"}'] == 1.0
        age = got['blocktrust_monitor_chain_job_oldest_pending_seconds{kind="queue"}']
        assert 200 <= age < 800
        assert "blocktrust_monitor_chain_failsafe_overdue_seconds" not in got

        db.execute("DROP TABLE jobs_q")  # no queue table: no gauge at all, not zeros
        m.run_cycle()
        got = _scrape(srv.url)
        assert not [k for k in got if k.startswith("blocktrust_monitor_chain_")]
    finally:
        _close(m)


def _chain_worker(db: Pool, sender: str) -> None:
    db.execute(
        "INSERT INTO chain_workers (worker, chain_id, sender, interval_seconds) "
        "VALUES ('w1', 31337, $1, 2)",
        (sender.lower(),),
    )


def test_the_signer_gauges_read_the_chain(
    dsn: str, db: Pool, deployment: Deployment, anvil: Any
) -> None:
    sender = anvil.accounts[3]
    _chain_worker(db, sender)
    m = _monitor(dsn, deployment, [], groups=("workers",))
    m.target.rpc_url = anvil.rpc_url
    m.start()
    srv = m.serve_metrics("127.0.0.1", 0)
    try:
        m.run_cycle()
        got = _scrape(srv.url)
        balance = int(anvil.rpc("eth_getBalance", [sender, "latest"]), 16)
        price = int(anvil.rpc("eth_gasPrice"), 16)
        key = f'blocktrust_monitor_signer_balance{{signer="{sender.lower()}"}}'
        assert _gauges(got, "blocktrust_monitor_signer_balance") == {key: balance / 1e18}
        # 20 fail-safes of 120,000 gas at the current price, in the chain's coin.
        need = got["blocktrust_monitor_signer_balance_required"]
        assert need == pytest.approx(20 * 120_000 * price / 1e18)

        m.target.min_gas_balance_wei = 25 * 10**17  # --min-gas-balance 2.5
        m.run_cycle()
        assert _scrape(srv.url)["blocktrust_monitor_signer_balance_required"] == 2.5
    finally:
        _close(m)


def test_a_cycle_reads_each_signers_balance_once(
    dsn: str, db: Pool, deployment: Deployment, anvil: Any
) -> None:
    from fix_proxy import JsonRpcProxy

    # Two running workers: w1 beats (the check and the gauges read its signer), w2 stopped
    # beating an hour ago without a clean stop (dead for the check, still a gauge).
    alive, dead = anvil.accounts[3].lower(), anvil.accounts[5].lower()
    _chain_worker(db, alive)
    db.execute(
        "INSERT INTO chain_workers (worker, chain_id, sender, interval_seconds, beat_at) "
        "VALUES ('w2', 31337, $1, 2, now() - interval '1 hour')",
        (dead,),
    )
    with JsonRpcProxy(anvil.rpc_url) as rpc:
        m = _monitor(dsn, deployment, [], groups=("workers",))
        m.target.rpc_url = rpc.url
        m.start()
        srv = m.serve_metrics("127.0.0.1", 0)
        try:
            c1 = m.run_cycle()
            reads = {k: rpc.methods[k] for k in ("eth_getBalance", "eth_gasPrice")}
            got = _scrape(srv.url)
            c2 = m.run_cycle()  # the next cycle reads afresh
            reads2 = {k: rpc.methods[k] - reads[k] for k in reads}
        finally:
            _close(m)
    # One balance read per signer and one gas price per cycle, shared by the check and gauges.
    assert reads == {"eth_getBalance": 2, "eth_gasPrice": 1}
    assert reads2 == reads
    balances = {s: int(anvil.rpc("eth_getBalance", [s, "latest"]), 16) for s in (alive, dead)}
    assert _gauges(got, "blocktrust_monitor_signer_balance") == {
        f'blocktrust_monitor_signer_balance{{signer="{s}"}}': b / 1e18 for s, b in balances.items()
    }
    for c in (c1, c2):
        assert c.gas is not None
        assert dict(c.gas.balances) == balances
        chain = next(r for r in c.results if r.id == "workers.chain")
        assert chain.measures["signer_balance"] == balances[alive] / 1e18
        assert f"signer {alive}: balance" in "\n".join(chain.evidence)
        assert f"signer {dead}" not in "\n".join(chain.evidence)  # judged: running ones only


def test_a_chain_that_fails_the_checks_read_is_not_asked_again_for_the_gauges(
    dsn: str, db: Pool, deployment: Deployment, anvil: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from fix_proxy import FaultProxy

    _chain_worker(db, anvil.accounts[3])
    with FaultProxy(anvil.rpc_url, fail_rate=1.0, hang_s=0.2, forward_failed=False) as rpc:
        m = _monitor(dsn, deployment, [], groups=("workers",))
        m.target.rpc_url = rpc.url
        m.start()
        try:
            with caplog.at_level(logging.WARNING, logger="validate_all_flows.monitor"):
                c1 = m.run_cycle()
        finally:
            _close(m)
        calls = rpc.calls
    chain = next(r for r in c1.results if r.id == "workers.chain")
    assert chain.status is Status.ERROR, chain
    assert c1.gas is None
    assert calls == 1  # the gas price, refused once: the gauges took the check's answer
    said = [r.getMessage() for r in caplog.records if "the signer's gas" in r.getMessage()]
    assert len(said) == 1, said


def test_cli_min_gas_balance_is_the_validators(
    dsn: str, db: Pool, deployment: Deployment, slack: Receiver, anvil: Any
) -> None:
    _chain_worker(db, anvil.accounts[4])
    db.execute(
        "INSERT INTO listener_checkpoints (chain_id, listener, next_block, lag_seconds) "
        "VALUES (31337, 'identity', 1, 0)"
    )
    balance = int(anvil.rpc("eth_getBalance", [anvil.accounts[4], "latest"]), 16) / 1e18
    args = ["--once", "--database-url", dsn, "--rpc-url", anvil.rpc_url, "--groups", "workers",
            "--slack-webhook", slack.url + "/hook"]  # fmt: skip
    short = _cli([*args, "--min-gas-balance", str(balance * 2)])
    assert short.returncode == 1, short.stderr
    assert "failing: workers.chain" in short.stderr
    text = next(t for t in slack.texts if "workers.chain" in t)
    assert "short of gas" in text
    assert "(--min-gas-balance)" in text
    enough = _cli([*args, "--min-gas-balance", str(balance / 2)])
    assert enough.returncode == 0, enough.stderr
    assert "RECOVERED workers.chain" in slack.texts[-1]


def _chain_work_near_its_objectives(db: Pool) -> None:
    """A chain worker that beat 60 s ago (polls every 2 s), a mint pending for 2 minutes and a
    fail-safe 30 s past its time, all within the default objectives (126 s, 10 m, 60 s); a
    listener checkpoint so that workers.listener passes."""
    _chain_worker(db, "0x" + "a4" * 20)
    db.execute("UPDATE chain_workers SET beat_at = now() - interval '60 s'")
    _mint(db, "pending", "2 minutes")
    _failsafe(db, "queued", "5 minutes", "-30 seconds")
    db.execute(
        "INSERT INTO listener_checkpoints (chain_id, listener, next_block, lag_seconds) "
        "VALUES (31337, 'identity', 1, 0)"
    )


#: Each chain work objective set below what the deployment above shows, and what then fails.
_TIGHT_OBJECTIVES = {
    "--failsafe-margin": ("10s", "s past its time (queued, 0 attempt(s))"),
    "--worker-stale-after": ("20s", "worker w1 is dead: no heartbeat for 6"),
    "--job-objective": ("1.5m", "pending for 12"),
}


def test_the_validators_chain_objectives_reach_the_verdict(
    dsn: str, db: Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    _chain_work_near_its_objectives(db)

    def workers_chain(*options: str) -> tuple[int, dict[str, Any]]:
        argv = ["--quiet", "--database-url", dsn, "--only", "workers", "--format", "json"]
        rc = cli_main([*argv, *options])
        doc = json.loads(capsys.readouterr().out)
        return rc, next(c for c in doc["checks"] if c["id"] == "workers.chain")

    rc, check = workers_chain()
    assert (rc, check["status"]) == (0, "pass"), check
    for option, (value, says) in _TIGHT_OBJECTIVES.items():
        rc, check = workers_chain(option, value)
        assert (rc, check["status"]) == (1, "fail"), (option, check)
        problems = [e for e in check["evidence"] if says in e]
        assert len(problems) == 1, (option, check["evidence"])
        if option == "--job-objective":
            assert "(objective 90 s, 0 attempt(s))" in problems[0]


def test_the_monitors_chain_objectives_reach_the_checks_and_the_gauges(
    dsn: str, db: Pool, slack: Receiver
) -> None:
    _chain_work_near_its_objectives(db)
    args = ["--database-url", dsn, "--groups", "workers", "--slack-webhook", slack.url + "/hook"]
    default = _cli(["--once", *args])
    assert default.returncode == 0, default.stderr
    tight = [a for option, (value, _) in _TIGHT_OBJECTIVES.items() for a in (option, value)]
    cmd = [sys.executable, "-m", "validate_all_flows", "monitor", *args, *tight,
           "--interval", "1h", "--metrics-port", "0"]  # fmt: skip
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT) as proc:
        try:
            assert proc.stderr is not None
            lines, url = [], ""
            for line in proc.stderr:  # the metrics URL, then the first cycle's line
                lines.append(line)
                if "Prometheus metrics on " in line:
                    url = line.split("Prometheus metrics on ", 1)[1].strip()
                if "cycle 1:" in line:
                    break
            got = _scrape(url)
            proc.terminate()
            assert proc.wait(30) == 0, "".join(lines) + proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
    assert "failing: workers.chain" in lines[-1], lines
    assert got['blocktrust_monitor_slo_objective{objective="failsafe_margin_seconds"}'] == 10.0
    assert got['blocktrust_monitor_slo_objective{objective="worker_stale_seconds"}'] == 20.0
    assert got['blocktrust_monitor_slo_objective{objective="chain_job_seconds"}'] == 90.0
    text = next(t for t in slack.texts if "workers.chain" in t)
    assert "3 problem(s)" in text, text  # one per objective (the notice shows the first two)
    assert all(says in text for _value, says in list(_TIGHT_OBJECTIVES.values())[:2]), text


def test_a_database_that_does_not_answer_leaves_the_backlog_out_not_zero(
    dsn: str, deployment: Deployment, pg_cluster: Any, caplog: pytest.LogCaptureFixture
) -> None:
    later = dsn.rsplit("/", 1)[0] + "/monitored_later"
    target = Target(base_url=deployment.url, database_url=later, slo=DeploymentSlo())
    store = MonitorStore(dsn, "test")
    m = Monitor(target, store, MonitorConfig(instance="test", groups=("workers",)))
    m.start()
    srv = m.serve_metrics("127.0.0.1", 0)
    try:
        with caplog.at_level(logging.WARNING, logger="validate_all_flows.monitor"):
            c1, c2 = m.run_cycle(), m.run_cycle()
        assert (c1.backlog, c2.backlog) == (None, None)
        assert not [k for k in _scrape(srv.url) if k.startswith("blocktrust_monitor_chain_")]
        said = [r.getMessage() for r in caplog.records if "the chain job backlog" in r.getMessage()]
        assert len(said) == 1, said  # once, not every cycle
        # The database comes up: the next cycle has the gauges, at zero for an empty queue.
        pg_cluster.create_database("monitored_later")
        with Pool(later, min_size=0, max_size=1) as pool:
            apply_migrations(pool)
        m.run_cycle()
        assert _scrape(srv.url)['blocktrust_monitor_chain_jobs_pending{kind="mint"}'] == 0.0
    finally:
        _close(m)
