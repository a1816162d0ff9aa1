"""The reference service's settings, read from the environment and validated all at once.

Start-up fails fast with one message that lists every problem (missing variables, short secrets,
debug on in production, bad fault switches), checked by the same schema the operator tool uses.
It fails closed: ``ENVIRONMENT`` unset means production, a value that does not parse is an error
(never a silent default), and production has floors for the Argon2 parameters and the fail-safe
delay. Secrets are kept out of ``repr``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from validate_all_flows.embedded.web3_client import ChainSettings
from validate_all_flows.envcheck import EnvSchema, check_env

__all__ = [
    "DEVELOPMENT_ENVIRONMENTS",
    "FAULTS",
    "PRODUCTION_FLOORS",
    "ServiceSettings",
    "SettingsError",
]

#: The ENVIRONMENT values that are not production; anything else (unset included) is production.
DEVELOPMENT_ENVIRONMENTS = frozenset({"development", "dev", "test", "testing", "local"})

#: Production minimums: Argon2id at OWASP's m=19 MiB, t=2, and a fail-safe delay long enough that
#: the on-chain effect cannot be matched to the duress login by its time.
PRODUCTION_FLOORS = {
    "PASSWORD_MEMORY_KIB": 19456,
    "PASSWORD_ITERATIONS": 2,
    "FAILSAFE_DELAY_MIN": 30.0,
}

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
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    password_hash_concurrency: int = 4
    max_body_bytes: int = 64 * 1024
    webhook_max_bytes: int = 256 * 1024
    webhook_algorithms: frozenset[str] = frozenset({"HMAC_SHA256_HEX", "HMAC_SHA512_HEX"})
    password_memory_kib: int = 19456
    password_iterations: int = 2
    max_upload_bytes: int = 5 * 1024 * 1024
    worker_interval: float = 0.5
    faults: frozenset[str] = frozenset()

    @property
    def production(self) -> bool:
        """True unless ENVIRONMENT names a development one (unset is production)."""
        return self.environment not in DEVELOPMENT_ENVIRONMENTS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServiceSettings:
        """Reads and validates the settings; raises SettingsError listing every problem.

        Required: DATABASE_URL, JWT_SECRET (>= 32 bytes), SUMSUB_SECRET_KEY, API_KEY_SALT
        (>= 32 bytes). Optional: ENVIRONMENT, DEBUG_MODE, CORS_ORIGINS, RPC_URL + CHAIN_ID +
        CHAIN_PRIVATE_KEY + CONTRACTS_CONFIG (the chain; without them chain work waits;
        POLYGON_RPC_URL and DEPLOYER_PRIVATE_KEY are accepted as their aliases),
        PROOF_MODE (single | batch), FAILSAFE_DELAY_MIN / _MAX (seconds), JWT_TTL (seconds,
        1 to 86400), RATE_LIMIT_LOGIN (per client address and account) / _LOGIN_IP (per client
        address, any account) / _LOGIN_ACCOUNT (per account, any address) / _REGISTER /
        _UPLOAD, PASSWORD_MEMORY_KIB, PASSWORD_ITERATIONS (production floors in
        PRODUCTION_FLOORS), PASSWORD_HASH_CONCURRENCY (Argon2 hashes at once), TRUSTED_PROXIES
        (comma-separated addresses or networks whose X-Forwarded-For is believed; none by
        default), MAX_BODY_BYTES and WEBHOOK_MAX_BYTES (request body caps), WEBHOOK_ALGORITHMS
        (the X-Payload-Digest-Alg values accepted; default HMAC_SHA256_HEX,HMAC_SHA512_HEX),
        BLOCKTRUST_FAULTS (comma-separated; only with BLOCKTRUST_ALLOW_FAULTS=1 outside
        production). ENVIRONMENT unset is production.
        """
        schema = EnvSchema.builtin()
        raw = os.environ if env is None else env
        if not (raw.get("ENVIRONMENT") or "").strip():
            raw = {**raw, "ENVIRONMENT": "production"}  # unset: checked as production too
        problems = [str(f) for f in check_env(schema, raw)]
        env, _ = schema.resolve_aliases(raw)  # POLYGON_RPC_URL, DEPLOYER_PRIVATE_KEY
        environment = (env.get("ENVIRONMENT") or "production").strip().lower()
        production = environment not in DEVELOPMENT_ENVIRONMENTS
        delay_min = _float(env, "FAILSAFE_DELAY_MIN", 30.0, problems)
        delay_max = _float(env, "FAILSAFE_DELAY_MAX", 300.0, problems)
        if delay_max < delay_min:
            problems.append("FAILSAFE_DELAY_MAX: smaller than FAILSAFE_DELAY_MIN")
        faults = frozenset(f.strip() for f in env.get("BLOCKTRUST_FAULTS", "").split(",") if f)
        if faults:
            unknown = sorted(faults - FAULTS.keys())
            if unknown:
                problems.append(f"BLOCKTRUST_FAULTS: unknown fault(s) {unknown}")
            if production:
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
        for name, default, low in (
            ("PASSWORD_MEMORY_KIB", 19456, 8),
            ("PASSWORD_ITERATIONS", 2, 1),
            ("PASSWORD_HASH_CONCURRENCY", max(2, os.cpu_count() or 2), 1),
            ("MAX_BODY_BYTES", 64 * 1024, 1024),
            ("WEBHOOK_MAX_BYTES", 256 * 1024, 1024),
        ):
            try:
                ints[name] = int(env.get(name, default))
                if ints[name] < low:
                    problems.append(f"{name}: must be at least {low}")
            except ValueError:
                problems.append(f"{name}: not an integer")
                ints[name] = default
        jwt_ttl = _float(env, "JWT_TTL", 3600.0, problems)
        if not 1 <= jwt_ttl <= 86400:
            problems.append("JWT_TTL: must be between 1 and 86400 seconds")
        if production:
            for name, floor in PRODUCTION_FLOORS.items():
                value = delay_min if name == "FAILSAFE_DELAY_MIN" else ints[name]
                if value < floor:
                    problems.append(f"{name}: below the production floor {floor:g}")
        proxies = []
        for item in (p.strip() for p in env.get("TRUSTED_PROXIES", "").split(",")):
            if not item:
                continue
            try:
                proxies.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                problems.append(f"TRUSTED_PROXIES: {item[:64]!r} is not an address or network")
        algorithms = frozenset(
            a.strip().upper()
            for a in env.get("WEBHOOK_ALGORITHMS", "HMAC_SHA256_HEX,HMAC_SHA512_HEX").split(",")
            if a.strip()
        )
        known = {"HMAC_SHA1_HEX", "HMAC_SHA256_HEX", "HMAC_SHA512_HEX"}
        if not algorithms or algorithms - known:
            problems.append(f"WEBHOOK_ALGORITHMS: give one or more of {sorted(known)}")
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
            jwt_ttl=jwt_ttl,
            rate_limits={
                "login": env.get("RATE_LIMIT_LOGIN", "5/15minutes"),
                "login_ip": env.get("RATE_LIMIT_LOGIN_IP", "20/15minutes"),
                "login_account": env.get("RATE_LIMIT_LOGIN_ACCOUNT", "50/hour"),
                "register": env.get("RATE_LIMIT_REGISTER", "3/hour"),
                "upload": env.get("RATE_LIMIT_UPLOAD", "10/hour"),
            },
            password_memory_kib=ints["PASSWORD_MEMORY_KIB"],
            password_iterations=ints["PASSWORD_ITERATIONS"],
            password_hash_concurrency=ints["PASSWORD_HASH_CONCURRENCY"],
            max_body_bytes=ints["MAX_BODY_BYTES"],
            webhook_max_bytes=ints["WEBHOOK_MAX_BYTES"],
            webhook_algorithms=algorithms,
            trusted_proxies=tuple(proxies),
            faults=faults,
        )
