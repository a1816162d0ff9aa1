"""The HTML reports in a real browser: the validator's (--format html: GO, NO-GO, load) and the
monitor's slo-report.html, each opened by headless Chromium from its file.

Each asserts the visible verdict, that the charts rendered with the number of bars and points
the data holds, that the console stayed free of errors and that the page requested nothing but
itself; a full-page screenshot of each stays in the test's tmp dir (copied to
$BLOCKTRUST_SCREENSHOT_DIR when set: how docs/screenshots/ is refreshed).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from fix_chromium import Browser, PageVisit, browser, keep_screenshot
from fix_http_server import MisbehavingServer

from validate_all_flows.checks.load import CURVE_PERCENTILES, HISTOGRAM_BINS
from validate_all_flows.cli import main

__all__ = ["browser"]

SECRET = "s3cr3t-Value-that-must-never-show-9f8e7d6c5b4a"
BEARER = "abcdefghijklmnopqrstuvwxyz0123"


def _env_file(tmp_path: Path, **extra: str) -> Path:
    env = {
        "DATABASE_URL": "postgresql://app:dbpass-123456@db.internal:5432/blocktrust",
        "JWT_SECRET": SECRET,
        "SUMSUB_APP_TOKEN": "sbx:" + "a1b2c3d4" * 3,
        "SUMSUB_SECRET_KEY": "Zr8q9w8e7r6q9w8e7r6",
        "API_KEY_SALT": SECRET[::-1],
        **extra,
    }
    f = tmp_path / ".env"
    f.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return f


def _report(tmp_path: Path, name: str, *argv: str) -> tuple[int, Path]:
    out = tmp_path / name
    rc = main(["--quiet", "--format", "html", "--output", str(out), *argv])
    return rc, out


def _clean(v: PageVisit) -> None:
    assert v.errors == [], v.errors
    assert v.requests == [v.url], v.requests  # the document itself, nothing else


def _visible_text(v: PageVisit, css: str) -> str:
    return str(
        v.eval(
            f"(() => {{ const e = document.querySelector({json.dumps(css)});"
            " if (!e) return null; const r = e.getBoundingClientRect();"
            " return r.width > 0 && r.height > 0 ? e.innerText : null; })()"
        )
    )


def _count(v: PageVisit, css: str) -> int:
    return int(v.eval(f"document.querySelectorAll({json.dumps(css)}).length"))


def test_go_report(browser: Browser, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, page = _report(
        tmp_path, "go.html", "--env-file", str(_env_file(tmp_path)), "--only", "env,http"
    )
    assert rc == 0, capsys.readouterr()
    v = browser.visit(page, tmp_path / "report-go.png")
    keep_screenshot(tmp_path / "report-go.png", "report-go.png")
    _clean(v)
    assert _visible_text(v, "#verdict") == "GO"
    assert _visible_text(v, "#reason") == "all 1 checks passed, 3 skipped (each says why)"
    assert _count(v, "#checks tr[data-check]") == 4
    # Skips come before passes; nothing failed.
    order = v.eval("[...document.querySelectorAll('#checks tr[data-check]')].map(r => r.className)")
    assert order == ["skip", "skip", "skip", "pass"]
    assert _count(v, "#phases rect.bar") == 2  # checks: env, checks: http
    assert SECRET not in page.read_text()


def test_no_go_report_puts_failures_first_and_redacts(
    browser: Browser, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "api.log"
    log.write_text(
        "INFO started\n"
        f"DEBUG config jwt={SECRET}\n"
        "ERROR request failed\n"
        f"INFO Authorization: Bearer {BEARER}\n"
    )
    rc, page = _report(
        tmp_path,
        "nogo.html",
        "--env-file",
        str(_env_file(tmp_path)),
        "--logs",
        str(log),
        "--only",
        "env,logs",
    )
    assert rc == 1, capsys.readouterr()
    html = page.read_text()
    assert SECRET not in html
    assert BEARER not in html
    assert "dbpass-123456" not in html
    v = browser.visit(page, tmp_path / "report-nogo.png")
    keep_screenshot(tmp_path / "report-nogo.png", "report-nogo.png")
    _clean(v)
    assert _visible_text(v, "#verdict") == "NO-GO"
    assert _visible_text(v, "#reason").startswith("2 check(s) failed: logs.errors, logs.secrets")
    rows = v.eval(
        "[...document.querySelectorAll('#checks tr[data-check]')]"
        ".map(r => [r.dataset.check, r.className])"
    )
    assert [c for c, _ in rows[:2]] == ["logs.errors", "logs.secrets"]
    assert [s for _, s in rows[2:]] == ["pass"]
    shown = _visible_text(v, 'tr[data-check="logs.secrets"]')
    assert ":2: a secret from the environment" in shown
    assert "fix:" in shown


def test_load_report_draws_each_step(
    browser: Browser, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "load.yaml"
    spec.write_text(
        "name: two-steps\n"
        "steps:\n"
        "  - {name: json, request: {path: /json}, assert: {status: 200}}\n"
        "  - {name: ok, request: {path: /status/201}, assert: {status: 201}}\n"
    )
    with MisbehavingServer() as srv:
        rc, page = _report(
            tmp_path,
            "load.html",
            "--base-url",
            srv.url,
            "--only",
            "load",
            "--load",
            "2",
            "--load-duration",
            "1",
            "--load-flows",
            str(spec),
            "--p95-ms",
            "250",
        )
    assert rc == 0, capsys.readouterr()
    v = browser.visit(page, tmp_path / "report-load.png")
    keep_screenshot(tmp_path / "report-load.png", "report-load.png")
    _clean(v)
    assert _visible_text(v, "#verdict") == "GO"
    assert v.eval("[...document.querySelectorAll('#load .step')].map(s => s.dataset.step)") == [
        "json",
        "ok",
    ]
    for step in ("json", "ok"):
        sel = f'#load .step[data-step="{step}"]'
        assert _count(v, f"{sel} svg.histogram rect.bar") == HISTOGRAM_BINS
        assert _count(v, f"{sel} svg.line circle.pt") == len(CURVE_PERCENTILES)
        # The p95 objective is drawn on both charts, and labelled.
        assert _count(v, f"{sel} .objective") == 2
        assert "p95 objective 250 ms" in _visible_text(v, sel)
        # The bars hold every request of the step (bar heights > 0 only where requests fell).
        drawn = v.eval(
            f"[...document.querySelectorAll('{sel} rect.bar')]"
            ".filter(b => b.getBBox().height > 0.5).length"
        )
        assert drawn >= 1
    assert _count(v, "#phases rect.bar") == 1  # checks: load


def test_monitor_slo_report(browser: Browser, tmp_path: Path) -> None:
    from blocktrust_native.flows import Verdict
    from validate_all_flows.monitor.alerts import Alert
    from validate_all_flows.monitor.sloreport import build_report, write_report
    from validate_all_flows.monitor.store import SloInputs
    from validate_all_flows.target import DeploymentSlo, Target

    slo = DeploymentSlo(p95_ms=800, error_rate=0.01, availability=0.99)
    target = Target(slo=slo)  # the monitor's redaction: the same as every other output's
    target.add_secrets([SECRET])
    t0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.timezone.utc)
    down = [0, 0, 1, 1, 1, 2, 4, 6]  # cycles down so far, one report every 12 cycles
    for n, d in enumerate(down, start=1):
        now = t0 + dt.timedelta(minutes=12 * n)
        inputs = SloInputs(
            start=now - dt.timedelta(days=30),
            end=now,
            first_sample=t0,
            cycles=12 * n,
            up_cycles=12 * n - d,
            cycles_1h=min(12 * n, 60),
            up_cycles_1h=min(12 * n, 60) - min(d, 3),
            probes=24 * n,
            probe_errors=d,
            p95_ms=120.0 + 10 * n,
            max_lag_s=30.0,
        )
        report = build_report("prod", inputs, slo, 30 * 86400, now)
        alerts = []
        if d >= 4:
            alerts = [
                Alert(
                    "prod/http.health",
                    "http.health",
                    "critical",
                    f"GET /api/health answers 503: token {SECRET}",
                    {},
                    now,
                    now,
                )
            ]
        write_report(report, tmp_path, target.redact, alerts)
    assert not report.passed
    assert isinstance(report.verdicts[0], Verdict)
    page = tmp_path / "slo-report.html"
    assert SECRET not in page.read_text()
    v = browser.visit(page, tmp_path / "slo-report.png")
    keep_screenshot(tmp_path / "slo-report.png", "slo-report.png")
    _clean(v)
    assert _visible_text(v, "#verdict") == "SLO MISSED"
    assert "uptime" in _visible_text(v, '#objectives [data-objective="uptime"]')
    assert "MISSED" in _visible_text(v, '#objectives [data-objective="uptime"]')
    assert "met" in _visible_text(v, '#objectives [data-objective="p95 latency"]')
    # Burn-down: two budgets, one point per report; burn rate: three series.
    charts = v.eval(
        "[...document.querySelectorAll('#budget svg')]"
        ".map(s => s.querySelectorAll('circle.pt').length)"
    )
    assert charts == [2 * len(down), 3 * len(down)]
    assert _count(v, "#budget .objective") == 2
    assert v.eval(
        "[...document.querySelectorAll('#alerts tr[data-alert]')].map(r => r.dataset.alert)"
    ) == ["http.health"]
    assert "***" in _visible_text(v, "#alerts")


def test_the_browser_sees_errors_and_requests(browser: Browser, tmp_path: Path) -> None:
    # The harness itself: a page that fetches and throws is caught (so a clean page means clean).
    page = tmp_path / "noisy.html"
    page.write_text(
        "<!doctype html><html><body><h1 id=verdict>x</h1>"
        '<img src="http://127.0.0.1:9/pixel.png"><script>throw new Error("boom")</script>'
        "</body></html>"
    )
    v = browser.visit(page, tmp_path / "noisy.png")
    assert any("boom" in e for e in v.errors), v.errors
    assert "http://127.0.0.1:9/pixel.png" in v.requests
