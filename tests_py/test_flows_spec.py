"""FlowSpec loading and every error path: each names the exact place in the spec."""

from __future__ import annotations

import json
import re

import pytest

from blocktrust_native.errors import FlowSpecError
from blocktrust_native.flows import FlowSpec


def step(**kw):
    base = {"name": "s", "request": {"method": "GET", "path": "/x"}}
    base.update(kw)
    return base


def spec_with(*steps, **top):
    return {"steps": list(steps), **top}


def test_minimal_spec_compiles():
    s = FlowSpec.from_dict(spec_with(step()))
    c = s.compiled()
    assert c["steps"][0]["method"] == "GET"
    assert c["steps"][0]["url"] == "/x"
    assert s.step_names == ["s"]


def test_load_yaml_and_json(tmp_path):
    (tmp_path / "f.yaml").write_text(
        "name: y\nsteps:\n  - name: a\n    request: {path: /a}\n    assert: {status: 2xx}\n"
    )
    assert FlowSpec.load(tmp_path / "f.yaml").name == "y"
    (tmp_path / "f.json").write_text(json.dumps(spec_with(step(), name="j")))
    assert FlowSpec.load(tmp_path / "f.json").name == "j"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([], "spec: must be a mapping"),
        ({}, "steps: must be a non-empty list"),
        ({"steps": [], "x": 1}, "spec: unknown key 'x'"),
        (
            spec_with(step(), step(capture={"token": {"json": "access_token"}})),
            "steps[1].capture.token: not a JSON pointer",
        ),
        (
            spec_with(step(capture={"token": {"json": "/a~2b"}})),
            "steps[0].capture.token: not a JSON pointer",
        ),
        (
            spec_with(step(capture={"t": {"cookie": "x"}})),
            "steps[0].capture.t: unknown capture source 'cookie'",
        ),
        (
            spec_with(step(request={"method": "FETCH", "path": "/"})),
            "steps[0].request.method: not an HTTP method",
        ),
        (spec_with(step(request={"path": "x"})), "steps[0].request.path: must start with /"),
        (spec_with(step(request={"url": "ftp://x"})), "steps[0].request.url: must be an http"),
        (
            spec_with(step(request={"path": "/", "url": "http://x"})),
            "steps[0].request: give exactly one of path or url",
        ),
        (
            spec_with(step(request={"path": "/{{nope}}"})),
            "steps[0].request.path: unknown variable {{nope}}",
        ),
        (
            spec_with(step(request={"path": "/{{env.BT_SURELY_UNSET_VAR}}"})),
            "environment variable BT_SURELY_UNSET_VAR is not set",
        ),
        (spec_with(step(request={"path": "/{{a"})), "unterminated {{"),
        (
            spec_with(step(request={"path": "/", "headers": {"A": "x\r\nB: y"}})),
            "steps[0].request.headers.A: must not contain CR, LF or NUL",
        ),
        (
            spec_with(step(request={"path": "/", "headers": {"bad name": "x"}})),
            "steps[0].request.headers: bad header name",
        ),
        (
            spec_with(step(request={"path": "/", "json": {}, "form": {}})),
            "steps[0].request: give only one body",
        ),
        (
            spec_with(step(request={"path": "/", "json": {"a": "{{who}}"}})),
            "steps[0].request.json.a: unknown variable {{who}}",
        ),
        (
            spec_with(step(request={"path": "/", "body": {"a": 1}})),
            "steps[0].request.body: must be a string",
        ),
        (
            spec_with(step(request={"path": "/", "timeout": -1})),
            "steps[0].request.timeout: must be seconds",
        ),
        (
            spec_with(step(request={"path": "/", "multipart": [{"name": "f"}]})),
            "steps[0].request.multipart[0]: give exactly one of value, file or bytes",
        ),
        (
            spec_with(
                step(request={"path": "/", "multipart": [{"name": "f", "file": "nope.bin"}]})
            ),
            "steps[0].request.multipart[0].file: cannot read",
        ),
        (spec_with(step(request={"path": "/"}, extra=1)), "steps[0]: unknown key 'extra'"),
        (spec_with(step(**{"assert": {"status": 999}})), "steps[0].assert.status: not a status"),
        (spec_with(step(**{"assert": {"status": "6xx"}})), "steps[0].assert.status: not a status"),
        (
            spec_with(step(**{"assert": {"json": {"me": "a"}}})),
            "steps[0].assert.json.me: not a JSON pointer",
        ),
        (
            spec_with(step(**{"assert": {"json": {"/n": {"gt": "x"}}}})),
            "steps[0].assert.json./n.gt: must be a number",
        ),
        (
            spec_with(step(**{"assert": {"json": {"/n": {"matches": "("}}}})),
            "steps[0].assert.json./n.matches: not a valid regular expression",
        ),
        (
            spec_with(step(**{"assert": {"json": {"/n": {"gt": 1, "bogus": 2}}}})),
            "steps[0].assert.json./n: unknown operator 'bogus'",
        ),
        (spec_with(step(**{"assert": {"latency_ms": 0}})), "steps[0].assert.latency_ms: must be"),
        (spec_with(step(**{"assert": {"speed": 1}})), "steps[0].assert: unknown key 'speed'"),
        (spec_with(step(), vars={"vu": "x"}), "vars.vu: not a valid variable name"),
        (spec_with(step(), vars={"a": "{{b}}"}), "vars.a: unknown variable {{b}}"),
        (spec_with({"include": "login"}), "steps[0].include: no sub-flow named 'login'"),
        (
            spec_with(
                {"include": "l", "with": {}}, flows={"l": {"params": ["u"], "steps": [step()]}}
            ),
            "steps[0].with: missing param 'u'",
        ),
        (
            spec_with({"include": "l", "with": {"z": 1}}, flows={"l": {"steps": [step()]}}),
            "steps[0].with.z: sub-flow 'l' has no param 'z'",
        ),
        (
            spec_with({"include": "l", "as": {"t": "x"}}, flows={"l": {"steps": [step()]}}),
            "steps[0].as.t: sub-flow 'l' does not export 't'",
        ),
        (
            spec_with({"include": "l"}, flows={"l": {"steps": [step(request={"path": "/{{q}}"})]}}),
            "flows.l.steps[0].request.path: unknown variable {{q}}",
        ),
        (
            spec_with({"include": "l"}, flows={"l": {"exports": ["t"], "steps": [step()]}}),
            "flows.l.exports: 't' is never captured",
        ),
    ],
)
def test_spec_errors_name_the_place(spec, message):
    with pytest.raises(FlowSpecError) as e:
        FlowSpec.from_dict(spec)
    assert message in str(e.value)


def test_capture_makes_a_variable_known_only_afterwards():
    s1 = step(capture={"tok": {"json": "/t"}})
    s2 = step(request={"path": "/", "headers": {"Authorization": "Bearer {{tok}}"}})
    FlowSpec.from_dict(spec_with(s1, s2))
    with pytest.raises(FlowSpecError, match=r"steps\[0\].request.headers.Authorization"):
        FlowSpec.from_dict(spec_with(s2, s1))


def test_bad_files_name_the_file(tmp_path):
    (tmp_path / "bad.yaml").write_text("steps: [\n")
    with pytest.raises(FlowSpecError, match=r"bad\.yaml: not valid YAML"):
        FlowSpec.load(tmp_path / "bad.yaml")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(FlowSpecError, match=r"bad\.json: not valid JSON"):
        FlowSpec.load(tmp_path / "bad.json")
    with pytest.raises(FlowSpecError, match="cannot read"):
        FlowSpec.load(tmp_path / "missing.yaml")


def test_sub_flow_renames_exports_and_hides_private_captures():
    login = {
        "params": ["user"],
        "exports": ["token"],
        "steps": [
            step(name="pre", capture={"nonce": {"json": "/n"}}),
            step(
                name="login",
                request={
                    "method": "POST",
                    "path": "/login",
                    "json": {"user": "{{user}}", "n": "{{nonce}}"},
                },
                capture={"token": {"json": "/access_token"}},
            ),
        ],
    }
    s = FlowSpec.from_dict(
        spec_with(
            {"include": "login", "with": {"user": "{{who}}"}, "as": {"token": "auth"}},
            step(
                name="me", request={"path": "/me", "headers": {"Authorization": "Bearer {{auth}}"}}
            ),
            vars={"who": "alice"},
            flows={"login": login},
        )
    )
    c = s.compiled()
    assert s.step_names == ["login/pre", "login/login", "me"]
    assert c["steps"][1]["body"]["value"]["user"] == "{{who}}"
    assert c["steps"][1]["captures"][0]["var"] == "auth"
    private = c["steps"][0]["captures"][0]["var"]
    assert private.startswith("_login")
    assert c["steps"][1]["body"]["value"]["n"] == "{{" + private + "}}"
    # The caller cannot see the private capture.
    with pytest.raises(FlowSpecError, match=re.escape("unknown variable {{nonce}}")):
        FlowSpec.from_dict(
            spec_with(
                {"include": "login", "with": {"user": "x"}},
                step(request={"path": "/{{nonce}}"}),
                flows={"login": login},
            )
        )
