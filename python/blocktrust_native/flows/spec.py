"""Flow specs: load (YAML or JSON), validate completely, and compile for the native runner.

The schema is documented in docs/tour_flows.md. Every error raises :class:`FlowSpecError` naming the
exact place (``steps[2].capture.token: not a JSON pointer``) before any request is sent.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from blocktrust_native.errors import FlowSpecError

if TYPE_CHECKING:
    from pathlib import Path  # imported where used: pathlib costs start-up time

__all__ = ["BUILTINS", "FlowSpec"]

#: Template names that are always available (plus ``env.NAME``).
BUILTINS = frozenset(
    {
        "uuid",
        "vu",
        "iteration",
        "email",
        "random_email",
        "timestamp",
        "timestamp_ms",
        "iso_time",
        "random_int",
    }
)
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
_REF = re.compile(r"\{\{(.*?)\}\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_OPS = {"equals", "not_equals", "exists", "matches", "contains", "lt", "le", "gt", "ge"}
_STEP_KEYS = {"name", "request", "capture", "assert", "retry"}
_REQUEST_KEYS = {
    "method",
    "path",
    "url",
    "headers",
    "json",
    "form",
    "body",
    "multipart",
    "timeout",
    "follow_redirects",
    "content_type",
    "hmac",
}
_ASSERT_KEYS = {"status", "json", "headers", "latency_ms", "body"}
_RETRY_KEYS = {"attempts", "within", "interval"}
_HMAC_KEYS = {"header", "algorithm", "secret", "encoding", "prefix"}
_HMAC_ALGORITHMS = ("sha1", "sha256", "sha384", "sha512")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# What would split or truncate a request line or a header (refused in literals; the runner refuses
# rendered values, captures a server sent included, as a failure of the step).
_BREAKS = re.compile(r"[\r\n\x00]")
_MAX_FILE = 64 << 20


def _fail(where: str, what: str) -> FlowSpecError:
    return FlowSpecError(f"{where}: {what}")


def _known_keys(d: dict[str, Any], keys: Collection[str], where: str) -> None:
    """Raises naming the first key of `d` (in sorted order) that is not one of `keys`."""
    unknown = set(d) - set(keys)
    if unknown:
        raise _fail(where, f"unknown key {sorted(unknown)[0]!r}")


def _is_pointer(p: object) -> bool:
    if not isinstance(p, str) or (p and not p.startswith("/")):
        return False
    return re.search(r"~(?![01])", p) is None


class _Scope:
    """Variables known at a point of the flow (for 'unknown variable' errors); ``captured`` are
    the names set by this scope's own captures and by the exports of its includes."""

    def __init__(self, names: set[str]) -> None:
        self.names = set(names)
        self.captured: set[str] = set()

    def check(self, text: str, where: str) -> None:
        if text.count("{{") != len(_REF.findall(text)):
            raise _fail(where, "unterminated {{ in template")
        for raw in _REF.findall(text):
            name = raw.strip()
            if not _NAME.match(name):
                raise _fail(where, f"bad template reference {{{{{raw}}}}}")
            if name.startswith("env."):
                if name[4:] not in os.environ:
                    raise _fail(where, f"environment variable {name[4:]} is not set")
            elif name not in BUILTINS and name not in self.names:
                raise _fail(where, f"unknown variable {{{{{name}}}}}")

    def check_tree(self, value: object, where: str) -> None:
        if isinstance(value, str):
            self.check(value, where)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.check_tree(v, f"{where}[{i}]")
        elif isinstance(value, dict):
            for k, v in value.items():
                self.check_tree(v, f"{where}.{k}")


def _given_values(values: object) -> dict[str, Any]:
    """Checks the values a caller gives for variables (taken literally, never rendered)."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise FlowSpecError("given vars: must be a mapping of name: value")
    out: dict[str, Any] = {}
    for k, v in values.items():
        if not isinstance(k, str) or not _NAME.match(k) or k in BUILTINS:
            raise _fail(f"given vars.{k}", "not a valid variable name")
        try:
            json.dumps(v, allow_nan=False)
        except (TypeError, ValueError):
            raise _fail(f"given vars.{k}", "not representable as JSON") from None
        out[k] = v
    return out


def _rename(value: Any, mapping: Mapping[str, str]) -> Any:
    """Rewrites ``{{name}}`` references through `mapping` (name -> replacement text)."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name = m.group(1).strip()
            return mapping.get(name, m.group(0))

        return _REF.sub(sub, value)
    if isinstance(value, list):
        return [_rename(v, mapping) for v in value]
    if isinstance(value, dict):
        return {k: _rename(v, mapping) for k, v in value.items()}
    return value


class FlowSpec:
    """A validated flow, ready to run; build it with :meth:`load` or :meth:`from_dict`."""

    def __init__(
        self,
        name: str,
        compiled: dict[str, Any],
        source: dict[str, Any],
        base_dir: Path | None = None,
        given: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self._compiled = compiled
        self._source = source
        self._base_dir = base_dir
        self._given = dict(given or {})

    def __repr__(self) -> str:
        return f"FlowSpec(name={self.name!r}, steps={len(self._compiled['steps'])})"

    @property
    def step_names(self) -> list[str]:
        """Names of the steps in run order (sub-flow steps as ``include/step``)."""
        return [s["name"] for s in self._compiled["steps"]]

    @property
    def capture_names(self) -> list[str]:
        """Names a run hands back in ``Report.captures``: the top-level captures and the
        exports of included sub-flows (never ``vars``, given values or private captures)."""
        return list(self._compiled["reported"])

    @property
    def subflow_names(self) -> list[str]:
        """Names of the sub-flows under ``flows:``."""
        flows = self._source.get("flows") or {}
        return [str(k) for k in flows]

    def subflow_interface(self, name: str) -> tuple[list[str], list[str]]:
        """``(params, exports)`` of sub-flow `name`; FlowSpecError when there is none."""
        sub = (self._source.get("flows") or {}).get(name)
        if not isinstance(sub, dict):
            raise _fail("flows", f"no sub-flow named {name!r}")
        return list(sub.get("params") or []), list(sub.get("exports") or [])

    def subflow(self, name: str, *, vars: Mapping[str, Any] | None = None) -> FlowSpec:
        """A spec that runs only sub-flow `name` of this one (its steps keep the ``name/``
        prefix). Its params are taken from the variables of the same name, given here in `vars`
        (literal values, added to those this spec was given) or set under ``vars:``; its exports
        come back in ``Report.captures``. FlowSpecError names a missing sub-flow or param."""
        given = {**self._given, **_given_values(vars)}
        params, _ = self.subflow_interface(name)
        known = set(given) | set(self._source.get("vars") or {})
        for p in params:
            if p not in known:
                raise _fail(f"flows.{name}.params", f"no value for {p!r} (give it in vars)")
        src = {k: v for k, v in self._source.items() if k != "steps"}
        src["name"] = f"{self.name}/{name}"
        src["steps"] = [{"include": name, "with": {p: "{{" + p + "}}" for p in params}}]
        return FlowSpec.from_dict(src, base_dir=self._base_dir, vars=given)

    def compiled(self) -> dict[str, Any]:
        """The plain structure handed to the native runner (a copy); it holds the given values
        (secrets too), so keep it out of logs."""
        compiled: dict[str, Any] = json.loads(self.compiled_json())
        return compiled

    def compiled_json(self) -> str:
        """The compiled flow as JSON text."""
        return json.dumps(self._compiled)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, vars: Mapping[str, Any] | None = None
    ) -> FlowSpec:
        """Reads a YAML (.yaml/.yml) or JSON spec; FlowSpecError names a bad file or place.
        `vars` gives variables values from the caller (see :meth:`from_dict`)."""
        from pathlib import Path

        p = Path(path)
        return cls.from_dict(cls.read_document(p), base_dir=p.parent, vars=vars)

    @staticmethod
    def read_document(path: str | os.PathLike[str]) -> Any:
        """The parsed document of a spec file, JSON by its suffix, else YAML, not yet checked
        (for callers that look at it before :meth:`from_dict`); FlowSpecError names the file."""
        from pathlib import Path

        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise FlowSpecError(f"{p}: cannot read: {e.strerror}") from None
        if p.suffix.lower() == ".json":
            try:
                return json.loads(text)
            except json.JSONDecodeError as e:
                raise FlowSpecError(f"{p}: not valid JSON: line {e.lineno}: {e.msg}") from None
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise FlowSpecError(f"{p}: not valid YAML: {e}") from None

    @classmethod
    def from_dict(
        cls,
        d: object,
        *,
        base_dir: str | os.PathLike[str] | None = None,
        vars: Mapping[str, Any] | None = None,
    ) -> FlowSpec:
        """Validates a spec given as a dict; file parts are read relative to `base_dir`.

        `vars` gives variables values from the caller (secrets, budgets, values from an earlier
        run): each is set literally (never rendered as a template, keeping its JSON type) at
        the start of every iteration, replaces a ``vars:`` entry of the same name, and may name
        a variable the spec does not declare (every step can then refer to it)."""
        from pathlib import Path

        given = _given_values(vars)
        if not isinstance(d, dict):
            raise FlowSpecError("spec: must be a mapping with 'steps'")
        _known_keys(d, {"name", "vars", "steps", "flows"}, "spec")
        name = d.get("name", "flow")
        if not isinstance(name, str) or not name:
            raise _fail("name", "must be a non-empty string")
        c = _Compiler(Path(base_dir) if base_dir is not None else Path.cwd(), d.get("flows"))
        vars_ = d.get("vars", {})
        if not isinstance(vars_, dict):
            raise _fail("vars", "must be a mapping of name: value")
        scope = _Scope(set(given))
        out_vars = []
        for k, v in vars_.items():
            if not isinstance(k, str) or not _NAME.match(k) or k in BUILTINS:
                raise _fail(f"vars.{k}", "not a valid variable name")
            if k in given:
                continue  # the caller's value wins (and its template need not resolve)
            if not isinstance(v, (str, int, float, bool)):
                raise _fail(f"vars.{k}", "must be a string or number")
            text = v if isinstance(v, str) else json.dumps(v)
            scope.check(text, f"vars.{k}")
            out_vars.append([k, text])
            scope.names.add(k)
        steps = c.steps(d.get("steps"), "steps", scope, {}, "")
        if not steps:
            raise _fail("steps", "must be a non-empty list")
        compiled = {
            "values": given,
            "vars": out_vars,
            "steps": steps,
            "reported": sorted(scope.captured),
        }
        bd = Path(base_dir) if base_dir is not None else None
        return cls(name, compiled, d, bd, given)


class _Compiler:
    def __init__(self, base_dir: Path, flows: object) -> None:
        self.base_dir = base_dir
        if flows is None:
            flows = {}
        if not isinstance(flows, dict):
            raise _fail("flows", "must be a mapping of name: sub-flow")
        self.flows = flows
        self.includes = 0
        self.depth = 0

    def steps(
        self, steps: object, where: str, scope: _Scope, rename: dict[str, str], prefix: str
    ) -> list[dict[str, Any]]:
        if not isinstance(steps, list) or not steps:
            raise _fail(where, "must be a non-empty list")
        out: list[dict[str, Any]] = []
        for i, s in enumerate(steps):
            w = f"{where}[{i}]"
            if not isinstance(s, dict):
                raise _fail(w, "must be a mapping")
            if "include" in s:
                out.extend(self.include(s, w, scope, rename, prefix))
            else:
                out.append(self.step(_rename(s, rename), w, scope, rename, prefix, i))
        return out

    def include(
        self, s: dict[str, Any], w: str, scope: _Scope, rename: dict[str, str], prefix: str
    ) -> list[dict[str, Any]]:
        _known_keys(s, {"include", "with", "as"}, w)
        fname = s["include"]
        sub = self.flows.get(fname) if isinstance(fname, str) else None
        if not isinstance(sub, dict):
            raise _fail(f"{w}.include", f"no sub-flow named {fname!r} under flows")
        if self.depth > 8:
            raise _fail(f"{w}.include", "sub-flows nested too deeply (a cycle?)")
        params = sub.get("params", [])
        exports = sub.get("exports", [])
        fw = f"flows.{fname}"
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            raise _fail(f"{fw}.params", "must be a list of variable names")
        if not isinstance(exports, list) or not all(isinstance(p, str) for p in exports):
            raise _fail(f"{fw}.exports", "must be a list of variable names")
        given = s.get("with", {})
        if not isinstance(given, dict):
            raise _fail(f"{w}.with", "must be a mapping of param: value")
        for p in params:
            if p not in given:
                raise _fail(f"{w}.with", f"missing param {p!r} of sub-flow {fname!r}")
        for k in given:
            if k not in params:
                raise _fail(f"{w}.with.{k}", f"sub-flow {fname!r} has no param {k!r}")
        renames = s.get("as", {})
        if not isinstance(renames, dict):
            raise _fail(f"{w}.as", "must be a mapping of exported: new_name")
        for k, v in renames.items():
            if k not in exports:
                raise _fail(f"{w}.as.{k}", f"sub-flow {fname!r} does not export {k!r}")
            if not isinstance(v, str) or not _NAME.match(v):
                raise _fail(f"{w}.as.{k}", "not a valid variable name")
        self.includes += 1
        tag = f"_{fname}{self.includes}_"
        inner: dict[str, str] = {}
        for p in params:
            value = given[p]
            text = value if isinstance(value, str) else json.dumps(value)
            scope.check(_rename(text, rename), f"{w}.with.{p}")
            inner[p] = _rename(text, rename)
        # Captures inside the sub-flow: exported ones get the caller's name, the rest a private one.
        for e in exports:
            inner[e] = "{{" + str(renames.get(e, e)) + "}}"
        for st in sub.get("steps") or []:
            caps = st.get("capture") if isinstance(st, dict) else None
            for var in caps if isinstance(caps, dict) else {}:
                if isinstance(var, str) and var not in exports and var not in inner:
                    inner[var] = "{{" + tag + var + "}}"
        sub_scope = _Scope(scope.names | set(params))
        self.depth += 1
        try:
            steps = self.steps(
                sub.get("steps"), f"{fw}.steps", sub_scope, inner, f"{prefix}{fname}/"
            )
        finally:
            self.depth -= 1
        for e in exports:
            if e not in sub_scope.names and str(renames.get(e, e)) not in sub_scope.names:
                raise _fail(f"{fw}.exports", f"{e!r} is never captured by the sub-flow")
            scope.names.add(str(renames.get(e, e)))
            scope.captured.add(str(renames.get(e, e)))
        return steps

    def step(
        self,
        s: dict[str, Any],
        w: str,
        scope: _Scope,
        rename: dict[str, str],
        prefix: str,
        index: int,
    ) -> dict[str, Any]:
        _known_keys(s, _STEP_KEYS, w)
        name = s.get("name", f"step{index + 1}")
        if not isinstance(name, str) or not name:
            raise _fail(f"{w}.name", "must be a non-empty string")
        name = prefix + name
        req = s.get("request")
        if not isinstance(req, dict):
            raise _fail(f"{w}.request", "missing or not a mapping")
        rw = f"{w}.request"
        _known_keys(req, _REQUEST_KEYS, rw)
        method = req.get("method", "GET")
        if not isinstance(method, str) or method.upper() not in _METHODS:
            raise _fail(f"{rw}.method", f"not an HTTP method: {method!r}")
        if ("path" in req) == ("url" in req):
            raise _fail(rw, "give exactly one of path or url")
        target = req.get("path", req.get("url"))
        key = "path" if "path" in req else "url"
        if not isinstance(target, str) or not target:
            raise _fail(f"{rw}.{key}", "must be a non-empty string")
        if key == "path" and not (target.startswith("/") or target.startswith("{{")):
            raise _fail(f"{rw}.path", "must start with /")
        if key == "url" and not re.match(r"^(https?://|\{\{)", target):
            raise _fail(f"{rw}.url", "must be an http:// or https:// URL")
        literal = re.sub(r"\{\{.*?\}\}", "", target)
        if _BREAKS.search(target) or " " in literal or "\t" in literal:
            raise _fail(f"{rw}.{key}", "must not contain white space, CR, LF or NUL")
        scope.check(target, f"{rw}.{key}")
        out: dict[str, Any] = {"name": name, "method": method.upper(), "url": target}
        headers = req.get("headers", {})
        if not isinstance(headers, dict):
            raise _fail(f"{rw}.headers", "must be a mapping of name: value")
        hs = []
        for k, v in headers.items():
            if not isinstance(k, str) or not re.match(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", k):
                raise _fail(f"{rw}.headers", f"bad header name {k!r}")
            if not isinstance(v, (str, int, float)) or isinstance(v, bool):
                raise _fail(f"{rw}.headers.{k}", "must be a string or number")
            text = str(v)
            if _BREAKS.search(text):
                raise _fail(f"{rw}.headers.{k}", "must not contain CR, LF or NUL")
            scope.check(text, f"{rw}.headers.{k}")
            hs.append([k, text])
        out["headers"] = hs
        out["body"] = self.body(req, rw, scope)
        if "content_type" in req:
            if not isinstance(req["content_type"], str) or _BREAKS.search(req["content_type"]):
                raise _fail(f"{rw}.content_type", "must be a string without CR, LF or NUL")
            out["content_type"] = req["content_type"]
        if "timeout" in req:
            t = req["timeout"]
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t <= 3600:
                raise _fail(f"{rw}.timeout", "must be seconds in (0, 3600]")
            out["timeout_ms"] = max(1, int(t * 1000))
        fr = req.get("follow_redirects", False)
        if not isinstance(fr, bool):
            raise _fail(f"{rw}.follow_redirects", "must be true or false")
        out["follow_redirects"] = fr
        if "hmac" in req:
            out["hmac"] = _hmac(req["hmac"], f"{rw}.hmac", scope)
        if "retry" in s:
            out["retry"] = _retry(s["retry"], f"{w}.retry", scope)
        out["asserts"] = self.asserts(s.get("assert", {}), f"{w}.assert", scope, name)
        out["captures"] = self.captures(s.get("capture", {}), f"{w}.capture", rename)
        for cap in out["captures"]:
            scope.names.add(cap["var"])
            scope.captured.add(cap["var"])
        return out

    def body(self, req: dict[str, Any], rw: str, scope: _Scope) -> dict[str, Any] | None:
        kinds = [k for k in ("json", "form", "body", "multipart") if k in req]
        if len(kinds) > 1:
            raise _fail(rw, f"give only one body ({' / '.join(kinds)})")
        if not kinds:
            return None
        k = kinds[0]
        v = req[k]
        if k == "json":
            scope.check_tree(v, f"{rw}.json")
            try:
                json.dumps(v, allow_nan=False)
            except (TypeError, ValueError):
                raise _fail(f"{rw}.json", "not representable as JSON") from None
            return {"kind": "json", "value": v}
        if k == "form":
            if not isinstance(v, dict):
                raise _fail(f"{rw}.form", "must be a mapping of field: value")
            fields = []
            for fk, fv in v.items():
                if not isinstance(fv, (str, int, float)) or isinstance(fv, bool):
                    raise _fail(f"{rw}.form.{fk}", "must be a string or number")
                scope.check(str(fv), f"{rw}.form.{fk}")
                fields.append([str(fk), str(fv)])
            return {"kind": "form", "fields": fields}
        if k == "body":
            if not isinstance(v, str):
                raise _fail(f"{rw}.body", "must be a string (use json: for structured bodies)")
            scope.check(v, f"{rw}.body")
            return {"kind": "raw", "text": v}
        if not isinstance(v, list) or not v:
            raise _fail(f"{rw}.multipart", "must be a non-empty list of parts")
        parts = []
        for i, p in enumerate(v):
            pw = f"{rw}.multipart[{i}]"
            if not isinstance(p, dict) or not isinstance(p.get("name"), str) or not p["name"]:
                raise _fail(pw, "each part needs a name")
            sources = [s for s in ("value", "file", "bytes") if s in p]
            if len(sources) != 1:
                raise _fail(pw, "give exactly one of value, file or bytes")
            if '"' in p["name"] or "\r" in p["name"] or "\n" in p["name"]:
                raise _fail(f"{pw}.name", "must not contain quotes or line breaks")
            if "value" in p:
                if not isinstance(p["value"], str):
                    raise _fail(f"{pw}.value", "must be a string")
                scope.check(p["value"], f"{pw}.value")
                part = {"name": p["name"], "value": p["value"]}
                if "filename" in p:  # a file whose content is the rendered value
                    fn, ct = p["filename"], p.get("content_type", "application/octet-stream")
                    if not isinstance(fn, str) or not fn or any(c in fn for c in '"\r\n'):
                        raise _fail(f"{pw}.filename", "must be a name without quotes")
                    if not isinstance(ct, str) or not ct or "\r" in ct or "\n" in ct:
                        raise _fail(f"{pw}.content_type", "must be a media type")
                    part.update(filename=fn, content_type=ct)
                elif "content_type" in p:
                    raise _fail(f"{pw}.content_type", "a value part needs a filename to have one")
                parts.append(part)
                continue
            if "file" in p:
                if not isinstance(p["file"], str):
                    raise _fail(f"{pw}.file", "must be a path")
                path = self.base_dir / p["file"]
                try:
                    if path.stat().st_size > _MAX_FILE:
                        raise _fail(f"{pw}.file", "larger than 64 MiB")
                    data = path.read_bytes()
                except OSError as e:
                    raise _fail(f"{pw}.file", f"cannot read {path}: {e.strerror}") from None
                filename = p.get("filename", path.name)
            else:
                n = p["bytes"]
                if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= _MAX_FILE:
                    raise _fail(f"{pw}.bytes", "must be a size in bytes up to 64 MiB")
                data = os.urandom(n)
                filename = p.get("filename", f"{p['name']}.bin")
            ct = p.get("content_type", "application/octet-stream")
            if not isinstance(filename, str) or '"' in filename or not isinstance(ct, str):
                raise _fail(pw, "bad filename or content_type")
            parts.append(
                {
                    "name": p["name"],
                    "filename": filename,
                    "content_type": ct,
                    "data_b64": base64.b64encode(data).decode(),
                }
            )
        return {"kind": "multipart", "parts": parts}

    def captures(self, cap: object, cw: str, rename: dict[str, str]) -> list[dict[str, Any]]:
        if not isinstance(cap, dict):
            raise _fail(cw, "must be a mapping of variable: source")
        out = []
        for var, src in cap.items():
            w = f"{cw}.{var}"
            if not isinstance(var, str) or not _NAME.match(var) or var in BUILTINS:
                raise _fail(w, "not a valid variable name")
            target = var
            if var in rename:  # an exported capture of a sub-flow: the caller's name
                m = _REF.fullmatch(rename[var])
                target = m.group(1).strip() if m else var
            if isinstance(src, str) and src in ("status", "headers"):
                src = {src: True}
            if not isinstance(src, dict) or len(src) != 1:
                raise _fail(
                    w,
                    "must be one of {json: pointer}, {header: name}, status, headers, {body: true}",
                )
            ((kind, arg),) = src.items()
            if kind == "json":
                if not _is_pointer(arg):
                    raise _fail(w, "not a JSON pointer")
                out.append({"var": target, "from": "json", "pointer": arg})
            elif kind == "header":
                if not isinstance(arg, str) or not arg:
                    raise _fail(w, "header name must be a non-empty string")
                out.append({"var": target, "from": "header", "name": arg})
            elif kind == "status":
                out.append({"var": target, "from": "status"})
            elif kind == "body":
                out.append({"var": target, "from": "body"})
            elif kind == "headers":
                out.append({"var": target, "from": "headers"})
            else:
                raise _fail(w, f"unknown capture source {kind!r}")
        return out

    def asserts(self, a: object, aw: str, scope: _Scope, step: str) -> list[dict[str, Any]]:
        if not isinstance(a, dict):
            raise _fail(aw, "must be a mapping")
        _known_keys(a, _ASSERT_KEYS, aw)
        out: list[dict[str, Any]] = []
        if "status" in a:
            out.append(_status_assert(a["status"], f"{aw}.status", step))
        if "latency_ms" in a:
            ms = a["latency_ms"]
            if isinstance(ms, bool) or not isinstance(ms, (int, float)) or ms <= 0:
                raise _fail(f"{aw}.latency_ms", "must be a positive number of milliseconds")
            out.append(
                {"label": f"{step}: latency <= {ms} ms", "kind": "latency", "max_ms": int(ms)}
            )
        if "json" in a:
            j = a["json"]
            if not isinstance(j, dict):
                raise _fail(f"{aw}.json", "must be a mapping of pointer: expectation")
            for ptr, exp in j.items():
                w = f"{aw}.json.{ptr}"
                if not _is_pointer(ptr):
                    raise _fail(w, "not a JSON pointer")
                for op, val in _expectations(exp, w, scope):
                    out.append(
                        {
                            "label": f"{step}: json {ptr} {op} {json.dumps(val)}",
                            "kind": "json",
                            "pointer": ptr,
                            "op": op,
                            "value": val,
                        }
                    )
        if "headers" in a:
            h = a["headers"]
            if not isinstance(h, dict):
                raise _fail(f"{aw}.headers", "must be a mapping of name: expectation")
            for hn, exp in h.items():
                w = f"{aw}.headers.{hn}"
                for op, val in _expectations(exp, w, scope):
                    out.append(
                        {
                            "label": f"{step}: header {hn} {op} {json.dumps(val)}",
                            "kind": "header",
                            "name": str(hn),
                            "op": op,
                            "value": val,
                        }
                    )
        if "body" in a:
            for op, val in _expectations(a["body"], f"{aw}.body", scope):
                out.append(
                    {
                        "label": f"{step}: body {op} {json.dumps(val)}",
                        "kind": "body",
                        "op": op,
                        "value": val,
                    }
                )
        return out


def _limit(v: object, w: str, scope: _Scope, lo: float, hi: float, integer: bool) -> str:
    """A retry limit: a number in [lo, hi] or a template (checked when the step runs)."""
    if isinstance(v, str) and "{{" in v:
        scope.check(v, w)
        return v
    if (
        not isinstance(v, (int, float))
        or isinstance(v, bool)
        or (integer and not isinstance(v, int))
        or not lo <= v <= hi
    ):
        kind = "a whole number" if integer else "a number of seconds"
        raise _fail(w, f"must be {kind} in [{lo:g}, {hi:g}] or a {{{{variable}}}}")
    return json.dumps(v)


def _retry(r: object, w: str, scope: _Scope) -> dict[str, str]:
    if not isinstance(r, dict):
        raise _fail(w, "must be a mapping like {within: 60, interval: 0.5}")
    _known_keys(r, _RETRY_KEYS, w)
    if "attempts" not in r and "within" not in r:
        raise _fail(w, "give attempts or within (or both)")
    out = {}
    if "attempts" in r:
        out["attempts"] = _limit(r["attempts"], f"{w}.attempts", scope, 1, 1e9, True)
    if "within" in r:
        out["within"] = _limit(r["within"], f"{w}.within", scope, 0, 1e6, False)
    out["interval"] = _limit(r.get("interval", 1), f"{w}.interval", scope, 0, 3600, False)
    return out


def _hmac(h: object, w: str, scope: _Scope) -> dict[str, Any]:
    if not isinstance(h, dict):
        raise _fail(w, "must be a mapping like {header: X-Signature, secret: '{{secret}}'}")
    _known_keys(h, _HMAC_KEYS, w)
    header = h.get("header")
    if not isinstance(header, str) or not _HEADER_NAME.match(header):
        raise _fail(f"{w}.header", "must be a header name")
    alg = h.get("algorithm", "sha256")
    if alg not in _HMAC_ALGORITHMS:
        raise _fail(f"{w}.algorithm", f"must be one of {', '.join(_HMAC_ALGORITHMS)}")
    secret = h.get("secret")
    if not isinstance(secret, str) or not secret:
        raise _fail(f"{w}.secret", "must be a non-empty string (usually a {{variable}})")
    scope.check(secret, f"{w}.secret")
    enc = h.get("encoding", "hex")
    if enc not in ("hex", "base64"):
        raise _fail(f"{w}.encoding", "must be hex or base64")
    prefix = h.get("prefix", "")
    if not isinstance(prefix, str) or "\r" in prefix or "\n" in prefix:
        raise _fail(f"{w}.prefix", "must be text without line breaks")
    return {"header": header, "algorithm": alg, "secret": secret, "encoding": enc, "prefix": prefix}


def _status_assert(v: object, w: str, step: str) -> dict[str, Any]:
    items = v if isinstance(v, list) else [v]
    ranges = []
    for it in items:
        if isinstance(it, int) and not isinstance(it, bool) and 100 <= it <= 599:
            ranges.append([it, it])
        elif isinstance(it, str) and re.fullmatch(r"[1-5]xx", it):
            base = int(it[0]) * 100
            ranges.append([base, base + 99])
        else:
            raise _fail(w, f"not a status code or class like 2xx: {it!r}")
    if not ranges:
        raise _fail(w, "must name at least one status")
    label = " or ".join(str(i) for i in items)
    return {"label": f"{step}: status {label}", "kind": "status", "allowed": ranges}


def _expectations(exp: object, w: str, scope: _Scope) -> list[tuple[str, object]]:
    """`value` (equals) or a mapping of operators like {gt: 3, lt: 10}."""
    if isinstance(exp, dict) and exp and set(exp) <= _OPS:
        out = []
        for op, val in exp.items():
            if op in ("lt", "le", "gt", "ge") and (
                isinstance(val, bool) or not isinstance(val, (int, float))
            ):
                raise _fail(f"{w}.{op}", "must be a number")
            if op == "matches":
                if not isinstance(val, str):
                    raise _fail(f"{w}.matches", "must be a regular expression string")
                try:
                    re.compile(val)
                except re.error as e:
                    raise _fail(f"{w}.matches", f"not a valid regular expression: {e}") from None
            if op == "exists" and not isinstance(val, bool):
                raise _fail(f"{w}.exists", "must be true or false")
            if isinstance(val, str) and op != "matches":
                scope.check(val, f"{w}.{op}")
            out.append((op, val))
        return out
    if isinstance(exp, dict) and exp and any(k in _OPS for k in exp):
        bad = sorted(set(exp) - _OPS)[0]
        raise _fail(w, f"unknown operator {bad!r}")
    if isinstance(exp, str):
        scope.check(exp, w)
    return [("equals", exp)]
