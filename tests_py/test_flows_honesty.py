"""The flow runner never reports a green it did not see: exceptions become recorded failures,
ports are range-checked, an SLO on zero samples never passes, CR/LF/NUL never reach the wire,
connection resets are counted (only idempotent requests are resent, and every resend is counted),
redirects leave credentials behind across origins, DNS waits are bounded, and the cookie jar
follows RFC 6265. All against loopback servers started here."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import urllib.parse
from pathlib import Path

import pytest
from fix_proxy import ResettingProxy

from blocktrust_native.errors import ConfigError, FlowSpecError
from blocktrust_native.flows import FlowSpec, Slo, run_flow, start_flow
from blocktrust_native.http import http_request
from tests_py.fix_http_server import MisbehavingServer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def srv():
    with MisbehavingServer() as s:
        yield s


@pytest.fixture(scope="module")
def other():
    """A second origin (another port on the same host)."""
    with MisbehavingServer() as s:
        yield s


def _spec(*steps: dict) -> FlowSpec:
    return FlowSpec.from_dict({"steps": list(steps)})


# ---- exceptions and ports


def test_out_of_range_port_in_the_base_url_is_refused_before_any_work():
    spec = _spec({"name": "get", "request": {"path": "/json"}})
    with pytest.raises(ConfigError, match="out of range"):
        run_flow(spec, "http://127.0.0.1:99999999999999999999", vus=2, duration=1)


def test_port_65617_is_not_port_81():
    with pytest.raises(ConfigError, match="65617 out of range"):
        http_request("GET", "http://127.0.0.1:65617/")


def test_a_step_url_with_a_bad_port_is_a_recorded_failure_not_a_silent_pass(srv):
    spec = _spec(
        {"name": "first", "request": {"path": "/json"}},
        {"name": "bad-port", "request": {"url": "http://127.0.0.1:99999999999999999999/x"}},
    )
    r = run_flow(spec, srv.url, vus=2, iterations=2)
    assert (r.iterations, r.failed_iterations) == (4, 4)
    assert r.step("bad-port").failures == 4
    assert all(f.step == "bad-port" and "out of range" in f.reason for f in r.failures)
    assert not Slo(p95_ms=800, error_rate=0.01, availability=0.995).evaluate(r).passed


# ---- an SLO on zero samples


def test_an_slo_on_a_run_that_measured_nothing_never_passes(srv):
    spec = _spec({"name": "slow", "request": {"path": "/serial?ms=5000"}})
    run = start_flow(spec, srv.url, vus=1, duration=30)
    run.cancel()
    report = run.wait()
    assert report.iterations == 0
    assert report.availability is None
    assert report.error_rate is None
    slo = Slo(p95_ms=800, error_rate=0.01, availability=0.995)
    result = slo.evaluate(report)
    assert not result.passed
    assert [v.samples for v in result.verdicts] == [0, 0, 0]
    assert all("no samples" in v.describe() for v in result.verdicts)
    assert not Slo(p99_ms=100, step="slow").evaluate(report).passed
    doc = json.loads(report.to_json(result))
    assert doc["slo"]["passed"] is False
    assert doc["slo"]["verdicts"][0]["measured"] is None
    assert 'failures="3"' in report.to_junit_xml(result)


def test_the_monitor_slo_report_on_an_empty_window_is_missed():
    from validate_all_flows.monitor.sloreport import build_report
    from validate_all_flows.monitor.store import SloInputs
    from validate_all_flows.target import DeploymentSlo

    now = dt.datetime.now(dt.timezone.utc)
    empty = SloInputs(now - dt.timedelta(days=1), now, None, 0, 0, 0, 0, 0, 0, None, None)
    report = build_report("test", empty, DeploymentSlo(), 86400, now)
    assert not report.passed
    assert [v.objective for v in report.verdicts if not v.passed] == [
        "uptime",
        "p95 latency",
        "error rate",
    ]
    assert "MISSED" in report.to_text()


# ---- CR, LF and NUL


@pytest.mark.parametrize(
    ("request_part", "where"),
    [
        ({"path": "/echo", "headers": {"X-A": "a\x00b"}}, "headers.X-A"),
        ({"path": "/echo\r\nX-Injected: 1"}, "request.path"),
        ({"path": "/echo", "content_type": "text/plain\r\nX-Injected: 1"}, "content_type"),
    ],
)
def test_literal_cr_lf_nul_are_spec_errors(request_part, where):
    with pytest.raises(FlowSpecError, match=where.replace(".", r"\.")):
        _spec({"name": "s", "request": request_part})


def test_a_captured_value_with_crlf_is_never_sent_as_a_header(srv):
    before = srv.hits.get("/echo", 0)
    spec = _spec(
        {
            "name": "take",
            "request": {"method": "POST", "path": "/echo", "body": "x\r\nX-Injected: yes"},
            "capture": {"v": {"json": "/body"}},
        },
        {"name": "use", "request": {"path": "/echo", "headers": {"X-Val": "{{v}}"}}},
    )
    r = run_flow(spec, srv.url, iterations=1)
    assert srv.hits["/echo"] == before + 1  # the second request never left
    assert r.step("use").failures == 1
    [f] = r.failures
    assert f.step == "use"
    assert "CR, LF or NUL" in f.reason
    assert "X-Val" in f.reason


def test_http_request_refuses_a_header_with_a_line_break(srv):
    with pytest.raises(ConfigError, match="CR, LF or NUL"):
        http_request("GET", srv.url + "/echo", headers={"X-A": "1\r\nX-Injected: 1"})


# ---- resets: counted, resent only when RFC 9110 allows it, every resend counted


def test_a_reset_post_is_a_counted_failure_never_resent(srv):
    spec = _spec(
        {
            "name": "post",
            "request": {"method": "POST", "path": "/echo", "json": {"n": 1}},
            "assert": {"status": 200},
        }
    )
    with ResettingProxy(srv.port, every=4) as proxy:
        r = run_flow(spec, proxy.url, vus=2, iterations=20, threads=1)
    st = r.step("post")
    assert proxy.reset_reused > 0  # the case the old client resent silently
    assert proxy.seen == st.attempts == st.requests == 40  # nothing was sent twice
    assert st.failures == r.failed_requests == proxy.resets
    assert r.retries == 0


def test_a_reset_get_on_a_reused_connection_is_resent_once_and_counted(srv):
    spec = _spec({"name": "get", "request": {"path": "/json"}, "assert": {"status": 200}})
    with ResettingProxy(srv.port, every=4) as proxy:
        r = run_flow(spec, proxy.url, vus=2, iterations=20, threads=1)
    st = r.step("get")
    assert proxy.reset_reused > 0
    assert st.retries == r.retries == proxy.reset_reused
    assert st.failures == proxy.reset_fresh  # a fresh connection's reset is a failure
    assert st.attempts == proxy.seen == st.requests + st.retries
    assert json.loads(r.to_json())["retries"] == proxy.reset_reused


# ---- redirects keep credentials on their origin


def _redirect(srv: MisbehavingServer, to: str) -> str:
    return "/redirect-to?" + urllib.parse.urlencode({"url": to, "status": "307"})


def test_redirect_to_another_origin_drops_credentials(srv, other):
    headers = {"Authorization": "Bearer s3cr3t-token", "Cookie": "sid=abc", "X-Keep": "1"}
    spec = _spec(
        {
            "name": "hop",
            "request": {
                "path": _redirect(srv, other.url + "/echo"),
                "headers": headers,
                "follow_redirects": True,
            },
            "capture": {"seen": {"json": "/headers"}},
        }
    )
    r = run_flow(spec, srv.url, iterations=1)
    assert r.failures == []
    seen = r.captures["seen"]
    assert seen["x-keep"] == "1"
    assert "authorization" not in seen
    assert "cookie" not in seen
    res = http_request(
        "GET",
        srv.url + _redirect(srv, other.url + "/echo"),
        headers={**headers, "Proxy-Authorization": "Basic eDp5"},
        follow_redirects=True,
    )
    got = json.loads(res["body"])["headers"]
    assert not {"authorization", "cookie", "proxy-authorization"} & set(got)


def test_redirect_on_the_same_origin_keeps_credentials(srv):
    spec = _spec(
        {
            "name": "hop",
            "request": {
                "path": _redirect(srv, "/echo"),
                "headers": {"Authorization": "Bearer s3cr3t-token"},
                "follow_redirects": True,
            },
            "capture": {"seen": {"json": "/headers"}},
        }
    )
    r = run_flow(spec, srv.url, iterations=1)
    assert r.captures["seen"]["authorization"] == "Bearer s3cr3t-token"


# ---- DNS bounded by the connect timeout


def _silent_dns(tmp_path: Path) -> tuple[socket.socket, Path]:
    """A UDP 'name server' on 127.0.0.2:53 that reads queries and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.2", 53))
    except OSError as exc:
        pytest.skip(f"cannot bind a name server on 127.0.0.2:53: {exc}")
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.2\noptions timeout:30 attempts:1\n")
    return sock, conf


def test_dns_resolution_is_bounded_by_the_connect_timeout(tmp_path):
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) for a private /etc/resolv.conf")
    sock, conf = _silent_dns(tmp_path)
    queries: list[bytes] = []
    threading.Thread(target=lambda: queries.append(sock.recv(512)), daemon=True).start()
    code = textwrap.dedent(
        """
        from blocktrust_native.http import http_request
        r = http_request("GET", "http://never-answers.blocktrust.test:8080/", connect_timeout=0.5)
        print(r["error"])
        """
    )
    script = f"mount --bind {conf} /etc/resolv.conf && exec {sys.executable} -c '{code}'"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    try:
        out = subprocess.run(
            ["unshare", "-m", "sh", "-c", script],
            capture_output=True,
            text=True,
            timeout=25,  # the name server's own timeout is 30 s: only our bound ends it sooner
            env=env,
        )
    finally:
        sock.close()
    if "mount" in out.stderr and out.returncode != 0:
        pytest.skip(f"no private mount namespace here: {out.stderr.strip()}")
    assert out.returncode == 0, out.stderr
    assert "resolve never-answers.blocktrust.test: timed out" in out.stdout
    assert queries  # the name was really asked of our silent server


# ---- the cookie jar (RFC 6265)


def _set(path: str, *values: str) -> str:
    return path + "?" + urllib.parse.urlencode([("h", v) for v in values])


def _cookies_seen(srv: MisbehavingServer, steps: list[dict], base: str | None = None) -> dict:
    r = run_flow(_spec(*steps), base or srv.url, iterations=1)
    assert r.failures == []
    return r.captures


def _echo(name: str, url: str) -> dict:
    return {"name": name, "request": {"url": url}, "capture": {name: {"json": "/headers"}}}


def test_cookie_path_and_default_path(srv):
    got = _cookies_seen(
        srv,
        [
            {
                "name": "set",
                "request": {
                    "path": _set("/set-cookie/dir/page", "a=1; Path=/echo/a", "d=2", "r=3; Path=/")
                },
            },
            _echo("in_a", srv.url + "/echo/a/x"),
            _echo("in_ab", srv.url + "/echo/ab"),
            _echo("in_dir", srv.url + "/set-cookie/dir/other"),
            _echo("root", srv.url + "/echo"),
        ],
    )
    assert got["in_a"]["cookie"] == "a=1; r=3"  # longer path first
    assert got["in_ab"]["cookie"] == "r=3"  # /echo/a does not path-match /echo/ab
    assert got["in_dir"]["cookie"] == "d=2; r=3"  # default path /set-cookie/dir
    assert got["root"]["cookie"] == "r=3"


def test_cookie_host_only_and_foreign_domains(srv):
    local = srv.url.replace("127.0.0.1", "localhost")
    got = _cookies_seen(
        srv,
        [
            {
                "name": "set",
                "request": {"path": _set("/set-cookie", "h=1", "f=2; Domain=example.com")},
            },
            _echo("same", srv.url + "/echo"),
            _echo("other_host", local + "/echo"),
        ],
    )
    assert got["same"]["cookie"] == "h=1"  # the foreign Domain cookie was ignored
    assert "cookie" not in got["other_host"]  # host-only: not for another host name


def test_cookie_expiry_and_empty_values(srv):
    future = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).strftime(
        "%a, %d %b %Y %H:%M:%S GMT"
    )
    got = _cookies_seen(
        srv,
        [
            {
                "name": "set",
                "request": {
                    "path": _set(
                        "/set-cookie",
                        "gone=1",
                        "old=1",
                        "keep=1",
                        "empty=x",
                        "later=1",
                    )
                },
            },
            {
                "name": "expire",
                "request": {
                    "path": _set(
                        "/set-cookie",
                        "gone=; Max-Age=0",
                        "old=1; Expires=Thu, 01 Jan 1970 00:00:01 GMT",
                        "empty=",
                        f"later=2; Expires={future}",
                        "keep=2; Max-Age=3600; Expires=Thu, 01 Jan 1970 00:00:01 GMT",
                    )
                },
            },
            _echo("after", srv.url + "/echo"),
        ],
    )
    assert sorted(got["after"]["cookie"].split("; ")) == ["empty=", "keep=2", "later=2"]


def test_secure_cookies_only_over_https(srv, tmp_path):
    # Over plain http a Secure cookie is refused outright (RFC 6265bis), so it can never be
    # planted for the https site either.
    got = _cookies_seen(
        srv,
        [
            {"name": "set", "request": {"path": _set("/set-cookie", "s=1; Secure", "p=1")}},
            _echo("after", srv.url + "/echo"),
        ],
    )
    assert got["after"]["cookie"] == "p=1"
