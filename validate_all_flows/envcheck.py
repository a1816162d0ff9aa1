"""Environment checks driven by a declarative schema (YAML or JSON).

Operators describe what their service needs once; the checker reports every problem at once, each
with the variable, what is wrong and how to fix it, and never the value of a secret. The reference
service validates its own environment at start-up with the same code and the built-in schema
``schemas/blocktrust_env.yaml``.

Schema::

    production:                       # optional: how to tell a production deployment
      variable: ENVIRONMENT
      values: [production, prod]
    variables:
      DATABASE_URL: {required: true, type: url, schemes: [postgresql, postgres]}
      JWT_SECRET:   {required: true, secret: true, min_length: 32}
      DEBUG_MODE:   {type: bool, in_production: false}
      CORS_ORIGINS: {type: list, required_in_production: true}
      DATA_DIR:     {type: path, absolute: true, writable_dir: true}
      LLM_PROVIDER: {one_of: [groq, openai]}
    rules:
      - when: {LLM_PROVIDER: groq}      # "*" as the value means: set to anything
        require: [GROQ_API_KEY]

Variable keys: ``required``, ``required_in_production``, ``secret`` (value never shown; checked
against well-known weak values), ``min_length`` (bytes), ``type`` (string, int, bool, url, path,
list), ``schemes`` (url), ``absolute`` / ``writable_dir`` (path), ``one_of``, ``min`` / ``max``
(int), ``in_production`` (the value required in production, for example ``false`` for debug),
``description``, ``aliases`` (other names operators use for the same variable, e.g.
``POLYGON_RPC_URL`` for ``RPC_URL``: an alias fills the variable when it is unset, and both set
to different values is a finding). Any other key is a schema error.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

__all__ = [
    "BUILTIN_SCHEMA",
    "EnvFinding",
    "EnvSchema",
    "EnvSchemaError",
    "check_env",
    "parse_env_file",
    "unknown_variables",
    "weak_secret",
]

BUILTIN_SCHEMA = Path(__file__).resolve().parent / "schemas" / "blocktrust_env.yaml"

_VAR_KEYS = {
    "required",
    "required_in_production",
    "secret",
    "min_length",
    "type",
    "schemes",
    "absolute",
    "writable_dir",
    "one_of",
    "min",
    "max",
    "in_production",
    "description",
    "aliases",
}
_TYPES = {"string", "int", "bool", "url", "path", "list"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
# Values seen as secrets in real deploy documents and leaked configs.
_WEAK = {
    "secret",
    "changeme",
    "change-me",
    "changethis",
    "password",
    "default",
    "test",
    "dev",
    "example",
    "your-secret-key",
    "supersecret",
    "jwt_secret",
    "secretkey",
    "12345678",
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Words of placeholder secrets (compared without case and separators): changeme-changeme-...,
# your-secret-key-here, replace_me, insecure-dev-key ...
_PLACEHOLDER_WORDS = (
    "changeme",
    "changethis",
    "replaceme",
    "yoursecret",
    "yourkey",
    "placeholder",
    "example",
    "insecure",
    "dummy",
    "donotuse",
    "notasecret",
    "supersecret",
    "mysecret",
    "secretkey",
    "password",
    "letmein",
    "qwerty",
    "123456",
    "todo",
    "fixme",
)
_MIN_ENTROPY_BITS_PER_CHAR = 3.0  # random hex has ~4, base64 ~6; "aaaabbbb..." 2


def weak_secret(value: str) -> str | None:
    """Why ``value`` is not a usable secret (well-known, a placeholder, repeated, low entropy),
    or None. Never quotes the value."""
    low = value.lower()
    if low in _WEAK:
        return "a well-known value"
    flat = re.sub(r"[^a-z0-9]", "", low)
    word = next((w for w in _PLACEHOLDER_WORDS if w in flat), None)
    if word:
        return f"a placeholder (contains {word!r})"
    if len(set(value)) < 4:
        return "a trivial value (fewer than 4 distinct characters)"
    n = len(flat)
    if n >= 8 and any(flat == (flat[:p] * (n // p + 1))[:n] for p in range(1, n // 2 + 1)):
        return "a repeated pattern"
    counts = [value.count(c) for c in set(value)]
    bits = -sum(c / len(value) * math.log2(c / len(value)) for c in counts)
    if bits < _MIN_ENTROPY_BITS_PER_CHAR:
        return f"low entropy ({bits:.1f} bits per character)"
    return None


class EnvSchemaError(ValueError):
    """Raised when a schema file is malformed; names the file and the place."""


@dataclass(frozen=True)
class EnvFinding:
    """One problem with the environment: the variable, what is wrong, and how to fix it."""

    variable: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.variable}: {self.problem} ({self.fix})"


@dataclass(frozen=True)
class _Var:
    name: str
    spec: Mapping[str, Any]


@dataclass(frozen=True)
class _Rule:
    when: Mapping[str, str]
    require: tuple[str, ...]


class EnvSchema:
    """A parsed schema; ``EnvSchema.load(path)`` or ``EnvSchema.from_dict(d)``."""

    def __init__(
        self, variables: list[_Var], rules: list[_Rule], prod_var: str | None, prod_values: set[str]
    ) -> None:
        self.variables = variables
        self.rules = rules
        self.prod_var = prod_var
        self.prod_values = prod_values

    @classmethod
    def load(cls, path: str | os.PathLike[str] = BUILTIN_SCHEMA) -> EnvSchema:
        """Reads a YAML or JSON schema file."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise EnvSchemaError(f"{p}: cannot read the schema: {exc.strerror}") from exc
        try:
            data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise EnvSchemaError(f"{p}: not valid {p.suffix.lstrip('.') or 'YAML'}: {exc}") from exc
        return cls.from_dict(data, source=str(p))

    @classmethod
    def from_dict(cls, data: Any, source: str = "schema") -> EnvSchema:
        """Validates a schema given as plain data; errors name ``source`` and the place."""
        if not isinstance(data, dict):
            raise EnvSchemaError(f"{source}: the top level must be a mapping")
        unknown = set(data) - {"production", "variables", "rules"}
        if unknown:
            raise EnvSchemaError(f"{source}: unknown top-level key(s) {sorted(unknown)}")
        prod = data.get("production") or {}
        if not isinstance(prod, dict) or set(prod) - {"variable", "values"}:
            raise EnvSchemaError(f"{source}: production: expected {{variable, values}}")
        prod_var = prod.get("variable")
        prod_values = {str(v).lower() for v in prod.get("values", ["production", "prod"])}
        variables = []
        for name, spec in (data.get("variables") or {}).items():
            where = f"{source}: variables.{name}"
            if not _NAME.match(str(name)):
                raise EnvSchemaError(f"{where}: not a valid variable name")
            spec = spec or {}
            if not isinstance(spec, dict):
                raise EnvSchemaError(f"{where}: expected a mapping of checks")
            bad = set(spec) - _VAR_KEYS
            if bad:
                raise EnvSchemaError(f"{where}: unknown check(s) {sorted(bad)}")
            if spec.get("type", "string") not in _TYPES:
                raise EnvSchemaError(f"{where}.type: one of {sorted(_TYPES)}")
            if "one_of" in spec and not isinstance(spec["one_of"], list):
                raise EnvSchemaError(f"{where}.one_of: expected a list")
            aliases = spec.get("aliases", [])
            if not isinstance(aliases, list) or not all(_NAME.match(str(a)) for a in aliases):
                raise EnvSchemaError(f"{where}.aliases: expected a list of variable names")
            variables.append(_Var(str(name), spec))
        rules = []
        for i, rule in enumerate(data.get("rules") or []):
            where = f"{source}: rules[{i}]"
            if not isinstance(rule, dict) or set(rule) != {"when", "require"}:
                raise EnvSchemaError(f"{where}: expected {{when: {{VAR: value}}, require: [VAR]}}")
            if not isinstance(rule["when"], dict) or not isinstance(rule["require"], list):
                raise EnvSchemaError(f"{where}: when is a mapping, require a list")
            when = {str(k): str(v).lower() for k, v in rule["when"].items()}
            rules.append(_Rule(when, tuple(str(r) for r in rule["require"])))
        return cls(variables, rules, prod_var, prod_values)

    def secret_names(self) -> set[str]:
        """The variables (and their aliases) whose values must never be shown (the log check
        looks for them)."""
        return {
            n
            for v in self.variables
            if v.spec.get("secret")
            for n in (v.name, *map(str, v.spec.get("aliases", [])))
        }

    def resolve_aliases(self, env: Mapping[str, str]) -> tuple[dict[str, str], list[EnvFinding]]:
        """A copy of ``env`` where each unset variable takes the value of its first set alias,
        plus a finding for every alias set to a different value than its variable."""
        out, findings = dict(env), []
        for var in self.variables:
            for alias in map(str, var.spec.get("aliases", [])):
                value = env.get(alias)
                if not value:
                    continue
                if not out.get(var.name):
                    out[var.name] = value
                elif out[var.name] != value:
                    findings.append(
                        EnvFinding(
                            alias,
                            f"set to a different value than {var.name} (the same setting)",
                            f"set only one of {var.name} and {alias}",
                        )
                    )
        return out, findings

    @classmethod
    def builtin(cls) -> EnvSchema:
        """The built-in schema of the reference service (parsed once)."""
        return _builtin_schema()


@functools.lru_cache(maxsize=1)
def _builtin_schema() -> EnvSchema:
    return EnvSchema.load(BUILTIN_SCHEMA)


def parse_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Reads a ``.env`` file (``NAME=value``, ``export`` allowed, quotes stripped, # comments)."""
    out: dict[str, str] = {}
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EnvSchemaError(f"{p}: cannot read the env file: {exc.strerror}") from exc
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not _NAME.match(name):
            # Never echo the line: it may hold a secret.
            raise EnvSchemaError(f"{p}:{n}: expected NAME=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        out[name] = value
    return out


def _check_var(var: _Var, value: str, production: bool) -> list[EnvFinding]:
    s, name, out = var.spec, var.name, []
    kind = s.get("type", "string")

    # The value appears in a message only when it is not a secret.
    shown = "the value" if s.get("secret") else repr(value)

    def bad(problem: str, fix: str) -> None:
        out.append(EnvFinding(name, problem, fix))

    if s.get("secret"):
        n = s.get("min_length", 0)
        if len(value.encode()) < n:
            fix = f"use at least {n} random bytes, e.g. `openssl rand -hex {max(n, 32)}`"
            bad(f"too short ({len(value.encode())} bytes, need {n})", fix)
        elif why := weak_secret(value):
            bad(why, f"generate a random secret, e.g. `openssl rand -hex {max(n, 32)}`")
    elif "min_length" in s and len(value.encode()) < s["min_length"]:
        bad(f"shorter than {s['min_length']} bytes", f"set at least {s['min_length']} bytes")
    if "one_of" in s and value.lower() not in {str(v).lower() for v in s["one_of"]}:
        bad(f"{shown} is not one of {s['one_of']}", f"set one of {s['one_of']}")
    if kind == "int":
        try:
            number = int(value)
        except ValueError:
            bad(f"{shown} is not an integer", "set a whole number")
        else:
            if "min" in s and number < s["min"]:
                bad(f"{shown} is below the minimum {s['min']}", f"set >= {s['min']}")
            if "max" in s and number > s["max"]:
                bad(f"{shown} is above the maximum {s['max']}", f"set <= {s['max']}")
    elif kind == "bool" and value.lower() not in _TRUE | _FALSE:
        bad(f"{shown} is not a boolean", "set true or false")
    elif kind == "url":
        parts = urlsplit(value)
        schemes = [str(x) for x in s.get("schemes", ["http", "https"])]
        if parts.scheme not in schemes or not (parts.netloc or parts.path):
            shown = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
            bad(f"not a URL with an allowed scheme ({shown})", f"use one of {schemes}")
    elif kind == "path":
        p = Path(value)
        if s.get("absolute") and not p.is_absolute():
            bad(f"{shown} is not an absolute path", "use an absolute path")
        if s.get("writable_dir"):
            if not p.is_dir():
                bad(f"{shown} is not an existing directory", "create it for the service user")
            elif not os.access(p, os.W_OK | os.X_OK):
                bad(f"{shown} is not writable", "give the service user write access")
    elif kind == "list" and not [x for x in value.split(",") if x.strip()]:
        bad("an empty list", "set comma-separated values")
    if production and "in_production" in s:
        want = s["in_production"]
        got: Any = value.lower() in _TRUE if isinstance(want, bool) else value
        if got != want:
            bad(f"must be {str(want).lower()} in production", f"set {name}={str(want).lower()}")
    return out


def check_env(schema: EnvSchema, env: Mapping[str, str]) -> list[EnvFinding]:
    """Checks ``env`` against ``schema``; returns every problem found (empty when all is well)."""
    production = bool(schema.prod_var) and (
        env.get(schema.prod_var or "", "").lower() in schema.prod_values
    )
    env, findings = schema.resolve_aliases(env)
    for var in schema.variables:
        value = env.get(var.name)
        required = var.spec.get("required") or (
            production and var.spec.get("required_in_production")
        )
        if value is None or value == "":
            if required:
                why = "required in production" if not var.spec.get("required") else "required"
                state = "empty" if value == "" else "missing"
                desc = var.spec.get("description")
                findings.append(EnvFinding(var.name, f"{state} ({why})", desc or f"set {var.name}"))
            elif production and "in_production" in var.spec and var.spec["in_production"]:
                findings.append(
                    EnvFinding(var.name, "must be set in production", f"set {var.name}")
                )
            continue
        findings += _check_var(var, value, production)
    for rule in schema.rules:
        if all(
            (env.get(k, "") != "") if v == "*" else env.get(k, "").lower() == v
            for k, v in rule.when.items()
        ):
            cond = ", ".join(
                f"{k} is set" if v == "*" else f"{k}={v}" for k, v in rule.when.items()
            )
            for need in rule.require:
                if not env.get(need):
                    findings.append(EnvFinding(need, f"required when {cond}", f"set {need}"))
    return findings


def unknown_variables(schema: EnvSchema, env: Mapping[str, str]) -> list[EnvFinding]:
    """A finding for each variable of ``env`` the schema does not know, naming the nearest known
    one (``JWT_SECRTE`` -> ``JWT_SECRET``, ``DEBUG`` -> ``DEBUG_MODE``): a misspelt name leaves
    the real one unset or at its default. Warnings: other software may read such variables."""
    known = {v.name for v in schema.variables}
    known |= {str(a) for v in schema.variables for a in v.spec.get("aliases", [])}
    known |= {n for r in schema.rules for n in (*r.when, *r.require)}
    if schema.prod_var:
        known.add(schema.prod_var)
    out, plain = [], []
    for name in sorted(set(env) - known):
        near = [k for k in sorted(known) if k.startswith(name + "_") or name.startswith(k + "_")]
        near = near or difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
        if not near:
            plain.append(name)
            continue
        what = "not read by the service"
        if not env.get(near[0]):
            what += f"; {near[0]} is unset"
        out.append(EnvFinding(name, what, f"did you mean {near[0]}?"))
    if plain:
        out.append(
            EnvFinding(
                ", ".join(plain),
                "not in the schema",
                "remove them, or add them to the schema (--env-schema) if the service reads them",
            )
        )
    return out
