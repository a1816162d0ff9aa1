"""Flow runner features for deploy checks, end to end on loopback: polling (retry), request signing
(hmac), values given from Python, sub-flows run alone, captures handed back, file parts whose
content is a variable."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid

import pytest

from blocktrust_native.errors import FlowSpecError
from blocktrust_native.flows import FlowSpec, run_flow
from tests_py.fix_http_server import MisbehavingServer

SECRET = "whsec-" + "9f8e7d6c5b4a" * 3


@pytest.fixture(scope="module")
def srv():
    with MisbehavingServer() as s:
        yield s


def _poll(n: int, retry: dict) -> dict:
    key = uuid.uuid4().hex
    return {
        "steps": [
            {
                "name": "poll",
                "request": {"path": f"/ready-after/{n}/{key}"},
                "retry": retry,
                "assert": {"status": 200, "json": {"/ready": True}},
                "capture": {"hits": {"json": "/hits"}},
            }
        ]
    }


def test_retry_polls_until_the_asserts_pass_and_counts_one_request(srv):
    r = run_flow(
        FlowSpec.from_dict(_poll(4, {"attempts": 10, "interval": 0.01})), srv.url, iterations=1
    )
    st = r.step("poll")
    assert r.failures == []
    assert (st.requests, st.attempts, st.failures) == (1, 4, 0)
    assert st.status_counts == {200: 1}
    assert st.asserts[0]["failed"] == 0
    assert r.captures == {"hits": 4}
    assert r.error_rate == 0


def test_retry_that_runs_out_records_one_failure_with_the_attempts(srv):
    r = run_flow(
        FlowSpec.from_dict(_poll(50, {"attempts": 3, "interval": 0})), srv.url, iterations=1
    )
    st = r.step("poll")
    assert (st.requests, st.attempts, st.failures) == (1, 3, 1)
    assert r.failures[0].reason.endswith("got false (after 3 attempts in 0.0 s)")
    assert r.captures == {}  # a failing step captures nothing


def test_retry_budget_can_come_from_a_given_value(srv):
    spec = FlowSpec.from_dict(
        _poll(10**6, {"within": "{{budget}}", "interval": 0.02}), vars={"budget": 0.2}
    )
    r = run_flow(spec, srv.url, iterations=1)
    st = r.step("poll")
    assert st.failures == 1
    assert st.attempts >= 2
    assert st.latency["max_ms"] >= 180  # the step's latency spans every attempt


@pytest.mark.parametrize(
    ("hmac_spec", "digestmod", "encode"),
    [
        ({"algorithm": "sha256"}, hashlib.sha256, lambda d: d.hex()),
        ({"algorithm": "sha1"}, hashlib.sha1, lambda d: d.hex()),
        ({"algorithm": "sha512"}, hashlib.sha512, lambda d: d.hex()),
        (
            {"algorithm": "sha256", "encoding": "base64", "prefix": "sha256="},
            hashlib.sha256,
            lambda d: "sha256=" + base64.b64encode(d).decode(),
        ),
    ],
)
def test_hmac_signs_the_exact_body_sent(srv, hmac_spec, digestmod, encode):
    spec = FlowSpec.from_dict(
        {
            "steps": [
                {
                    "name": "hook",
                    "request": {
                        "method": "POST",
                        "path": "/echo",
                        "json": {"applicantId": "{{uuid}}", "n": "{{n}}", "t": "{{timestamp_ms}}"},
                        "hmac": {"header": "X-Payload-Digest", "secret": "{{secret}}", **hmac_spec},
                    },
                    "assert": {"status": 200},
                    "capture": {"echo": {"body": True}},
                }
            ]
        },
        vars={"secret": SECRET, "n": 5},
    )
    r = run_flow(spec, srv.url, iterations=1)
    assert r.failures == []
    echo = json.loads(r.captures["echo"])
    sent = echo["body"].encode()
    assert json.loads(sent)["n"] == 5  # a given value keeps its JSON type
    want = encode(hmac.new(SECRET.encode(), sent, digestmod).digest())
    assert echo["headers"]["x-payload-digest"] == want
    assert SECRET not in r.to_json()
    assert SECRET not in r.to_junit_xml()


def test_the_secret_never_shows_in_failures_or_reports(srv):
    spec = FlowSpec.from_dict(
        {
            "steps": [
                {
                    "name": "hook",
                    "request": {
                        "method": "POST",
                        "path": "/echo",
                        "body": "payload",
                        "hmac": {"header": "X-Sig", "secret": "{{secret}}"},
                    },
                    "assert": {"json": {"/method": "GET"}},
                }
            ]
        },
        vars={"secret": SECRET},
    )
    r = run_flow(spec, srv.url, iterations=1)
    assert len(r.failures) == 1
    assert SECRET not in repr(r.failures) + r.to_json() + r.to_junit_xml() + repr(r)
    assert SECRET not in repr(spec)


def test_captures_come_back_but_stay_out_of_the_reports(srv):
    spec = FlowSpec.from_dict(
        {
            "steps": [
                {
                    "name": "login",
                    "request": {"method": "POST", "path": "/login", "json": {"user": "x"}},
                    "capture": {"token": {"json": "/access_token"}, "hdrs": "headers"},
                },
                {"name": "poll", "request": {"path": "/ready-after/1/{{token}}"}},
            ]
        }
    )
    r = run_flow(spec, srv.url, vus=2, iterations=3)
    assert spec.capture_names == ["hdrs", "token"]
    assert set(r.captures) == {"hdrs", "token"}
    assert r.captures["hdrs"]["content-type"] == "application/json"
    assert r.captures["hdrs"]["set-cookie"].startswith("sid=")  # lower-case names
    token = r.captures["token"]
    assert token in srv.sessions
    for text in (r.to_json(), r.to_junit_xml(), repr(r)):
        assert token not in text
        assert "captures" not in text


def test_a_file_part_can_take_its_content_from_a_variable(srv):
    document = f"%PDF-1.7\n% probe {uuid.uuid4().hex}\n"
    spec = FlowSpec.from_dict(
        {
            "steps": [
                {
                    "name": "sign",
                    "request": {
                        "method": "POST",
                        "path": "/echo",
                        "multipart": [
                            {"name": "password", "value": "pw"},
                            {
                                "name": "file",
                                "value": "{{document}}",
                                "filename": "probe.pdf",
                                "content_type": "application/pdf",
                            },
                        ],
                    },
                    "capture": {"echo": {"body": True}},
                }
            ]
        },
        vars={"document": document},
    )
    r = run_flow(spec, srv.url, iterations=1)
    body = json.loads(r.captures["echo"])["body"]
    head = 'Content-Disposition: form-data; name="file"; filename="probe.pdf"\r\n'
    assert head + "Content-Type: application/pdf\r\n\r\n" + document + "\r\n" in body
    assert 'name="password"\r\n\r\npw\r\n' in body
    # The caller knows the exact bytes sent, so it can check the service's hash of them.
    sent = body.split("application/pdf\r\n\r\n", 1)[1].split("\r\n--", 1)[0]
    assert hashlib.sha256(sent.encode()).digest() == hashlib.sha256(document.encode()).digest()


TWO_PARTS = {
    "name": "two",
    "vars": {"user": "u-{{uuid}}", "unset": "{{env.BLOCKTRUST_TEST_SURELY_UNSET}}"},
    "flows": {
        "login": {
            "exports": ["token"],
            "steps": [
                {
                    "name": "login",
                    "request": {"method": "POST", "path": "/login", "json": {"user": "{{user}}"}},
                    "capture": {"token": {"json": "/access_token"}, "private": "status"},
                }
            ],
        },
        "me": {
            "params": ["token"],
            "exports": ["me"],
            "steps": [
                {
                    "name": "me",
                    "request": {"path": "/me", "headers": {"Authorization": "Bearer {{token}}"}},
                    "assert": {"status": 200},
                    "capture": {"me": {"json": "/me"}},
                }
            ],
        },
    },
    "steps": [{"include": "login"}, {"include": "me", "with": {"token": "{{token}}"}}],
}


def test_sub_flows_run_alone_with_values_carried_between_them(srv):
    # The unset environment variable is fine: a given value replaces that entry.
    spec = FlowSpec.from_dict(TWO_PARTS, vars={"unset": "given", "user": "{{literal}}"})
    assert spec.subflow_names == ["login", "me"]
    assert spec.subflow_interface("me") == (["token"], ["me"])
    first = spec.subflow("login")
    assert first.step_names == ["login/login"]
    assert first.name == "two/login"
    r1 = run_flow(first, srv.url, iterations=1)
    assert r1.captures.keys() == {"token"}  # private captures stay private
    second = spec.subflow("me", vars=r1.captures)
    r2 = run_flow(second, srv.url, iterations=1)
    assert r2.failures == []
    assert r2.captures == {"me": "{{literal}}"}  # given values are never rendered


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.subflow("nope"), "flows: no sub-flow named 'nope'"),
        (lambda s: s.subflow("me"), "flows.me.params: no value for 'token' (give it in vars)"),
        (lambda s: s.subflow("login", vars={"1x": 1}), "given vars.1x: not a valid variable name"),
        (lambda s: s.subflow("login", vars={"x": object()}), "given vars.x: not representable"),
    ],
)
def test_sub_flow_mistakes_name_the_place(call, message):
    spec = FlowSpec.from_dict(TWO_PARTS, vars={"unset": ""})
    with pytest.raises(FlowSpecError) as e:
        call(spec)
    assert str(e.value).startswith(message)


def _step(**kw):
    return {"steps": [{"name": "s", "request": {"method": "POST", "path": "/x"}, **kw}]}


def _req(**kw):
    return {"steps": [{"name": "s", "request": {"method": "POST", "path": "/x", **kw}}]}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (_step(retry=5), "steps[0].retry: must be a mapping"),
        (_step(retry={"interval": 1}), "steps[0].retry: give attempts or within"),
        (_step(retry={"attempts": 0}), "steps[0].retry.attempts: must be a whole number"),
        (_step(retry={"attempts": 2.5}), "steps[0].retry.attempts: must be a whole number"),
        (_step(retry={"within": "60"}), "steps[0].retry.within: must be a number of seconds"),
        (_step(retry={"within": "{{w}}"}), "steps[0].retry.within: unknown variable {{w}}"),
        (_step(retry={"within": 5, "every": 1}), "steps[0].retry: unknown key 'every'"),
        (_req(hmac={"secret": "k"}), "steps[0].request.hmac.header: must be a header name"),
        (
            _req(hmac={"header": "X-Sig", "secret": "k", "algorithm": "md5"}),
            "steps[0].request.hmac.algorithm: must be one of sha1, sha256",
        ),
        (_req(hmac={"header": "X-Sig"}), "steps[0].request.hmac.secret: must be a non-empty"),
        (
            _req(hmac={"header": "X-Sig", "secret": "{{nope}}"}),
            "steps[0].request.hmac.secret: unknown variable {{nope}}",
        ),
        (
            _req(hmac={"header": "X-Sig", "secret": "k", "encoding": "hex2"}),
            "steps[0].request.hmac.encoding: must be hex or base64",
        ),
        (
            _step(capture={"h": {"headers": 1, "x": 2}}),
            "steps[0].capture.h: must be one of {json: pointer}, {header: name}, status, headers",
        ),
        (
            _req(multipart=[{"name": "f", "value": "v", "filename": 'a"b'}]),
            "steps[0].request.multipart[0].filename: must be a name without quotes",
        ),
        (
            _req(multipart=[{"name": "f", "value": "v", "content_type": "text/plain"}]),
            "steps[0].request.multipart[0].content_type: a value part needs a filename",
        ),
    ],
)
def test_new_spec_keys_are_validated_naming_the_place(spec, message):
    with pytest.raises(FlowSpecError) as e:
        FlowSpec.from_dict(spec)
    assert str(e.value).startswith(message), str(e.value)
