"""The native flow runner end to end against our own server on loopback."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
import xml.etree.ElementTree as ET

import pytest
from fix_wait import wait_until

from blocktrust_native.errors import ConfigError, HistogramFormatError
from blocktrust_native.flows import ErrorBudget, FlowSpec, Histogram, Slo, run_flow, start_flow
from tests_py.fix_http_server import MisbehavingServer

LOGIN_FLOW = {
    "name": "login",
    "vars": {"user": "{{email}}"},
    "steps": [
        {
            "name": "login",
            "request": {"method": "POST", "path": "/login", "json": {"user": "{{user}}"}},
            "capture": {"token": {"json": "/access_token"}},
            "assert": {"status": 200, "headers": {"content-type": {"contains": "json"}}},
        },
        {
            "name": "me-bearer",
            "request": {"path": "/me", "headers": {"Authorization": "Bearer {{token}}"}},
            "assert": {"status": 200, "json": {"/me": "{{user}}"}},
        },
        {
            "name": "me-cookie",
            "request": {"path": "/me"},
            "assert": {"status": [200], "json": {"/me": {"matches": "@example.test$"}}},
        },
    ],
}


@pytest.fixture(scope="module")
def srv():
    with MisbehavingServer() as s:
        yield s


def test_login_flow_captures_token_and_uses_cookie_jar(srv):
    r = run_flow(FlowSpec.from_dict(LOGIN_FLOW), srv.url, vus=8, iterations=25)
    assert r.failures == []
    assert r.iterations == 200
    assert r.failed_iterations == 0
    assert r.requests == 600
    assert r.status_counts() == {200: 600}
    st = r.step("me-cookie")
    assert st.requests == 200
    assert st.histogram().count == 200
    assert 0 < st.latency["p50_ms"] <= st.latency["p99_ms"] <= st.latency["max_ms"]
    # Keep-alive: far fewer connections than requests.
    assert srv.connections < 100


def test_failed_assert_is_recorded_with_step_reason_and_redacted_excerpt(srv):
    spec = FlowSpec.from_dict(
        {
            "steps": [
                {
                    "name": "login",
                    "request": {"method": "POST", "path": "/login", "json": {"user": "x"}},
                    "assert": {"json": {"/access_token": "never"}},
                },
            ]
        }
    )
    r = run_flow(spec, srv.url, vus=1, iterations=3)
    assert r.failed_iterations == 3
    assert len(r.failures) == 3
    f = r.failures[0]
    assert f.step == "login"
    assert "assert login: json /access_token equals" in f.reason
    assert "Set-Cookie: [redacted]" in f.excerpt
    assert "[redacted]" in f.excerpt
    data = json.loads(r.to_json())
    # The histograms' base64 may happen to be 32 characters long too: not what is looked for.
    text = re.sub(r'"histogram": "[^"]*"', "", json.dumps(data))
    token_values = [v for v in text.split('"') if len(v) == 32]
    assert token_values == []  # no token or session id leaks into the report


def test_transport_failures_are_counted_not_raised(srv):
    spec = FlowSpec.from_dict(
        {
            "steps": [
                {"name": "garbage", "request": {"path": "/garbage"}},
            ]
        }
    )
    r = run_flow(spec, srv.url, vus=2, iterations=3)
    st = r.step("garbage")
    assert st.failures == 6
    assert sum(st.errors.values()) == 6
    assert r.failures[0].status == 0
    assert r.failures[0].reason.startswith("read response")


def test_form_raw_multipart_bodies(srv, tmp_path):
    (tmp_path / "doc.txt").write_text("hello document")
    spec = FlowSpec.from_dict(
        {
            "steps": [
                {
                    "name": "form",
                    "request": {"method": "POST", "path": "/echo", "form": {"a b": "c&d"}},
                    "assert": {"json": {"/body": "a+b=c%26d"}},
                },
                {
                    "name": "raw",
                    "request": {
                        "method": "PUT",
                        "path": "/echo",
                        "body": "it={{iteration}}",
                        "content_type": "text/plain",
                    },
                    "assert": {
                        "json": {
                            "/body": {"matches": "^it=[0-9]+$"},
                            "/headers/content-type": "text/plain",
                        }
                    },
                },
                {
                    "name": "multi",
                    "request": {
                        "method": "POST",
                        "path": "/echo",
                        "multipart": [
                            {"name": "kind", "value": "vu{{vu}}"},
                            {"name": "doc", "file": "doc.txt", "content_type": "text/plain"},
                            {"name": "blob", "bytes": 64},
                        ],
                    },
                    "assert": {
                        "json": {
                            "/body": {"contains": "hello document"},
                            "/headers/content-type": {"matches": "^multipart/form-data; boundary="},
                        }
                    },
                },
            ]
        },
        base_dir=tmp_path,
    )
    r = run_flow(spec, srv.url, vus=2, iterations=2)
    assert r.failures == [], r.failures


def test_chunked_responses_and_header_asserts(srv):
    spec = FlowSpec.from_dict(
        {
            "steps": [
                {
                    "name": "c",
                    "request": {"path": "/chunked"},
                    "assert": {
                        "json": {
                            "/chunked": True,
                            "/pad": {"exists": True},
                            "/nope": {"exists": False},
                        },
                        "headers": {"transfer-encoding": "chunked"},
                        "latency_ms": 5000,
                    },
                }
            ]
        }
    )
    r = run_flow(spec, srv.url, vus=2, iterations=2)
    assert r.failures == [], r.failures


def test_duration_run_and_progress_callback(srv):
    seen = []
    spec = FlowSpec.from_dict({"steps": [{"name": "j", "request": {"path": "/json"}}]})
    r = run_flow(spec, srv.url, vus=4, duration=1.3, progress=seen.append, progress_interval=0.3)
    assert 1.2 < r.elapsed_s < 4
    assert r.iterations > 10
    assert len(seen) >= 2
    assert seen[-1]["requests"] >= seen[0]["requests"] > 0


def test_open_model_latency_includes_queueing(srv):
    # 100 iterations/s against a server that serves one request per 20 ms (50/s) with at most
    # 4 in flight: iterations queue, and flow latency counts from each scheduled start.
    spec = FlowSpec.from_dict({"steps": [{"name": "s", "request": {"path": "/serial?ms=20"}}]})
    r = run_flow(spec, srv.url, vus=4, rate=100, duration=1.5)
    assert r.model == "open"
    assert r.iterations > 40
    flow = r.flow_latency
    step = r.step("s").latency
    # A closed-loop tool would report ~ step latency; scheduled-start latency is much larger.
    assert flow["p90_ms"] > 3 * step["p50_ms"]
    assert flow["max_ms"] > 300


def test_open_model_keeps_the_rate_when_the_server_is_fast(srv):
    spec = FlowSpec.from_dict({"steps": [{"name": "j", "request": {"path": "/json"}}]})
    r = run_flow(spec, srv.url, vus=10, rate=200, iterations=200)
    assert r.iterations == 200
    assert 0.8 < r.elapsed_s < 3


def test_cancel_returns_partial_report(srv):
    spec = FlowSpec.from_dict({"steps": [{"name": "j", "request": {"path": "/json"}}]})
    run = start_flow(spec, srv.url, vus=4, duration=60)
    wait_until(lambda: run.progress()["iterations"] > 0, timeout=30, what="a first iteration")
    t0 = time.monotonic()
    run.cancel()
    r = run.wait()
    assert time.monotonic() - t0 < 2
    assert r.cancelled
    assert r.iterations > 0
    assert r.requests >= r.iterations


def test_progress_returning_false_cancels(srv):
    spec = FlowSpec.from_dict({"steps": [{"name": "j", "request": {"path": "/json"}}]})
    r = run_flow(spec, srv.url, vus=2, duration=60, progress=lambda p: False, progress_interval=0.2)
    assert r.cancelled
    assert r.elapsed_s < 5


def test_ctrl_c_stops_cleanly_with_partial_report(srv):
    spec = FlowSpec.from_dict({"steps": [{"name": "t", "request": {"path": "/json"}}]})
    # Python's own Ctrl-C handler, even when this process was started with SIGINT ignored (as a
    # background job of a non-interactive shell is).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    # Ctrl-C once run_flow waits for the run: its first progress call says it does.
    waiting = threading.Event()

    def ctrl_c() -> None:
        if waiting.wait(30):
            os.kill(os.getpid(), signal.SIGINT)

    killer = threading.Thread(target=ctrl_c, daemon=True)
    try:
        killer.start()
        r = run_flow(
            spec,
            srv.url,
            vus=2,
            duration=60,
            progress=lambda _p: waiting.set(),
            progress_interval=0.1,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    killer.join(5)
    assert r.interrupted
    assert r.cancelled
    assert r.elapsed_s < 5


def test_hung_server_is_bounded_by_timeouts(srv):
    spec = FlowSpec.from_dict(
        {"steps": [{"name": "t", "request": {"path": "/trickle", "timeout": 0.5}}]}
    )
    r = run_flow(spec, srv.url, vus=3, iterations=1)
    assert r.failed_iterations == 3
    assert "timed out" in r.failures[0].reason


def test_bad_run_arguments_raise_config_error(srv):
    spec = FlowSpec.from_dict({"steps": [{"name": "j", "request": {"path": "/json"}}]})
    with pytest.raises(ConfigError, match="iterations or duration"):
        run_flow(spec, srv.url)
    with pytest.raises(ConfigError, match="vus"):
        run_flow(spec, srv.url, vus=0, iterations=1)
    with pytest.raises(ConfigError, match="base_url"):
        run_flow(spec, "localhost:80", iterations=1)


def test_slo_verdicts_budget_and_junit(srv):
    spec = FlowSpec.from_dict(LOGIN_FLOW)
    r = run_flow(spec, srv.url, vus=4, iterations=10)
    res = Slo(p95_ms=5000, p999_ms=10000, error_rate=0.01, availability=0.99).evaluate(r)
    assert res.passed
    assert [v.objective for v in res.verdicts] == [
        "flow p95 latency",
        "flow p99.9 latency",
        "flow error rate",
        "flow availability",
    ]
    assert res.budget_remaining == 1.0
    assert res.burn_rate == 0.0
    strict = Slo(step="login", p50_ms=0.001).evaluate(r)
    assert not strict.passed
    assert strict.verdicts[0].measured > 0.001
    xml = ET.fromstring(r.to_junit_xml(Slo(p99_ms=0.001, error_rate=0.5).evaluate(r)))
    suite = xml.find("testsuite")
    cases = suite.findall("testcase")
    assert {c.get("classname") for c in cases} == {"login.asserts", "login.slo"}
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == ["flow p99 latency"]
    assert suite.get("failures") == "1"
    doc = json.loads(r.to_json(Slo(error_rate=0.01).evaluate(r)))
    assert doc["schema"] == 1
    assert doc["slo"]["passed"]
    assert doc["steps"][0]["name"] == "login"
    # The Slo itself, as before the report took the finished result: the same, with a warning.
    slo = Slo(p99_ms=0.001, error_rate=0.5)
    for method in (r.to_dict, r.to_json, r.to_junit_xml):
        with pytest.warns(DeprecationWarning, match="SloResult"):
            old = method(slo)
        assert old == method(slo.evaluate(r))


def test_error_budget_over_repeated_runs(srv):
    ok = run_flow(FlowSpec.from_dict(LOGIN_FLOW), srv.url, vus=1, iterations=9)
    bad = run_flow(
        FlowSpec.from_dict(
            {
                "steps": [
                    {"name": "x", "request": {"path": "/status/500"}, "assert": {"status": 200}}
                ]
            }
        ),
        srv.url,
        vus=1,
        iterations=1,
    )
    b = ErrorBudget(Slo(availability=0.8))
    b.add(ok)
    assert b.remaining == 1.0
    b.add(bad)  # 1 failure in 10 iterations against 20 % allowed: half the budget burnt
    assert b.burn_rate == pytest.approx(0.5)
    assert b.remaining == pytest.approx(0.5)
    with pytest.raises(ConfigError):
        Slo(p95=3)


def test_histogram_bytes_merge_across_reports(srv):
    spec = FlowSpec.from_dict({"steps": [{"name": "j", "request": {"path": "/json"}}]})
    a = run_flow(spec, srv.url, vus=1, iterations=5).flow_histogram()
    b = run_flow(spec, srv.url, vus=1, iterations=7).flow_histogram()
    a.merge(Histogram.from_bytes(b.to_bytes()))
    assert a.count == 12
    with pytest.raises(HistogramFormatError):
        Histogram.from_bytes(b"junk")
