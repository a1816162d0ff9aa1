"""Deployment profiles: what the operator's deployment is (paths, auth, migrations, tables,
workers, contracts, flows, required checks), read from one declarative file.

A profile is YAML or JSON with ``schema: blocktrust.profile/1``; docs/profiles.md describes every
key. :func:`load_profile` takes a file or a built-in name (``reference``, ``blocktrust-v1.4``,
``fastapi-alembic``, ``api-key-service``; files in ``profiles/``), follows ``extends`` (a built-in
name or a file, merged key by key, the extending file winning) and checks the whole document before
anything runs: every mistake raises :class:`ProfileError` naming the file and the place
(``security.bearer[1]: not 'METHOD /path'``). The checks read the parsed :class:`Profile`; a group
or key a profile leaves out is a check that does not run (SKIP with that reason), never a guess.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from validate_all_flows.check_model import catalogue_ids

__all__ = [
    "BUILTIN_PROFILES",
    "PROFILES_DIR",
    "SCHEMA",
    "ApiKeys",
    "ChainSpec",
    "ContractCall",
    "Cors",
    "FailsafeEvidence",
    "FlowsSpec",
    "HealthProbe",
    "JobQueue",
    "Migrations",
    "Probe",
    "Profile",
    "ProfileError",
    "RateLimitProbe",
    "TableCheck",
    "WebhookProbe",
    "WorkerSource",
    "builtin_profile",
    "load_profile",
]

SCHEMA = "blocktrust.profile/1"
PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
BUILTIN_PROFILES = ("reference", "blocktrust-v1.4", "fastapi-alembic", "api-key-service")

_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CHECK_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_MIGRATION_SOURCES = ("ledger", "alembic", "flyway", "sql-dir", "none")
_WEBHOOK_SCHEMES = {
    # scheme: default signature header
    "sumsub": "X-Payload-Digest",
    "hmac-sha256": "X-Hub-Signature-256",
    "stripe": "Stripe-Signature",
}
_SUMSUB_ALGORITHMS = ("HMAC_SHA1_HEX", "HMAC_SHA256_HEX", "HMAC_SHA512_HEX")
#: Flows check names the validator owns (the four Blocktrust flows).
_RESERVED_FLOWS = ("register", "kyc_mint", "sign_normal", "sign_duress")
_GROUPS = ("env", "database", "http", "chain", "flows", "load", "security", "logs", "workers")


class ProfileError(ValueError):
    """Raised when a profile cannot be used: unreadable, not the schema, or a wrong value; the
    message names the file and the place."""


def _fail(where: str, what: str) -> ProfileError:
    return ProfileError(f"{where}: {what}")


# ---------------------------------------------------------------------------------------------
# The parsed profile


@dataclass(frozen=True)
class Probe:
    """A request the validator sends: method and path (``"GET /api/identity"``)."""

    method: str
    path: str

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class HealthProbe:
    """A GET path that must answer 200 within the latency objective, with these JSON values
    (JSON pointer -> value; ``{exists: true}`` for any value)."""

    path: str
    expect: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RateLimitProbe:
    """Repeated requests (the login's) that must meet 429 with Retry-After within ``attempts``."""

    probe: Probe
    json: Any = None
    form: Mapping[str, str] | None = None
    attempts: int = 30


@dataclass(frozen=True)
class ApiKeys:
    """Endpoints that need an API key in ``header`` (each refuses a missing and a forged key)."""

    header: str
    endpoints: tuple[Probe, ...]
    from_openapi: bool = False  # the endpoints are the service's OpenAPI operations using it


@dataclass(frozen=True)
class WebhookProbe:
    """A webhook that must refuse unsigned and wrongly signed bodies."""

    path: str
    scheme: str  # sumsub | hmac-sha256 | stripe
    header: str
    body: Any
    algorithm: str = "HMAC_SHA256_HEX"  # sumsub's X-Payload-Digest-Alg
    secret_env: str = "SUMSUB_SECRET_KEY"  # the variable holding the signing secret (flows)


@dataclass(frozen=True)
class Cors:
    """The preflight path; the allowed origins (None: the environment's CORS_ORIGINS)."""

    path: str
    origins: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Migrations:
    """Where the schema comes from (see docs/profiles.md, database.migrations)."""

    source: str  # ledger | alembic | flyway | sql-dir | none
    directory: Path | None = None  # ledger: our files; alembic: versions/; sql-dir: *.sql
    revision: str | None = None  # alembic: the expected head when no directory is given
    table: str | None = None  # the ledger table (ledger: schema_migrations, flyway: ...)


@dataclass(frozen=True)
class TableCheck:
    """Tables with the columns they must have, and (table, column) pairs an index must lead."""

    columns: Mapping[str, tuple[str, ...]]
    indexes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class WorkerSource:
    """Where a worker's progress is read: ``kind`` is ``checkpoints`` / ``heartbeats`` (our
    listener's and monitor's tables), ``table`` (a table and its columns) or ``sql`` (a
    read-only query). ``max_age_s`` is the freshness objective (None: the command's)."""

    kind: str
    table: str | None = None
    time_column: str | None = None  # None: the table's only timestamp column
    block_column: str | None = None
    sql: str | None = None
    max_age_s: float | None = None


@dataclass(frozen=True)
class JobQueue:
    """The deployment's chain job queue: a ``table`` with a status and a time column, or two
    read-only queries (``backlog_sql``: count and age in seconds of the oldest pending job;
    ``failed_sql``: count of failed jobs)."""

    table: str | None = None
    status_column: str = "status"
    pending: tuple[str, ...] = ("pending", "queued", "submitted")
    failed: tuple[str, ...] = ("failed",)
    time_column: str = "created_at"
    backlog_sql: str | None = None
    failed_sql: str | None = None
    max_backlog_age_s: float = 300.0
    max_failed: int = 0


@dataclass(frozen=True)
class ContractCall:
    """A view function of one contract: ``function`` is its signature (``statusOf(uint256)``);
    the answer's first word is compared with ``values`` (e.g. active: 1, cancelled: 2)."""

    contract: str
    function: str
    values: Mapping[str, int] = field(default_factory=dict)
    word: int = 0  # which 32-byte word of the answer holds the value


@dataclass(frozen=True)
class ChainSpec:
    """Where the contract addresses come from and which view functions answer the questions."""

    source: str  # config | env
    variables: Mapping[str, str] = field(default_factory=dict)  # env: contract -> variable
    abi_files: Mapping[str, Path] = field(default_factory=dict)  # env: contract -> ABI JSON
    identity: ContractCall | None = None
    proof: ContractCall | None = None


@dataclass(frozen=True)
class FailsafeEvidence:
    """How the flows see an identity's state without the chain: an API path read with the probe
    user's token (``json``: pointer to the state) and/or SQL (``$1``: the probe user's e-mail)."""

    api_path: str | None = None
    api_pointer: str | None = None
    identity_sql: str | None = None
    passwords_sql: str | None = None
    event_sql: str | None = None
    active: str = "active"
    cancelled: str = "cancelled"
    event_done: tuple[str, ...] = ()  # failsafe event states that mean "executed"


@dataclass(frozen=True)
class FlowsSpec:
    """The Blocktrust flows spec (None: the four flows are not run) and extra named checks."""

    spec: Path | None
    evidence: FailsafeEvidence = field(default_factory=FailsafeEvidence)
    checks: Mapping[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    """A parsed, validated profile; see the module docstring."""

    name: str
    source: str  # the file, or "built-in <name>"
    description: str = ""
    health: tuple[HealthProbe, ...] = ()
    ready: HealthProbe | None = None
    metrics: str | None = None
    login: Probe | None = None  # the login route (debug probes, rate limit and CORS defaults)
    auth_steps: tuple[dict[str, Any], ...] = ()  # flow steps that capture {{token}}
    token_env: str | None = None
    bearer: tuple[Probe, ...] = ()
    bearer_from_openapi: bool = False  # the bearer endpoints come from the service's OpenAPI
    api_keys: ApiKeys | None = None
    rate_limit: RateLimitProbe | None = None
    webhook: WebhookProbe | None = None
    cors: Cors | None = None
    env_schema: Path | None = None
    migrations: Migrations = field(default_factory=lambda: Migrations("none"))
    tables: TableCheck = field(default_factory=lambda: TableCheck({}))
    listener: WorkerSource | None = None
    monitor: WorkerSource | None = None
    jobs: JobQueue | None = None
    chain_worker: str | None = None  # the reference chain worker's heartbeat table
    chain: ChainSpec | None = None
    flows: FlowsSpec = field(default_factory=lambda: FlowsSpec(None))
    require: tuple[str, ...] = ()

    def with_require(self, more: Collection[str]) -> Profile:
        """This profile with ``more`` required checks (``--require``), checked as in a file."""
        extra = tuple(_require(list(more), "--require"))
        _known_checks(self, extra, "--require")
        return _replace(self, require=tuple(dict.fromkeys(self.require + extra)))


def _known_checks(p: Profile, ids: Collection[str], where: str) -> None:
    """Each of ``ids`` is a group, a declared check id, or one of the profile's flows checks."""
    declared = catalogue_ids() | {f"flows.{n}" for n in p.flows.checks}
    for i, cid in enumerate(ids):
        if "." in cid and cid not in declared:
            near = sorted(d for d in declared if d.startswith(cid.split(".")[0] + "."))
            raise _fail(f"{where}[{i}]", f"no check {cid!r} (known: {', '.join(near)})")


def _replace(p: Profile, **changes: Any) -> Profile:
    from dataclasses import replace

    return replace(p, **changes)


# ---------------------------------------------------------------------------------------------
# Reading


@functools.cache
def builtin_profile(name: str = "reference") -> Profile:
    """The built-in profile ``name`` (one of :data:`BUILTIN_PROFILES`), read once."""
    if name not in BUILTIN_PROFILES:
        raise ProfileError(f"{name}: not a built-in profile ({', '.join(BUILTIN_PROFILES)})")
    return load_profile(name)


def load_profile(name_or_path: str | os.PathLike[str]) -> Profile:
    """Reads a built-in profile by name or a profile file, follows ``extends`` and checks the
    whole document; ProfileError names the file and the place."""
    doc, source, base = _read_with_extends(str(name_or_path), seen=())
    try:
        profile = _parse(doc, source, base)
        _known_checks(profile, profile.require, "require")
    except ProfileError as exc:
        raise ProfileError(f"{source}: {exc}") from None
    return profile


def _locate(ref: str, relative_to: Path | None) -> tuple[Path, str]:
    if ref in BUILTIN_PROFILES:
        return PROFILES_DIR / f"{ref}.yaml", f"built-in profile {ref}"
    path = Path(ref)
    if relative_to is not None and not path.is_absolute():
        path = relative_to / path
    if not path.suffix and not path.exists():
        known = ", ".join(BUILTIN_PROFILES)
        raise ProfileError(f"{ref}: no such profile file or built-in profile (built-in: {known})")
    return path, str(path)


def _read(path: Path, source: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"{source}: cannot read: {exc.strerror}") from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ProfileError(f"{source}: not valid JSON: line {exc.lineno}: {exc.msg}") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{source}: not valid YAML: {exc}") from None


def _merge(base: Any, over: Any) -> Any:
    """``over`` merged onto ``base`` mapping by mapping (JSON merge patch, RFC 7386): lists and
    scalars replace, ``null`` removes the key."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = _merge(base[k], v) if k in base else v
        return out
    return over


def _read_with_extends(
    ref: str, seen: tuple[str, ...], relative_to: Path | None = None
) -> tuple[dict[str, Any], str, Path]:
    path, source = _locate(ref, relative_to)
    if str(path) in seen:
        raise ProfileError(f"{source}: extends: a cycle ({' -> '.join(seen)} -> {path})")
    doc = _read(path, source)
    if not isinstance(doc, dict):
        raise ProfileError(f"{source}: must be a mapping with 'schema: {SCHEMA}'")
    if doc.get("schema") != SCHEMA:
        raise ProfileError(f"{source}: schema: must be {SCHEMA!r} (got {doc.get('schema')!r})")
    parent = doc.get("extends")
    if parent is None:
        return doc, source, path.parent
    if not isinstance(parent, str) or not parent:
        raise ProfileError(f"{source}: extends: must be a built-in name or a file")
    try:
        base_doc, _, base_dir = _read_with_extends(parent, (*seen, str(path)), path.parent)
    except ProfileError as exc:
        raise ProfileError(f"{source}: extends: {exc}") from None
    del base_dir  # relative paths resolve against the file given (built-ins name none)
    merged = _merge(base_doc, {k: v for k, v in doc.items() if k != "extends"})
    return merged, source, path.parent


# ---------------------------------------------------------------------------------------------
# Checking, key by key


def _map(
    d: Any, where: str, keys: Collection[str], required: Collection[str] = ()
) -> dict[Any, Any]:
    if not isinstance(d, dict):
        raise _fail(where, "must be a mapping")
    unknown = sorted(set(d) - set(keys), key=str)
    if unknown:
        raise _fail(where, f"unknown key {unknown[0]!r} (known: {', '.join(sorted(keys))})")
    for k in required:
        if k not in d:
            raise _fail(where, f"missing {k!r}")
    return d


def _str(v: Any, where: str, pattern: re.Pattern[str] | None = None, what: str = "") -> str:
    if not isinstance(v, str) or not v.strip():
        raise _fail(where, "must be a non-empty string")
    if pattern is not None and not pattern.match(v):
        raise _fail(where, f"not {what or 'valid'}: {v!r}")
    return v


def _path(v: Any, where: str) -> str:
    p = _str(v, where)
    if not p.startswith("/") or any(c.isspace() for c in p):
        raise _fail(where, f"must be a path starting with '/' without spaces: {p!r}")
    return p


def _pointer(v: Any, where: str) -> str:
    p = _str(v, where)
    if not p.startswith("/"):
        raise _fail(where, f"not a JSON pointer (starts with '/'): {p!r}")
    return p


def _number(v: Any, where: str, minimum: float = 0.0, integer: bool = False) -> float:
    ok = isinstance(v, int) if integer else isinstance(v, (int, float))
    if isinstance(v, bool) or not ok or v < minimum:
        raise _fail(where, f"must be {'an integer' if integer else 'a number'} >= {minimum:g}")
    return float(v)


def _none(v: Any) -> bool:
    return v is None or v == "none" or v is False


def _probe(v: Any, where: str) -> Probe:
    if isinstance(v, str):
        parts = v.split()
        if len(parts) == 1 and parts[0].startswith("/"):
            parts = ["GET", parts[0]]
        if len(parts) != 2 or parts[0].upper() not in _METHODS:
            raise _fail(where, f"not 'METHOD /path': {v!r}")
        return Probe(parts[0].upper(), _path(parts[1], where))
    d = _map(v, where, {"method", "path"}, ("path",))
    method = str(d.get("method", "GET")).upper()
    if method not in _METHODS:
        raise _fail(f"{where}.method", f"not an HTTP method: {d.get('method')!r}")
    return Probe(method, _path(d["path"], f"{where}.path"))


def _probes(v: Any, where: str) -> tuple[Probe, ...]:
    if not isinstance(v, list) or not v:
        raise _fail(where, "must be a non-empty list of 'METHOD /path'")
    return tuple(_probe(x, f"{where}[{i}]") for i, x in enumerate(v))


def _expect(v: Any, where: str) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise _fail(where, "must be a mapping of JSON pointer: value")
    out = {}
    for k, val in v.items():
        _pointer(k, f"{where}.{k}")
        if isinstance(val, dict):
            _map(val, f"{where}.{k}", {"exists"}, ("exists",))
            if val["exists"] is not True:
                raise _fail(f"{where}.{k}.exists", "must be true")
        elif isinstance(val, list):
            raise _fail(f"{where}.{k}", "must be a value or {exists: true}")
        out[k] = val
    return out


def _health(v: Any, where: str) -> HealthProbe:
    if isinstance(v, str):
        return HealthProbe(_path(v, where))
    d = _map(v, where, {"path", "expect"}, ("path",))
    return HealthProbe(
        _path(d["path"], f"{where}.path"), _expect(d.get("expect"), f"{where}.expect")
    )


def _file(v: Any, where: str, base: Path, *, directory: bool = False) -> Path:
    p = Path(_str(v, where)).expanduser()
    p = p if p.is_absolute() else base / p
    if directory and not p.is_dir():
        raise _fail(where, f"not a directory: {p}")
    if not directory and not p.is_file():
        raise _fail(where, f"no such file: {p}")
    return p


def _sql(v: Any, where: str) -> str:
    """A read-only, parameter-free (or ``$1``) single statement."""
    q = _str(v, where).strip().rstrip(";")
    if ";" in q:
        raise _fail(where, "must be one statement")
    if not re.match(r"(?is)^\s*(select|with)\b", q):
        raise _fail(where, "must be a read-only query (SELECT or WITH)")
    return q


def _parse(doc: dict[str, Any], source: str, base: Path) -> Profile:
    top = _map(
        doc,
        "profile",
        {
            "schema", "name", "description", "http", "auth", "security", "env", "database",
            "workers", "chain", "flows", "require",
        },
        ("name",),
    )  # fmt: skip
    name = _str(top["name"], "name")
    description = top.get("description", "")
    if not isinstance(description, str):
        raise _fail("description", "must be a string")
    kw: dict[str, Any] = {}
    kw.update(_http(top.get("http"), "http"))
    kw.update(_auth(top.get("auth"), "auth"))
    kw.update(_security(top.get("security"), "security", kw.get("login")))
    kw.update(_env(top.get("env"), "env", base))
    kw.update(_database(top.get("database"), "database", base))
    kw.update(_workers(top.get("workers"), "workers"))
    if not _none(top.get("chain")):
        kw["chain"] = _chain(top["chain"], "chain", base)
    kw["flows"] = _flows(top.get("flows"), "flows", base, kw.get("auth_steps", ()))
    kw["require"] = tuple(_require(top.get("require") or [], "require"))
    return Profile(name=name, source=source, description=description, **kw)


def _http(v: Any, where: str) -> dict[str, Any]:
    if v is None:
        return {}
    d = _map(v, where, {"health", "ready", "metrics"})
    out: dict[str, Any] = {}
    health = d.get("health")
    if health is not None:
        items = health if isinstance(health, list) else [health]
        if not items:
            raise _fail(f"{where}.health", "must name at least one path")
        out["health"] = tuple(_health(h, f"{where}.health[{i}]") for i, h in enumerate(items))
    if not _none(d.get("ready")):
        out["ready"] = _health(d["ready"], f"{where}.ready")
    if not _none(d.get("metrics")):
        out["metrics"] = _path(d["metrics"], f"{where}.metrics")
    return out


def _step_list(v: Any, where: str) -> tuple[dict[str, Any], ...]:
    if not isinstance(v, list) or not v or not all(isinstance(s, dict) for s in v):
        raise _fail(where, "must be a non-empty list of flow steps (docs/tour_flows.md)")
    return tuple(v)


def _auth(v: Any, where: str) -> dict[str, Any]:
    if v is None:
        return {}
    d = _map(v, where, {"login", "steps", "token_env"})
    out: dict[str, Any] = {}
    if d.get("login") is not None:
        out["login"] = _probe(d["login"], f"{where}.login")
    if d.get("token_env") is not None:
        out["token_env"] = _str(d["token_env"], f"{where}.token_env", _IDENT, "a variable name")
    if d.get("steps") is not None:
        steps = _step_list(d["steps"], f"{where}.steps")
        captures = {c for s in steps for c in (s.get("capture") or {})}
        if "token" not in captures:
            raise _fail(f"{where}.steps", "no step captures 'token' (the credential flows use)")
        out["auth_steps"] = steps
    if "token_env" in out and "auth_steps" in out:
        raise _fail(where, "give either token_env or steps, not both")
    return out


def _security(v: Any, where: str, login: Probe | None) -> dict[str, Any]:
    if v is None:
        return {}
    d = _map(v, where, {"bearer", "api_keys", "login_rate_limit", "webhook", "cors"})
    out: dict[str, Any] = {}
    if d.get("bearer") == "openapi":
        out["bearer_from_openapi"] = True
    elif not _none(d.get("bearer")):
        out["bearer"] = _probes(d["bearer"], f"{where}.bearer")
    if not _none(d.get("api_keys")):
        w = f"{where}.api_keys"
        a = _map(d["api_keys"], w, {"header", "endpoints"}, ("endpoints",))
        header = _str(a.get("header", "X-API-Key"), f"{w}.header", re.compile(r"^[A-Za-z0-9-]+$"))
        if a["endpoints"] == "openapi":
            out["api_keys"] = ApiKeys(header, (), from_openapi=True)
        else:
            out["api_keys"] = ApiKeys(header, _probes(a["endpoints"], f"{w}.endpoints"))
    if not _none(d.get("login_rate_limit")):
        w = f"{where}.login_rate_limit"
        r = _map(d["login_rate_limit"], w, {"path", "method", "json", "form", "attempts"})
        if "path" in r:
            probe = _probe({"method": r.get("method", "POST"), "path": r["path"]}, w)
        elif login is not None:
            probe = login
        else:
            raise _fail(w, "missing 'path' (and no auth.login to default to)")
        if "json" in r and "form" in r:
            raise _fail(w, "give json or form, not both")
        form = r.get("form")
        if form is not None and not (
            isinstance(form, dict) and all(isinstance(x, str) for x in form.values())
        ):
            raise _fail(f"{w}.form", "must be a mapping of name: text")
        attempts = int(_number(r.get("attempts", 30), f"{w}.attempts", 1, integer=True))
        out["rate_limit"] = RateLimitProbe(probe, r.get("json"), form, attempts)
    if not _none(d.get("webhook")):
        w = f"{where}.webhook"
        h = _map(
            d["webhook"],
            w,
            {"path", "scheme", "header", "body", "algorithm", "secret_env"},
            ("path",),
        )
        scheme = h.get("scheme", "sumsub")
        if scheme not in _WEBHOOK_SCHEMES:
            raise _fail(f"{w}.scheme", f"must be one of {', '.join(_WEBHOOK_SCHEMES)}")
        alg = h.get("algorithm", "HMAC_SHA256_HEX")
        if alg not in _SUMSUB_ALGORITHMS:
            raise _fail(f"{w}.algorithm", f"must be one of {', '.join(_SUMSUB_ALGORITHMS)}")
        header = _str(h.get("header", _WEBHOOK_SCHEMES[scheme]), f"{w}.header")
        body = h.get("body", {"probe": "validate_all_flows"})
        secret_env = _str(
            h.get("secret_env", "SUMSUB_SECRET_KEY"), f"{w}.secret_env", _IDENT, "a variable name"
        )
        out["webhook"] = WebhookProbe(
            _path(h["path"], f"{w}.path"), scheme, header, body, alg, secret_env
        )
    if not _none(d.get("cors")):
        w = f"{where}.cors"
        c = _map(d["cors"], w, {"path", "origins"})
        if "path" in c:
            path = _path(c["path"], f"{w}.path")
        elif login is not None:
            path = login.path
        else:
            raise _fail(w, "missing 'path' (and no auth.login to default to)")
        origins = c.get("origins", "env")
        if origins == "env":
            out["cors"] = Cors(path)
        elif (
            isinstance(origins, list)
            and origins
            and all(isinstance(o, str) and re.match(r"^https?://[^/\s]+$", o) for o in origins)
        ):
            out["cors"] = Cors(path, tuple(origins))
        else:
            raise _fail(f"{w}.origins", "must be 'env' (CORS_ORIGINS) or a list of https://host")
    return out


def _env(v: Any, where: str, base: Path) -> dict[str, Any]:
    if v is None:
        return {}
    d = _map(v, where, {"schema"}, ("schema",))
    if d["schema"] == "builtin":
        from validate_all_flows.envcheck import BUILTIN_SCHEMA

        return {"env_schema": BUILTIN_SCHEMA}
    if isinstance(d["schema"], str) and d["schema"].startswith("builtin:"):
        # One of the schemas shipped beside the built-in profiles (schemas/NAME.yaml).
        from validate_all_flows.envcheck import BUILTIN_SCHEMA

        name = d["schema"].split(":", 1)[1]
        path = BUILTIN_SCHEMA.parent / f"{name}.yaml"
        if not re.fullmatch(r"[a-z0-9_]+", name) or not path.is_file():
            known = sorted(p.stem for p in BUILTIN_SCHEMA.parent.glob("*.yaml"))
            raise _fail(f"{where}.schema", f"no built-in schema {name!r} ({', '.join(known)})")
        return {"env_schema": path}
    if _none(d["schema"]):
        return {}
    path = _file(d["schema"], f"{where}.schema", base)
    from validate_all_flows.envcheck import EnvSchema, EnvSchemaError

    try:
        EnvSchema.load(path)
    except EnvSchemaError as exc:
        raise _fail(f"{where}.schema", str(exc)) from None
    return {"env_schema": path}


def _index(v: Any, where: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$", str(v))
    if not isinstance(v, str) or not m:
        raise _fail(where, f"not 'table(column)': {v!r}")
    return m.group(1), m.group(2)


def _database(v: Any, where: str, base: Path) -> dict[str, Any]:
    if v is None:
        return {}
    d = _map(v, where, {"migrations", "tables", "indexes"})
    out: dict[str, Any] = {}
    if d.get("migrations") is not None:
        w = f"{where}.migrations"
        m = d["migrations"]
        if isinstance(m, str):
            m = {"source": m}
        m = _map(m, w, {"source", "directory", "revision", "table"}, ("source",))
        src = m["source"]
        if src not in _MIGRATION_SOURCES:
            raise _fail(f"{w}.source", f"must be one of {', '.join(_MIGRATION_SOURCES)}")
        directory = None
        if m.get("directory") is not None:
            if src in ("flyway", "none"):
                raise _fail(f"{w}.directory", f"not used with source {src}")
            directory = _file(m["directory"], f"{w}.directory", base, directory=True)
        revision = None
        if m.get("revision") is not None:
            if src != "alembic":
                raise _fail(f"{w}.revision", "only for source alembic")
            revision = _str(m["revision"], f"{w}.revision", re.compile(r"^[A-Za-z0-9_]+$"))
        if directory is not None and revision is not None:
            raise _fail(w, "give directory or revision, not both")
        table = None
        if m.get("table") is not None:
            table = _str(m["table"], f"{w}.table", _IDENT, "a table name")
        out["migrations"] = Migrations(src, directory, revision, table)
    columns: dict[str, tuple[str, ...]] = {}
    tables = d.get("tables") or {}
    if not isinstance(tables, dict):
        raise _fail(f"{where}.tables", "must be a mapping of table: [columns]")
    for t, cols in tables.items():
        w = f"{where}.tables.{t}"
        _str(t, w, _IDENT, "a table name")
        cols = cols or []
        if not isinstance(cols, list):
            raise _fail(w, "must be a list of column names")
        columns[t] = tuple(
            _str(c, f"{w}[{i}]", _IDENT, "a column name") for i, c in enumerate(cols)
        )
    indexes = d.get("indexes") or []
    if not isinstance(indexes, list):
        raise _fail(f"{where}.indexes", "must be a list of 'table(column)'")
    idx = tuple(_index(x, f"{where}.indexes[{i}]") for i, x in enumerate(indexes))
    out["tables"] = TableCheck(columns, idx)
    return out


def _worker(v: Any, where: str, ours: str) -> WorkerSource | None:
    if _none(v):
        return None
    d = _map(v, where, {ours, "table", "time", "block", "sql", "max_age_s"})
    kinds = [k for k in (ours, "table", "sql") if k in d]
    if len(kinds) != 1:
        raise _fail(where, f"give exactly one of {ours}, table or sql")
    max_age = _number(d["max_age_s"], f"{where}.max_age_s", 1) if "max_age_s" in d else None
    if ours in d:
        table = _str(d[ours], f"{where}.{ours}", _IDENT, "a table name")
        return WorkerSource(ours, table=table, max_age_s=max_age)
    if "sql" in d:
        if "time" in d or "block" in d:
            raise _fail(where, "time and block go with table, not sql")
        return WorkerSource("sql", sql=_sql(d["sql"], f"{where}.sql"), max_age_s=max_age)
    table = (
        d["table"]
        if d["table"] == "auto" and ours == "checkpoints"
        else (_str(d["table"], f"{where}.table", _IDENT, "a table name"))
    )
    time_col = _str(d["time"], f"{where}.time", _IDENT, "a column name") if "time" in d else None
    block = _str(d["block"], f"{where}.block", _IDENT, "a column name") if "block" in d else None
    return WorkerSource("table", table, time_col, block, None, max_age)


def _workers(v: Any, where: str) -> dict[str, Any]:
    if v is None:
        return {}
    d = _map(v, where, {"listener", "monitor", "jobs", "chain"})
    chain = None
    if not _none(d.get("chain")):
        chain = _str(d["chain"], f"{where}.chain", _IDENT, "a table name (chain_workers)")
    return {
        "chain_worker": chain,
        "listener": _worker(d.get("listener"), f"{where}.listener", "checkpoints"),
        "monitor": _worker(d.get("monitor"), f"{where}.monitor", "heartbeats"),
        "jobs": None if _none(d.get("jobs")) else _jobs(d["jobs"], f"{where}.jobs"),
    }


def _states(v: Any, where: str) -> tuple[str, ...]:
    if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
        raise _fail(where, "must be a non-empty list of states")
    return tuple(v)


def _jobs(v: Any, where: str) -> JobQueue:
    keys = {"table", "status", "pending", "failed", "time", "backlog_sql", "failed_sql",
            "max_backlog_age_s", "max_failed"}  # fmt: skip
    d = _map(v, where, keys)
    by_sql = "backlog_sql" in d or "failed_sql" in d
    if by_sql == ("table" in d):
        raise _fail(where, "give table (with its columns) or backlog_sql and failed_sql")
    kw: dict[str, Any] = {}
    if "max_backlog_age_s" in d:
        kw["max_backlog_age_s"] = _number(d["max_backlog_age_s"], f"{where}.max_backlog_age_s", 1)
    if "max_failed" in d:
        kw["max_failed"] = int(_number(d["max_failed"], f"{where}.max_failed", 0, integer=True))
    if by_sql:
        for k in ("backlog_sql", "failed_sql"):
            if k not in d:
                raise _fail(where, f"missing {k!r}")
            kw[k] = _sql(d[k], f"{where}.{k}")
        return JobQueue(**kw)
    kw["table"] = _str(d["table"], f"{where}.table", _IDENT, "a table name")
    for key, attr in (("status", "status_column"), ("time", "time_column")):
        if key in d:
            kw[attr] = _str(d[key], f"{where}.{key}", _IDENT, "a column name")
    for key in ("pending", "failed"):
        if key in d:
            kw[key] = _states(d[key], f"{where}.{key}")
    return JobQueue(**kw)


_SIGNATURE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\(([a-z0-9]+(,[a-z0-9]+)*)?\)$")


def _call(v: Any, where: str, contracts: Collection[str]) -> ContractCall:
    d = _map(v, where, {"contract", "function", "values", "word"}, ("contract", "function"))
    contract = _str(d["contract"], f"{where}.contract")
    if contract not in contracts:
        raise _fail(f"{where}.contract", f"not one of {', '.join(contracts)}: {contract!r}")
    fn = _str(d["function"], f"{where}.function", _SIGNATURE, "a signature like statusOf(uint256)")
    if fn.count(",") or fn.endswith("()"):
        raise _fail(f"{where}.function", "must take exactly one argument (the id or the hash)")
    values = d.get("values") or {}
    if not isinstance(values, dict) or not all(
        isinstance(x, int) and not isinstance(x, bool) for x in values.values()
    ):
        raise _fail(f"{where}.values", "must be a mapping of state: integer")
    word = int(_number(d.get("word", 0), f"{where}.word", 0, integer=True))
    return ContractCall(contract, fn, dict(values), word)


def _chain(v: Any, where: str, base: Path) -> ChainSpec:
    from blocktrust_native.listener.contracts import CONTRACT_NAMES

    d = _map(v, where, {"contracts", "identity", "proof"}, ("contracts",))
    w = f"{where}.contracts"
    c = d["contracts"]
    if c == "config":
        spec = ChainSpec("config")
    else:
        c = _map(c, w, {"variables", "abi"}, ("variables",))
        variables = c["variables"]
        if not isinstance(variables, dict) or set(variables) != set(CONTRACT_NAMES):
            raise _fail(f"{w}.variables", f"must map each of {', '.join(CONTRACT_NAMES)}")
        for k, var in variables.items():
            _str(var, f"{w}.variables.{k}", _IDENT, "a variable name")
        abi = c.get("abi") or {}
        if not isinstance(abi, dict) or (abi and set(abi) != set(CONTRACT_NAMES)):
            raise _fail(f"{w}.abi", f"must map each of {', '.join(CONTRACT_NAMES)} to a file")
        files = {k: _file(p, f"{w}.abi.{k}", base) for k, p in abi.items()}
        for k, p in files.items():
            try:
                doc = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise _fail(f"{w}.abi.{k}", f"not a readable JSON ABI: {exc}") from None
            if isinstance(doc, dict):
                doc = doc.get("abi")
            if not isinstance(doc, list):
                raise _fail(f"{w}.abi.{k}", "must hold an ABI list (or an object with 'abi')")
        spec = ChainSpec("env", dict(variables), files)
    identity = (
        _call(d["identity"], f"{where}.identity", CONTRACT_NAMES) if "identity" in d else None
    )
    proof = _call(d["proof"], f"{where}.proof", CONTRACT_NAMES) if "proof" in d else None
    from dataclasses import replace

    return replace(spec, identity=identity, proof=proof)


def _flows(v: Any, where: str, base: Path, auth_steps: tuple[dict[str, Any], ...]) -> FlowsSpec:
    if v is None:
        return FlowsSpec(None)
    d = _map(v, where, {"spec", "evidence", "checks"})
    spec: Path | None = None
    s = d.get("spec")
    if s == "builtin":
        from validate_all_flows.flow_contract import BUILTIN_FLOWS

        spec = BUILTIN_FLOWS
    elif not _none(s):
        spec = _file(s, f"{where}.spec", base)
        from blocktrust_native.errors import FlowSpecError
        from validate_all_flows.flow_contract import check_flows_file

        try:
            check_flows_file(spec)
        except FlowSpecError as exc:
            raise _fail(f"{where}.spec", str(exc)) from None
    evidence = FailsafeEvidence()
    if d.get("evidence") is not None:
        w = f"{where}.evidence"
        e = _map(
            d["evidence"],
            w,
            {"api", "identity_sql", "passwords_sql", "event_sql", "active", "cancelled",
             "event_done"},
        )  # fmt: skip
        api_path = api_pointer = None
        if e.get("api") is not None:
            a = _map(e["api"], f"{w}.api", {"path", "json"}, ("path", "json"))
            api_path = _path(a["path"], f"{w}.api.path")
            api_pointer = _pointer(a["json"], f"{w}.api.json")
        done = e.get("event_done", [])
        if not isinstance(done, list) or not all(isinstance(x, str) for x in done):
            raise _fail(f"{w}.event_done", "must be a list of states")
        sql = {
            k: _sql(e[k], f"{w}.{k}") if e.get(k) is not None else None
            for k in ("identity_sql", "passwords_sql", "event_sql")
        }
        evidence = FailsafeEvidence(
            api_path,
            api_pointer,
            identity_sql=sql["identity_sql"],
            passwords_sql=sql["passwords_sql"],
            event_sql=sql["event_sql"],
            active=_str(e.get("active", "active"), f"{w}.active"),
            cancelled=_str(e.get("cancelled", "cancelled"), f"{w}.cancelled"),
            event_done=tuple(done),
        )
    checks: dict[str, dict[str, Any]] = {}
    raw = d.get("checks") or {}
    if not isinstance(raw, dict):
        raise _fail(f"{where}.checks", "must be a mapping of name: {steps: [...]}")
    for cname, body in raw.items():
        w = f"{where}.checks.{cname}"
        _str(cname, w, _CHECK_NAME, "a check name (lower case, digits, _)")
        if cname in _RESERVED_FLOWS:
            raise _fail(w, f"{cname!r} is one of the Blocktrust flows; choose another name")
        b = _map(body, w, {"title", "vars", "steps"}, ("steps",))
        steps = _step_list(b["steps"], f"{w}.steps")
        if not any("assert" in s for s in steps):
            raise _fail(f"{w}.steps", "no step asserts anything (a check must judge something)")
        checks[cname] = {"title": b.get("title", cname), "vars": b.get("vars") or {},
                         "steps": list(steps)}  # fmt: skip
        _compile_check(cname, checks[cname], base, w, auth_steps)
    return FlowsSpec(spec, evidence, checks)


def _compile_check(
    name: str, body: dict[str, Any], base: Path, where: str, auth: tuple[dict[str, Any], ...]
) -> None:
    """Compiles an extra flows check as the validator will run it (the auth steps first,
    placeholders standing in for the probe user and token)."""
    from blocktrust_native.errors import FlowSpecError
    from blocktrust_native.flows import FlowSpec

    given = {"user_email": "x", "password": "x"} | ({} if auth else {"token": "x"})
    try:
        FlowSpec.from_dict(
            {"name": name, "vars": body["vars"], "steps": [*auth, *body["steps"]]},
            base_dir=base,
            vars=given,
        )
    except FlowSpecError as exc:
        raise _fail(where, str(exc)) from None
    body["base_dir"] = str(base)


def _require(v: Any, where: str) -> list[str]:
    if not isinstance(v, list):
        raise _fail(where, "must be a list of check ids or groups")
    out = []
    for i, item in enumerate(v):
        w = f"{where}[{i}]"
        cid = _str(item, w).strip()
        group = cid.split(".", 1)[0]
        if group not in _GROUPS:
            raise _fail(w, f"{cid!r} is not a check id or group (groups: {', '.join(_GROUPS)})")
        out.append(cid)
    return out
