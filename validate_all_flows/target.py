"""What ``validate_all_flows`` checks: the deployment's addresses, its environment and the targets.

Every input is optional; a check that needs a missing one is skipped with the reason. The values
of secrets (from the env file, the command line, the embedded stack) are collected so that every
piece of output passes through :meth:`Target.redact` first.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from validate_all_flows.envcheck import BUILTIN_SCHEMA
from validate_all_flows.flow_contract import BUILTIN_FLOWS
from validate_all_flows.profile import Profile, builtin_profile
from validate_all_flows.redact import Redactor

__all__ = [
    "CHAIN_OBJECTIVES",
    "MAX_CHAIN_OBJECTIVE_S",
    "MIN_GAS_BALANCE_HELP",
    "DeploymentSlo",
    "InputError",
    "LoadPlan",
    "Target",
    "add_chain_objective_arguments",
    "add_target_arguments",
    "chain_objective_option",
    "check_inputs",
    "check_min_gas_balance",
    "check_output_path",
    "check_url",
    "duration_argument",
    "parse_chain_objective",
    "parse_duration",
]


class InputError(ValueError):
    """Raised for an argument that cannot be used; the message names the argument and why
    (never a secret: URLs are shown redacted)."""


_URL_SCHEMES = {
    "service": ("http", "https"),
    "rpc": ("http", "https"),
    "database": ("postgresql", "postgres"),
}
_KEYWORD_DSN = re.compile(r"^\s*[A-Za-z_]+\s*=")


def check_url(option: str, value: str, kind: str) -> None:
    """Raises InputError naming ``option`` unless ``value`` is a usable URL of ``kind``
    (service, rpc: http(s) with a host and a valid port; database: a PostgreSQL URL, any
    ``+driver``, or a libpq ``key=value`` string)."""
    from validate_all_flows.redact import redact_url

    shown = redact_url(value)
    if kind == "database" and _KEYWORD_DSN.match(value):
        return
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", value)
    schemes = _URL_SCHEMES[kind]
    if not m:
        raise InputError(f"{option} {shown!r}: not a URL (expected {schemes[0]}://...)")
    scheme = m.group(1).lower().split("+", 1)[0]
    if scheme not in schemes:
        raise InputError(
            f"{option} {shown!r}: scheme {m.group(1)!r} is not one of {', '.join(schemes)}"
        )
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise InputError(f"{option} {shown!r}: {exc}") from None
    if port == 0:
        raise InputError(f"{option} {shown!r}: port 0 is not a port")
    if kind != "database" and not parts.hostname:
        raise InputError(f"{option} {shown!r}: no host in the URL")


def check_output_path(option: str, path: str) -> None:
    """Raises InputError unless a report can be written to ``path`` (found before any check
    runs, not after all of them)."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{option} {path}: is a directory")
    existed = p.exists()
    try:
        with p.open("a"):
            pass
    except OSError as exc:
        raise InputError(f"{option} {path}: cannot write it: {exc.strerror}") from None
    if not existed:
        p.unlink()  # written for real once the checks are done


_UNITS = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in ``"90"``, ``"90s"``, ``"15m"``, ``"12h"`` or ``"30d"``; ValueError otherwise
    (a negative, NaN or infinite duration is not one). The one parser of durations of both
    commands' options."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?\s*", text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (e.g. 60, 90s, 15m, 12h, 30d)")
    return float(m.group(1)) * _UNITS[m.group(2) or ""]


def duration_argument(text: str) -> float:
    """:func:`parse_duration` as an argparse ``type``: a bad duration is a usage error (exit 2)
    naming the option and the text."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


#: The longest a chain-work objective may be (a week): longer is a slip ("600d" for "600s"),
#: and the flows check would wait the fail-safe delay plus the margin for a fail-safe.
MAX_CHAIN_OBJECTIVE_S = 7 * 86400.0

#: The chain work objectives both commands take: (option, Target field, help). The defaults are
#: the Target's; help ends with the default as the other objectives' help does.
CHAIN_OBJECTIVES = (
    (
        "--failsafe-margin",
        "chain_margin_s",
        "how long a fail-safe may take past its execute_after before it is late; the flows "
        "check waits FAILSAFE_DELAY_MAX plus this for one (60s)",
    ),
    (
        "--worker-stale-after",
        "worker_stale_s",
        "a chain worker whose last heartbeat is older than 3 of its polls plus this is dead (2m)",
    ),
    (
        "--job-objective",
        "job_objective_s",
        "a mint or proof pending longer than this misses its objective (10m)",
    ),
)


def parse_chain_objective(text: str) -> float:
    """Seconds of a chain work objective: a duration (:func:`parse_duration`) > 0 and at most
    :data:`MAX_CHAIN_OBJECTIVE_S`; ValueError saying why otherwise."""
    seconds = parse_duration(text)
    if not 0 < seconds <= MAX_CHAIN_OBJECTIVE_S:
        raise ValueError(f"{text!r}: must be a duration > 0 and at most 7d (e.g. 90s, 10m, 2h)")
    return seconds


def _chain_objective_argument(text: str) -> float:
    try:
        return parse_chain_objective(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def chain_objective_option(option: str, field_name: str, prefix: str = "--") -> tuple[str, str]:
    """The name and ``dest`` of a :data:`CHAIN_OBJECTIVES` option under ``prefix``: under "--"
    the option as it is and the Target field's name (``args.chain_margin_s``); under
    "--blocktrust-" (the pytest plugin) ``--blocktrust-failsafe-margin`` and
    ``blocktrust_failsafe_margin`` (pytest's options share one namespace)."""
    if prefix == "--":
        return option, field_name
    name = prefix + option.removeprefix("--")
    return name, name.removeprefix("--").replace("-", "_")


def add_chain_objective_arguments(group: Any, prefix: str = "--") -> None:
    """Adds the chain work objectives (:data:`CHAIN_OBJECTIVES`) to a command's objectives: the
    same names, help and input checks in the main command, the monitor and (``prefix``
    "--blocktrust-", through pytest's option group, whose ``addoption`` takes the same
    arguments) the pytest plugin. A duration that is not one, 0 or beyond
    :data:`MAX_CHAIN_OBJECTIVE_S` is a usage error (the commands exit 2, pytest 4) naming the
    option and the value, before anything runs. The values land on the ``dest`` of
    :func:`chain_objective_option`; :meth:`Target.use_chain_objectives` reads them there."""
    add = getattr(group, "addoption", None) or group.add_argument  # pytest's, else argparse's
    for option, field_name, help_text in CHAIN_OBJECTIVES:
        name, dest = chain_objective_option(option, field_name, prefix)
        add(name, dest=dest, type=_chain_objective_argument, metavar="DURATION", help=help_text)


#: The help of ``--min-gas-balance`` (the commands') and ``--blocktrust-min-gas-balance``.
MIN_GAS_BALANCE_HELP = (
    "least balance of the chain worker's signer, in the chain's coin "
    "(default: enough for 20 fail-safes at the current gas price)"
)


def check_min_gas_balance(value: float | None, option: str = "--min-gas-balance") -> int | None:
    """``value`` (the chain worker's signer's least balance, in the chain's coin) in wei; None
    stays None (enough for ``workers.FAILSAFES_FUNDED`` fail-safes at the current gas price).
    Raises InputError naming ``option`` for a negative, NaN or infinite amount."""
    if value is None:
        return None
    if not 0 <= value < float("inf"):
        raise InputError(f"{option} must be >= 0, got {value}")
    return int(value * 10**18)


def _check_contracts(option: str, path: str) -> None:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InputError(f"{option} {path}: cannot read it: {exc.strerror}") from None
    try:
        json.loads(text)
    except ValueError as exc:
        raise InputError(f"{option} {path}: not valid JSON: {exc}") from None


def check_inputs(
    *,
    base_url: str | None = None,
    database_url: str | None = None,
    rpc_url: str | None = None,
    contracts: str | None = None,
    env_schema: str | None = None,
    prefix: str = "--",
) -> None:
    """Checks the options that name a deployment before anything runs; raises InputError naming
    the first unusable one (``prefix``: "--" for the commands, "--blocktrust-" for the plugin;
    the service URL option is ``--base-url`` / ``--blocktrust-url``)."""
    from validate_all_flows.envcheck import EnvSchema, EnvSchemaError

    base_opt = "--base-url" if prefix == "--" else f"{prefix}url"
    if base_url is not None:
        check_url(base_opt, base_url, "service")
    if database_url is not None:
        check_url(f"{prefix}database-url", database_url, "database")
    if rpc_url is not None:
        check_url(f"{prefix}rpc-url", rpc_url, "rpc")
    if contracts is not None:
        _check_contracts(f"{prefix}contracts", contracts)
    if env_schema is not None:
        try:
            EnvSchema.load(env_schema)
        except EnvSchemaError as exc:
            raise InputError(f"{prefix}env-schema {exc}") from None


@dataclass(frozen=True)
class DeploymentSlo:
    """The objectives a deployment must meet (defaults: the Blocktrust SLOs): the load checks'
    p95 latency, error rate and availability of requests, the listener's lag. Not the library's
    ``blocktrust_native.flows.Slo`` (objectives of a flow run, judged per iteration and step)."""

    p95_ms: float = 800.0
    error_rate: float = 0.01
    availability: float = 0.995
    listener_lag_s: float = 180.0

    def check(self, prefix: str = "--") -> None:
        """Raises InputError naming the option (``{prefix}p95-ms`` ...) of an objective that is
        not a finite number in its range: a negative or NaN objective would judge a healthy
        service (or any service) wrongly."""
        rules: tuple[tuple[str, float, str, Callable[[float], bool]], ...] = (
            ("p95-ms", self.p95_ms, "a number of milliseconds > 0", lambda v: v > 0),
            ("error-rate", self.error_rate, "a ratio in [0, 1]", lambda v: 0 <= v <= 1),
            ("availability", self.availability, "a ratio in (0, 1]", lambda v: 0 < v <= 1),
            ("listener-lag", self.listener_lag_s, "a number of seconds > 0", lambda v: v > 0),
        )
        for name, value, want, ok in rules:
            if isinstance(value, bool) or not math.isfinite(value) or not ok(value):
                raise InputError(f"{prefix}{name} {value!r}: must be {want}")


@dataclass
class LoadPlan:
    """What ``--load`` asked for (see validate_all_flows.checks.load).

    ``vus`` virtual users loop through the flow for ``duration_s`` seconds (closed model); with
    ``rate``, that many iterations start per second instead, at most ``vus`` in flight (open
    model). ``flows`` overrides the built-in spec; ``progress`` gets a line about once a second.
    Under ``--shard K/N`` the plan holds this shard's share; ``output`` receives the report.
    """

    vus: int
    duration_s: float = 30.0
    rate: float | None = None
    flows: Path | None = None
    progress: Callable[[str], None] | None = None
    #: (K, N) under --shard K/N: ``vus`` and ``rate`` are already this shard's share.
    shard: tuple[int, int] | None = None
    #: --load-output: where the run's report goes as JSON (for ``validate_all_flows merge``).
    output: Path | None = None


@dataclass
class Target:
    """The deployment under test; see the module docstring."""

    base_url: str | None = None
    database_url: str | None = None
    rpc_url: str | None = None
    contracts: str | None = None
    env: dict[str, str] | None = None  # None: no environment given
    env_schema: Path | None = BUILTIN_SCHEMA  # None: the profile declares none
    flows_spec: Path | None = BUILTIN_FLOWS  # the HTTP flows (--flows); see flow_contract
    log_texts: list[tuple[str, str]] = field(default_factory=list)  # (source, text)
    webhook_secret: str | None = None
    slo: DeploymentSlo = field(default_factory=DeploymentSlo)
    load: LoadPlan | None = None  # None: no --load, the load checks are skipped
    embedded: Any = None  # the embedded Stack when we brought one up
    # The chain work objectives (CHAIN_OBJECTIVES: --failsafe-margin, --worker-stale-after,
    # --job-objective):
    chain_margin_s: float = 60.0  # how long chain work may take beyond its configured delay
    worker_stale_s: float = 120.0  # a chain worker silent this long (beyond 3 polls) is dead
    job_objective_s: float = 600.0  # a mint or proof pending longer misses its objective
    min_gas_balance_wei: int | None = None  # None: enough for workers.FAILSAFES_FUNDED fail-safes
    redactor: Redactor = field(default_factory=Redactor)  # every output goes through it
    profile: Profile = field(default_factory=builtin_profile)  # what the deployment is
    _pool: Any = None
    #: What was read of the deployment inside :meth:`sharing_reads`, by reader (None outside).
    reads: dict[str, Any] | None = field(default=None, init=False, repr=False)

    def use_profile(self, profile: Profile) -> Target:
        """Describes the deployment with ``profile`` (its env schema and flows spec become this
        target's unless given otherwise later); returns self."""
        self.profile = profile
        self.env_schema = profile.env_schema
        self.flows_spec = profile.flows.spec
        self.webhook_secret = self.webhook_secret_value()
        return self

    @contextlib.contextmanager
    def sharing_reads(self) -> Iterator[None]:
        """Inside the block, what two parts read of the deployment is read once and shared
        (``reads``): the monitor's cycle, whose checks and gauges both read the chain worker's
        signers' gas (``checks.workers.signer_gas``). Outside it every call reads afresh."""
        self.reads = {}
        try:
            yield
        finally:
            self.reads = None

    def use_chain_objectives(self, args: argparse.Namespace, prefix: str = "--") -> Target:
        """Takes the chain work objectives given on a command line (``CHAIN_OBJECTIVES``, added
        with ``prefix`` by :func:`add_chain_objective_arguments`, checked by argparse; the pytest
        plugin's: ``config.option``, "--blocktrust-"); those not given keep their defaults.
        Returns self."""
        for option, name, _help in CHAIN_OBJECTIVES:
            value = getattr(args, chain_objective_option(option, name, prefix)[1], None)
            if value is not None:
                setattr(self, name, float(value))
        return self

    def webhook_secret_value(self) -> str | None:
        """The webhook signing secret from the environment (--env-file): the variable the
        profile's webhook names, SUMSUB_SECRET_KEY by default."""
        hook = self.profile.webhook
        return (self.env or {}).get(hook.secret_env if hook else "SUMSUB_SECRET_KEY")

    def env_value(self, name: str) -> str | None:
        """A variable of the deployment's environment (--env-file), else of ours."""
        import os

        value = (self.env or {}).get(name)
        return value if value is not None else os.environ.get(name)

    def use_stack(self, stack: Any) -> Target:
        """Points this target at an embedded ``Stack`` (service, database, chain, contracts, its
        environment and webhook secret); returns self."""
        self.embedded = stack
        self.base_url, self.database_url = stack.base_url, stack.database_url
        self.rpc_url, self.contracts = stack.rpc_url, stack.contracts_config
        self.env = dict(stack.service_env)
        self.webhook_secret = self.webhook_secret_value()
        self.register_inputs()
        return self

    def add_secrets(self, values: Mapping[str, str] | list[str]) -> None:
        """Registers secret values that must never appear in output."""
        self.redactor.add(values.values() if isinstance(values, Mapping) else values)

    def register_inputs(self) -> None:
        """Registers the secrets of every input given so far, whatever checks run: the env
        file's (the schema's secret variables, secret-named ones, URL passwords and keys), the
        passwords and keys in the database and RPC URLs, the webhook secret."""
        if self.env:
            from validate_all_flows.envcheck import EnvSchema, EnvSchemaError

            names: set[str] = set()  # without a schema, the names say what is secret
            try:
                if self.env_schema is not None:
                    names = EnvSchema.load(self.env_schema).secret_names()
            except EnvSchemaError:  # reported by env.schema; the built-in names still apply
                names = EnvSchema.builtin().secret_names()
            self.redactor.add_env(self.env, names)
        for url in (self.database_url, self.rpc_url, self.base_url):
            self.redactor.add_url(url)
        self.add_secrets([self.webhook_secret or ""])

    def redact(self, text: str) -> str:
        """``text`` with every registered secret and everything credential-like hidden (see
        validate_all_flows.redact)."""
        return self.redactor(text)

    def pool(self) -> Any:
        """A small native pool on ``database_url`` (opened once, closed by ``close``)."""
        if self._pool is None:
            from blocktrust_native.pool import Pool

            assert self.database_url
            self._pool = Pool(
                self.database_url, min_size=0, max_size=4, acquire_timeout=10, connect_timeout=5
            )
        return self._pool

    def contracts_missing(self) -> str:
        """What is missing to read the contracts ('' when nothing): the RPC URL, and the
        contracts config file or (profile ``chain.contracts.variables``) the address variables."""
        missing = [] if self.rpc_url else ["--rpc-url"]
        chain = self.profile.chain
        if chain is not None and chain.source == "env" and not self.contracts:
            unset = [v for v in chain.variables.values() if not self.env_value(v)]
            missing += unset
        elif not self.contracts:
            missing.append("--contracts")
        return " and ".join(missing)

    def contracts_config(self) -> Any:
        """The deployment's ``ContractsConfig``: the contracts config file, or the profile's
        address variables with its ABI files (v1.4's ``*_CONTRACT_ADDRESS`` style).
        ContractsConfigError / FileReadError say what is wrong."""
        import json

        from blocktrust_native.listener.contracts import ContractsConfig, load_contracts_config

        chain = self.profile.chain
        if self.contracts or chain is None or chain.source != "env":
            assert self.contracts
            return load_contracts_config(self.contracts)
        doc = {}
        for name, var in chain.variables.items():
            abi: Any = []  # without ABI files only the code's presence can be checked
            if name in chain.abi_files:
                abi = json.loads(chain.abi_files[name].read_text(encoding="utf-8"))
                abi = abi.get("abi") if isinstance(abi, dict) else abi
            doc[name] = {"address": self.env_value(var), "abi": abi}
        return ContractsConfig.from_dict(doc, "the profile's contract address variables")

    def read_only(self, sql: str, params: tuple[Any, ...] = (), timeout_s: float = 5.0) -> Any:
        """Rows of an operator's query (from a profile) in a read-only transaction that the
        server cancels after ``timeout_s``: a profile cannot change the deployment's data."""
        with self.pool().connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            conn.execute(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}")
            return conn.execute(sql, params)

    def close(self) -> None:
        """Closes what the target opened."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def add_target_arguments(
    group: argparse._ArgumentGroup,
    database_help: str = "PostgreSQL URL (the password is never printed)",
) -> None:
    """Adds the options that name a deployment (the main command's and the monitor's)."""
    group.add_argument("--base-url", help="the service, e.g. https://api.example.org")
    group.add_argument("--database-url", help=database_help)
    group.add_argument("--rpc-url", help="EVM JSON-RPC URL")
    group.add_argument("--contracts", help="contracts_config.json")
    group.add_argument("--env-file", help="the service's .env file (its secrets are redacted)")
    group.add_argument("--env-schema", help="an environment schema (YAML/JSON); default: built-in")


def __getattr__(name: str) -> Any:
    # ``Slo`` was this class's name (the library's flows.Slo is another concept): kept for one
    # release, with a DeprecationWarning naming the new one.
    if name == "Slo":
        warnings.warn(
            "validate_all_flows.target.Slo is deprecated and will be removed in the next "
            "release; use validate_all_flows.target.DeploymentSlo",
            DeprecationWarning,
            stacklevel=2,
        )
        return DeploymentSlo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
