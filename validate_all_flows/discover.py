"""``python -m validate_all_flows init-profile``: a commented starter profile from what a
deployment shows without side effects.

It reads the OpenAPI document if the service publishes one (routes, security schemes, the login
route), GETs the usual health, readiness and metrics paths, GETs a few usual route names to see
which exist (a 405 to a GET is a POST-only route; a 401/403 is a protected one), and reads the
database's catalog (the migration ledger kind, the tables and their columns, the workers' tables).
It never registers a user, posts a webhook, logs in or spends gas: every request is a GET. What it
cannot decide is written as a commented question. The profile it writes is checked as
``--profile`` would check it before it is written.

    python -m validate_all_flows init-profile --base-url URL [--database-url URL] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from validate_all_flows.httpcall import HttpResult, call

__all__ = ["Discovery", "discover", "main", "render_profile"]

HEALTH_PATHS = ("/health", "/api/health", "/healthz", "/api/healthz", "/status", "/livez")
READY_PATHS = ("/ready", "/api/ready", "/readyz", "/api/readyz")
METRICS_PATHS = ("/metrics",)
#: Routes that usually need a credential (GET with none: 401/403 says protected).
PROTECTED_GUESSES = (
    "/api/identity", "/api/failsafe/status", "/api/explorer/events", "/api/me", "/api/users/me",
    "/users/me", "/me", "/api/admin/overview", "/admin", "/api/admin",
)  # fmt: skip
LOGIN_GUESSES = (
    "/api/auth/login", "/auth/login", "/api/login", "/login", "/token", "/api/token",
    "/auth/token", "/api/auth/token",
)  # fmt: skip
WEBHOOK_GUESSES = ("/api/kyc/webhook", "/kyc/webhook", "/webhooks/sumsub", "/api/webhooks/sumsub")
#: Routes of the Blocktrust flows (their presence suggests the built-in flows spec fits).
BLOCKTRUST_ROUTES = ("/api/auth/register", "/api/kyc/start", "/api/documents/sign")
_STATUS_OK = ("ok", "healthy", "up", "pass", "alive")


@dataclass
class Discovery:
    """What init-profile saw (each list holds lines for the questions and notes)."""

    base_url: str
    openapi_path: str | None = None
    health: list[dict[str, Any]] = field(default_factory=list)
    ready: str | None = None
    metrics: str | None = None
    login: str | None = None
    login_token_field: str | None = None
    bearer: list[str] = field(default_factory=list)
    api_key_header: str | None = None
    api_key_routes: list[str] = field(default_factory=list)
    webhook: str | None = None
    blocktrust_routes: bool = False
    migrations: dict[str, Any] | None = None
    tables: dict[str, list[str]] = field(default_factory=dict)
    listener: dict[str, Any] | None = None
    monitor: dict[str, Any] | None = None
    questions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _get(base: str, path: str) -> HttpResult:
    return call("GET", base + path, timeout=10)


def _probe_http(d: Discovery) -> None:
    from validate_all_flows.checks.http import prometheus_problems
    from validate_all_flows.openapi import fetch_openapi

    base = d.base_url.rstrip("/")
    first = _get(base, "/")
    if first.status == 0:
        raise ConnectionError(f"the service at {d.base_url} does not answer: {first.error}")
    for path in HEALTH_PATHS:
        r = _get(base, path)
        if r.status != 200:
            continue
        doc = r.json()
        expect: dict[str, Any] = {}
        if isinstance(doc, dict):
            if str(doc.get("status", "")).lower() in _STATUS_OK:
                expect["/status"] = doc["status"]
            if "version" in doc:
                expect["/version"] = {"exists": True}
        d.health.append({"path": path, "expect": expect} if expect else {"path": path})
        break
    if not d.health:
        d.questions.append(f"no health path answered 200 (tried {', '.join(HEALTH_PATHS)})")
    for path in READY_PATHS:
        if _get(base, path).status in (200, 503):  # 503: there, but a dependency is down
            d.ready = path
            break
    for path in METRICS_PATHS:
        r = _get(base, path)
        if r.status == 200:
            samples, problems = prometheus_problems(r.body.decode(errors="replace"))
            if samples and not problems:
                d.metrics = path
    api = fetch_openapi(base)
    if api is not None:
        d.openapi_path = api.path
        d.bearer = [f"{m} {p}" for m, p in api.protected("bearer")]
        headers = sorted(set(api.api_key_headers.values()))
        if headers:
            d.api_key_header = headers[0]
            d.api_key_routes = [f"{m} {p}" for m, p in api.protected("api_key", headers[0])]
        login = api.login_route()
        if login:
            d.login, d.login_token_field = f"{login[0]} {login[1]}", login[2]
        paths = {p for _, p, _ in api.operations()}
        d.blocktrust_routes = all(r in paths for r in BLOCKTRUST_ROUTES)
        hooks = [p for p in paths if "webhook" in p]
        d.webhook = hooks[0] if len(hooks) == 1 else None
        return
    d.notes.append("no OpenAPI document: routes were guessed from usual names with GETs")
    for path in PROTECTED_GUESSES:
        if _get(base, path).status in (401, 403):
            d.bearer.append(f"GET {path}")
    for path in LOGIN_GUESSES:
        if _get(base, path).status == 405:  # there, POST only
            d.login = f"POST {path}"
            break
    for path in WEBHOOK_GUESSES:
        if _get(base, path).status == 405:
            d.webhook = path
            break
    d.blocktrust_routes = all(_get(base, r).status in (401, 405, 422) for r in BLOCKTRUST_ROUTES)


def _probe_database(d: Discovery, database_url: str) -> None:
    from blocktrust_native.pool import Pool

    with Pool(database_url, min_size=0, max_size=1, connect_timeout=5) as pool:
        rows = pool.execute(
            "SELECT table_name::text, column_name::text, data_type::text "
            "FROM information_schema.columns WHERE table_schema = current_schema() "
            "ORDER BY table_name, ordinal_position"
        )
        columns: dict[str, list[tuple[str, str]]] = {}
        for table, column, kind in rows:
            columns.setdefault(str(table), []).append((str(column), str(kind)))
        version = None
        if "alembic_version" in columns:
            got = pool.execute("SELECT version_num FROM alembic_version")
            version = str(got[0][0]) if got else None
    ledgers = {"schema_migrations", "alembic_version", "flyway_schema_history"}
    if "schema_migrations" in columns and any(
        c == "checksum" for c, _ in columns["schema_migrations"]
    ):
        d.migrations = {"source": "ledger"}
    elif "alembic_version" in columns:
        d.migrations = {"source": "alembic"}
        d.questions.append(
            "database.migrations: Alembic; give directory: <your alembic/versions folder> to "
            f"judge against its head (applied now: {version or 'nothing'})"
        )
    elif "flyway_schema_history" in columns:
        d.migrations = {"source": "flyway"}
    elif columns:
        d.migrations = {"source": "sql-dir"}
        d.questions.append(
            "database.migrations: no migration ledger; if the schema comes from SQL files "
            "applied by hand, give directory: <the folder of *.sql files>, else source: none"
        )
    else:
        d.migrations = {"source": "none"}
        d.questions.append("the database has no tables in its current schema: is it the right one?")
    d.tables = {t: [c for c, _ in cols] for t, cols in columns.items() if t not in ledgers}
    from validate_all_flows.checks.workers import BLOCK_COLUMNS

    if "listener_checkpoints" in columns:
        d.listener = {"checkpoints": "listener_checkpoints"}
    else:
        candidates = [t for t, cols in columns.items() if any(c in BLOCK_COLUMNS for c, _ in cols)]
        if len(candidates) == 1:
            d.listener = {"table": candidates[0]}
        elif candidates:
            d.questions.append(
                f"workers.listener: which of {', '.join(candidates)} holds the listener's block?"
            )
    if "monitor_heartbeats" in columns:
        d.monitor = {"heartbeats": "monitor_heartbeats"}
    elif "metrics" in columns and any(k.startswith("timestamp") for _, k in columns["metrics"]):
        d.monitor = {"table": "metrics"}


def discover(base_url: str, database_url: str | None = None) -> Discovery:
    """Looks at the deployment (GETs and catalog reads only); see the module docstring."""
    d = Discovery(base_url)
    _probe_http(d)
    if database_url:
        _probe_database(d, database_url)
    else:
        d.questions.append("no --database-url: database and workers left out (rerun with it)")
    return d


def _dump(value: Any) -> str:
    """``value`` as one line of YAML (flow style)."""
    if not isinstance(value, (dict, list)):
        return json.dumps(value)  # JSON scalars are YAML scalars, with no document marker
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10000).strip()


def render_profile(d: Discovery, name: str) -> str:
    """The commented profile text for discovery ``d``."""
    out = [
        f"# Starter profile for {d.base_url}",
        "# written by `python -m validate_all_flows init-profile`.",
        "# Everything below was seen without side effects (GETs and catalog reads only); read it,",
        "# answer the questions (lines starting with '# ?'), then run:",
        "#   python -m validate_all_flows --profile THIS_FILE --base-url URL --database-url URL",
        "# Keys: docs/profiles.md.",
        *[f"# note: {n}" for n in d.notes],
        "schema: blocktrust.profile/1",
        f"name: {_dump(name)}",
        "http:",
    ]
    if d.health:
        out.append(f"  health: {_dump(d.health)}")
    else:
        out.append("  # ? health: [/your/health/path]")
    out.append(
        f"  ready: {d.ready or 'none'}" + ("" if d.ready else "   # no readiness path answered")
    )
    out.append(f"  metrics: {d.metrics or 'none'}")
    if d.login:
        out += ["auth:", f"  login: {d.login}"]
    out.append(
        "  # ? auth.token_env: NAME   # a token for the profile's own flows checks, if any"
        if d.login
        else "# ? auth: {login: POST /your/login}   # no login route found"
    )
    out.append("security:")
    if d.bearer:
        where = f"from {d.openapi_path}" if d.openapi_path else "answered 401/403 without a token"
        out.append(f"  bearer: {_dump(d.bearer)}   # {where}")
    else:
        out.append("  # ? bearer: [GET /a/protected/route]   # none found")
    if d.api_key_header:
        routes = _dump(d.api_key_routes) if d.api_key_routes else "openapi"
        out.append(f"  api_keys: {{header: {d.api_key_header}, endpoints: {routes}}}")
    if d.login:
        out += [
            "  # ? login_rate_limit: the body a failed login sends and how many attempts may pass",
            "  login_rate_limit: none",
        ]
    if d.webhook:
        out += [
            f"  # ? webhook: which signing scheme does {d.webhook} use?",
            "  #   (sumsub | hmac-sha256 | stripe)",
            f"  webhook: {{path: {d.webhook}, scheme: sumsub}}",
        ]
    out.append(
        "  cors: none   # ? cors: {path: /some/path, origins: env}  (CORS_ORIGINS of --env-file)"
    )
    out.append(
        "env:\n  schema: none   # ? schema: builtin, or your own (validate_all_flows/envcheck.py)"
    )
    if d.migrations is not None:
        out += ["database:", f"  migrations: {_dump(d.migrations)}"]
        if d.tables:
            out.append("  tables:")
            out += [f"    {t}: {_dump(cols)}" for t, cols in d.tables.items()]
    out.append("workers:")
    out.append(f"  listener: {_dump(d.listener) if d.listener else 'none'}")
    out.append(f"  monitor: {_dump(d.monitor) if d.monitor else 'none'}")
    if d.listener or d.monitor:
        out.append("# ? require: [workers.listener, workers.monitor]   # must they run for GO?")
    out.append("# ? chain: {contracts: config, identity: ..., proof: ...}   # see docs/profiles.md")
    if d.blocktrust_routes:
        out += ["flows:", "  spec: builtin   # the Blocktrust routes are there"]
    else:
        out.append(
            "# ? flows: {spec: your-flows.yaml}   # the four Blocktrust flows, if this runs them"
        )
    if d.questions:
        out.append("# Questions init-profile could not answer:")
        out += [f"# ? {q}" for q in d.questions]
    return "\n".join(out) + "\n"


def main(argv: Sequence[str]) -> int:
    """``init-profile``: exit 0 written, 2 cannot run (with the reason on stderr)."""
    p = argparse.ArgumentParser(
        prog="python -m validate_all_flows init-profile",
        description="Write a commented starter profile from what the deployment shows "
        "(GETs and database catalog reads only: no sign-ups, webhooks or gas).",
    )
    p.add_argument("--base-url", required=True, help="the service, e.g. https://api.example.org")
    p.add_argument("--database-url", help="its PostgreSQL URL (read-only: the catalog)")
    p.add_argument("--output", help="write the profile here (default: stdout)")
    p.add_argument("--name", default="my-deployment", help="the profile's name")
    args = p.parse_args(list(argv))
    from validate_all_flows.redact import redact_url

    try:
        d = discover(args.base_url, args.database_url)
    except ConnectionError as exc:
        print(f"cannot run: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the database: name it without its password
        where = redact_url(args.database_url) if args.database_url else args.base_url
        print(f"cannot run: reading {where}: {type(exc).__name__}", file=sys.stderr)
        return 2
    text = render_profile(d, args.name)
    _check_rendered(text)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"cannot run: --output {args.output}: {exc.strerror}", file=sys.stderr)
            return 2
        print(f"wrote {args.output}: {len(d.questions)} question(s) to answer", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _check_rendered(text: str) -> None:
    """The written profile must load as --profile loads it (a bug here, not the operator's)."""
    import tempfile

    from validate_all_flows.profile import load_profile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "profile.yaml"
        path.write_text(text, encoding="utf-8")
        load_profile(path)
