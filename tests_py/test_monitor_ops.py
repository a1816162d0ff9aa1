"""The dashboard and alert rules that ship with the monitor (validate_all_flows/monitor/ops/).

promtool (Debian's ``prometheus`` package, installed by scripts/setup) checks the rules and runs
their unit tests (tests_py/promtool/: series that fire and series that do not fire each alert);
every metric the dashboard and the rules read must be in the exposition of a real monitor run
(a real PostgreSQL store, a loopback deployment, a listener checkpoint for the lag, a chain
worker's row and anvil for the backlog and the signer's gas).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from blocktrust_native.http import http_request
from blocktrust_native.pool import Pool
from validate_all_flows.embedded.anvil import Anvil
from validate_all_flows.embedded.migrate import apply_migrations
from validate_all_flows.monitor import Monitor, MonitorConfig, MonitorStore, SlackWebhook
from validate_all_flows.target import Target

ROOT = Path(__file__).resolve().parents[1]
OPS = ROOT / "validate_all_flows" / "monitor" / "ops"
RULES = OPS / "prometheus-rules.yml"
DASHBOARD = OPS / "grafana-dashboard.json"
RULE_TESTS = Path(__file__).resolve().parent / "promtool" / "monitor-rules.test.yml"

METRIC = re.compile(r"\bblocktrust_[a-z0-9_]+")
RECORDED = re.compile(r"\bblocktrust:[a-z0-9_:]+")


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    assert exe, "promtool is not installed (scripts/setup installs Debian's prometheus)"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, check=False)


def _rules() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def _dashboard_exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in doc["templating"]["list"] if "definition" in v]
    return exprs


def test_promtool_checks_the_rules() -> None:
    p = _promtool("check", "rules", str(RULES))
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in p.stdout


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    p = _promtool("test", "rules", str(RULE_TESTS))
    assert p.returncode == 0, p.stdout + p.stderr
    alerts = {r["alert"] for r in _rules() if "alert" in r}
    fired: set[str] = set()
    quiet: set[str] = set()
    for t in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for case in t["alert_rule_test"]:
            (fired if case["exp_alerts"] else quiet).add(case["alertname"])
    assert fired == alerts
    assert quiet == alerts
    # The SRE workbook's pairs: 1 h with 5 min over 14.4x, 6 h with 30 min over 6x.
    by_name = {r["alert"]: r["expr"] for r in _rules() if "alert" in r}
    for kind in ("Availability", "Error"):
        fast, slow = (
            by_name[f"Blocktrust{kind}BudgetFastBurn"],
            by_name[f"Blocktrust{kind}BudgetSlowBurn"],
        )
        for needed in ("ratio_rate1h", "ratio_rate5m", "14.4 *"):
            assert needed in fast
        for needed in ("ratio_rate6h", "ratio_rate30m", "6 *"):
            assert needed in slow


def test_a_broken_rule_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        RULES.read_text().replace(
            "avg_over_time(blocktrust_monitor_up[5m])", "avg_over_time(blocktrust_monitor_up[5m]", 1
        )
    )
    p = _promtool("check", "rules", str(bad))
    assert p.returncode != 0


class _Deployment(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        found = self.path in ("/api/health", "/api/ready")
        body = b'{"status": "ok"}' if found else b"{}"
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def exposition(fresh_pg_dsn: str, anvil: Anvil) -> Iterator[str]:
    """The /metrics text of a real monitor after one cycle of database, http and workers, with
    a chain worker whose signer's balance a real anvil answers."""
    with Pool(fresh_pg_dsn, min_size=0, max_size=1) as pool:
        apply_migrations(pool)
        pool.execute(
            "INSERT INTO listener_checkpoints (chain_id, listener, next_block, lag_seconds) "
            "VALUES (31337, 'identity', 10, 12.5)"
        )
        pool.execute(
            "INSERT INTO chain_workers (worker, chain_id, sender, interval_seconds) "
            "VALUES ('w1', 31337, $1, 2)",
            (anvil.accounts[1].lower(),),
        )
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Deployment)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    target = Target(base_url=url, database_url=fresh_pg_dsn, rpc_url=anvil.rpc_url)
    store = MonitorStore(fresh_pg_dsn, "ops")
    groups = ("database", "http", "workers")
    # A channel, so that the per-channel webhook failure counter is exported (at 0).
    hook = SlackWebhook(url + "/hooks/ops")
    m = Monitor(target, store, MonitorConfig(instance="ops", groups=groups), [hook])
    m.start()
    srv = m.serve_metrics("127.0.0.1", 0)
    try:
        m.run_cycle()
        got = http_request("GET", srv.url)
        assert got["status"] == 200, got
        yield got["body"].decode()
    finally:
        m.close()
        store.close()
        target.close()
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.pg
def test_every_metric_used_is_exposed(exposition: str, anvil: Anvil) -> None:
    exposed = {
        line.split("{")[0].split(" ")[0]
        for line in exposition.splitlines()
        if line and not line.startswith("#")
    }
    rule_exprs = [r["expr"] for r in _rules()]
    used = {m for e in [*rule_exprs, *_dashboard_exprs()] for m in METRIC.findall(e)}
    assert used, "no metric found in the dashboard or the rules"
    assert sorted(used - exposed) == []
    # Recorded series the dashboard reads are recorded by the rules.
    recorded = {r["record"] for r in _rules() if "record" in r}
    wanted = {m for e in _dashboard_exprs() for m in RECORDED.findall(e)}
    assert sorted(wanted - recorded) == []
    # The run measured what the panels draw, the listener's lag included.
    assert "blocktrust_monitor_listener_lag_seconds 12.5" in exposition
    # ... and the chain worker's queue by kind and its signer's gas.
    assert 'blocktrust_monitor_chain_jobs_pending{kind="failsafe"} 0.0' in exposition
    signer = f'blocktrust_monitor_signer_balance{{signer="{anvil.accounts[1].lower()}"}}'
    assert signer in exposition


def test_the_dashboard_is_well_formed() -> None:
    doc = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for p in doc["panels"]:
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], p["title"]
        assert all(t["expr"] for t in p["targets"]), p["title"]
        assert p["description"], p["title"]
        g = p["gridPos"]
        assert g["x"] >= 0, p["title"]
        assert g["x"] + g["w"] <= 24, p["title"]
    titles = {p["title"] for p in doc["panels"]}
    for wanted in (
        "Check status",
        "Probe latency",
        "Uptime over the SLO window",
        "Error budget remaining",
        "Burn rate (multi-window)",
        "Listener lag",
        "Chain worker backlog",
        "Oldest pending chain job",
        "Signer gas",
    ):
        assert wanted in titles
