"""The reference service's settings, read from the environment and validated all at once.

Start-up fails fast with one message that lists every problem (missing variables, short secrets,
debug on in production, bad fault switches), checked by the same schema the operator tool uses.
Secrets are kept out of ``repr``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from validate_all_flows.embedded.web3_client import ChainSettings
from validate_all_flows.envcheck import EnvSchema, check_env

__all__ = ["FAULTS", "ServiceSettings", "SettingsError"]

#: Fault switches for testing the validator; see ServiceSettings.faults.
FAULTS = {
    "skip_migration": "leave the last migration unapplied",
    "no_listener": "do not start the chain listener (the embedded stack honours it)",
    "duress_noop": "a duress login or signature does not trip the fail-safe",
    "duress_visible": "any signed-in caller sees the fail-safe queue's counts move",
    "unsigned_webhooks": "accept KYC webhooks without a valid signature",
    "no_rate_limits": "switch the rate limits off",
    "slow_health": "answer /api/health after 1.5 s",
    "debug": "debug mode on (tracebacks in responses)",
}


class SettingsError(ValueError):
    """Raised at start-up when the environment is not fit to run; lists every problem found."""


def _float(env: Mapping[str, str], name: str, default: float, problems: list[str]) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
        if value < 0:
            raise ValueError
    except ValueError:
        problems.append(f"{name}: {raw!r} is not a non-negative number")
        return default
    return value


@dataclass(frozen=True)
class ServiceSettings:
    """Everything the service reads from its environment (see ``from_env`` for the names)."""

    database_url: str = field(repr=False)
    jwt_secret: str = field(repr=False)
    sumsub_secret_key: str = field(repr=False)
    api_key_salt: str = field(repr=False)
    environment: str = "development"
    debug: bool = False
    cors_origins: tuple[str, ...] = ()
    chain: ChainSettings | None = None
    proof_mode: str = "single"
    failsafe_delay: tuple[float, float] = (30.0, 300.0)
    jwt_ttl: float = 3600.0
    rate_limits: Mapping[str, str] = field(default_factory=dict)
    password_memory_kib: int = 19456
    password_iterations: int = 2
    max_upload_bytes: int = 5 * 1024 * 1024
    worker_interval: float = 0.5
    faults: frozenset[str] = frozenset()

    @property
    def production(self) -> bool:
        """True for ENVIRONMENT=production (or prod)."""
        return self.environment in {"production", "prod"}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServiceSettings:
        """Reads and validates the settings; raises SettingsError listing every problem.

        Required: DATABASE_URL, JWT_SECRET (>= 32 bytes), SUMSUB_SECRET_KEY, API_KEY_SALT
        (>= 32 bytes). Optional: ENVIRONMENT, DEBUG_MODE, CORS_ORIGINS, RPC_URL + CHAIN_ID +
        CHAIN_PRIVATE_KEY + CONTRACTS_CONFIG (the chain; without them chain work waits;
        POLYGON_RPC_URL and DEPLOYER_PRIVATE_KEY are accepted as their aliases),
        PROOF_MODE (single | batch), FAILSAFE_DELAY_MIN / _MAX (seconds), JWT_TTL,
        RATE_LIMIT_LOGIN / _REGISTER / _UPLOAD, PASSWORD_MEMORY_KIB, PASSWORD_ITERATIONS,
        BLOCKTRUST_FAULTS (comma-separated; only with BLOCKTRUST_ALLOW_FAULTS=1 outside
        production).
        """
        schema = EnvSchema.builtin()
        raw = os.environ if env is None else env
        problems = [str(f) for f in check_env(schema, raw)]
        env, _ = schema.resolve_aliases(raw)  # POLYGON_RPC_URL, DEPLOYER_PRIVATE_KEY
        environment = env.get("ENVIRONMENT", "development").lower()
        delay_min = _float(env, "FAILSAFE_DELAY_MIN", 30.0, problems)
        delay_max = _float(env, "FAILSAFE_DELAY_MAX", 300.0, problems)
        if delay_max < delay_min:
            problems.append("FAILSAFE_DELAY_MAX: smaller than FAILSAFE_DELAY_MIN")
        faults = frozenset(f.strip() for f in env.get("BLOCKTRUST_FAULTS", "").split(",") if f)
        if faults:
            unknown = sorted(faults - FAULTS.keys())
            if unknown:
                problems.append(f"BLOCKTRUST_FAULTS: unknown fault(s) {unknown}")
            if environment in {"production", "prod", "staging"}:
                problems.append("BLOCKTRUST_FAULTS: fault switches are refused in " + environment)
            elif env.get("BLOCKTRUST_ALLOW_FAULTS") != "1":
                problems.append("BLOCKTRUST_FAULTS: set BLOCKTRUST_ALLOW_FAULTS=1 to use faults")
        proof_mode = env.get("PROOF_MODE", "single")
        if proof_mode not in {"single", "batch"}:
            problems.append(f"PROOF_MODE: {proof_mode!r} is not single or batch")
        chain = None
        if env.get("RPC_URL"):
            try:
                chain = ChainSettings.from_env(env)
            except ValueError as exc:
                problems.append(str(exc))
        ints = {}
        for name, default in (("PASSWORD_MEMORY_KIB", 19456), ("PASSWORD_ITERATIONS", 2)):
            try:
                ints[name] = int(env.get(name, default))
            except ValueError:
                problems.append(f"{name}: not an integer")
                ints[name] = default
        if problems:
            raise SettingsError(
                "the service cannot start; fix its environment:\n  - " + "\n  - ".join(problems)
            )
        debug = env.get("DEBUG_MODE", "false").lower() in {"1", "true", "yes", "on"}
        return cls(
            database_url=env["DATABASE_URL"],
            jwt_secret=env["JWT_SECRET"],
            sumsub_secret_key=env["SUMSUB_SECRET_KEY"],
            api_key_salt=env["API_KEY_SALT"],
            environment=environment,
            debug=debug or "debug" in faults,
            cors_origins=tuple(o.strip() for o in env.get("CORS_ORIGINS", "").split(",") if o),
            chain=chain,
            proof_mode=proof_mode,
            failsafe_delay=(delay_min, delay_max),
            jwt_ttl=_float(env, "JWT_TTL", 3600.0, problems),
            rate_limits={
                "login": env.get("RATE_LIMIT_LOGIN", "5/15minutes"),
                "register": env.get("RATE_LIMIT_REGISTER", "3/hour"),
                "upload": env.get("RATE_LIMIT_UPLOAD", "10/hour"),
            },
            password_memory_kib=ints["PASSWORD_MEMORY_KIB"],
            password_iterations=ints["PASSWORD_ITERATIONS"],
            faults=faults,
        )
