"""The reference service's start-up settings: every problem at once, secrets hidden, faults off."""

from __future__ import annotations

import pytest

from validate_all_flows.embedded.service.settings import ServiceSettings, SettingsError

SECRET = "k3Jx9vQ2mZ7pL4tR8wY1nB6cF0hD5sGa"
BASE = {
    "DATABASE_URL": "postgresql://app:pw@127.0.0.1:5432/blocktrust",
    "JWT_SECRET": SECRET,
    "SUMSUB_APP_TOKEN": "sbx:" + "a1b2c3d4" * 3,
    "SUMSUB_SECRET_KEY": "Zr8" + "q9w8e7r6" * 2,
    "API_KEY_SALT": SECRET[::-1],
    "ENVIRONMENT": "development",
}
KEY = "0x5a0c3e19d7b2f4a68e1c9053b7d2a4f6c8e0b1d3f5a7c9e2b4d6f8a0c1e3b5d7"


def test_a_good_environment_gives_settings_whose_repr_hides_the_secrets() -> None:
    s = ServiceSettings.from_env(BASE)
    assert s.chain is None
    assert not s.debug
    assert s.faults == frozenset()
    assert SECRET not in repr(s)
    assert SECRET[::-1] not in repr(s)


def test_every_problem_is_listed_in_one_message_without_secret_values() -> None:
    env = dict(BASE, JWT_SECRET="short", PROOF_MODE="sometimes", FAILSAFE_DELAY_MAX="-1")
    del env["DATABASE_URL"]
    with pytest.raises(SettingsError) as e:
        ServiceSettings.from_env(env)
    msg = str(e.value)
    for part in ("DATABASE_URL", "JWT_SECRET: too short", "PROOF_MODE", "FAILSAFE_DELAY_MAX"):
        assert part in msg
    assert "short'" not in msg


def test_the_seed_names_for_the_chain_are_accepted() -> None:
    env = dict(
        BASE,
        POLYGON_RPC_URL="http://127.0.0.1:8545",
        DEPLOYER_PRIVATE_KEY=KEY,
        CHAIN_ID="31337",
        CONTRACTS_CONFIG="/tmp/contracts_config.json",
    )
    s = ServiceSettings.from_env(env)
    assert s.chain is not None
    assert (s.chain.rpc_url, s.chain.chain_id) == ("http://127.0.0.1:8545", 31337)
    assert s.chain.private_key == KEY
    assert KEY[2:] not in repr(s)


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"BLOCKTRUST_FAULTS": "debug"}, "set BLOCKTRUST_ALLOW_FAULTS=1"),
        (
            {
                "BLOCKTRUST_FAULTS": "debug",
                "BLOCKTRUST_ALLOW_FAULTS": "1",
                "ENVIRONMENT": "production",
                "CORS_ORIGINS": "https://app.example",
            },
            "refused in production",
        ),
        ({"BLOCKTRUST_FAULTS": "nope", "BLOCKTRUST_ALLOW_FAULTS": "1"}, "unknown fault"),
        (
            {"DEBUG_MODE": "true", "ENVIRONMENT": "production", "CORS_ORIGINS": "https://a.b"},
            "DEBUG_MODE",
        ),
    ],
)
def test_faults_and_debug_cannot_be_switched_on_by_accident(
    extra: dict[str, str], problem: str
) -> None:
    with pytest.raises(SettingsError, match=problem):
        ServiceSettings.from_env(dict(BASE, **extra))


def test_the_debug_fault_turns_debug_on_outside_production() -> None:
    s = ServiceSettings.from_env(dict(BASE, BLOCKTRUST_FAULTS="debug", BLOCKTRUST_ALLOW_FAULTS="1"))
    assert s.debug
    assert s.faults == {"debug"}


# ---- failing closed


def test_an_unset_environment_is_production() -> None:
    unset = {k: v for k, v in BASE.items() if k != "ENVIRONMENT"}
    with pytest.raises(SettingsError, match="CORS_ORIGINS"):  # production's own rules apply
        ServiceSettings.from_env(unset)
    s = ServiceSettings.from_env(dict(unset, CORS_ORIGINS="https://app.example"))
    assert s.environment == "production"
    assert s.production
    with pytest.raises(SettingsError, match="refused in production"):
        ServiceSettings.from_env(
            dict(
                unset,
                CORS_ORIGINS="https://a.b",
                BLOCKTRUST_FAULTS="debug",
                BLOCKTRUST_ALLOW_FAULTS="1",
            )
        )


@pytest.mark.parametrize("ttl", ["soon", "-5", "0", "1e9", "nan"])
def test_an_invalid_jwt_ttl_stops_the_start(ttl: str) -> None:
    with pytest.raises(SettingsError, match="JWT_TTL"):
        ServiceSettings.from_env(dict(BASE, ENVIRONMENT="development", JWT_TTL=ttl))


@pytest.mark.parametrize(
    ("name", "value"),
    [("PASSWORD_MEMORY_KIB", "4096"), ("PASSWORD_ITERATIONS", "1"), ("FAILSAFE_DELAY_MIN", "1")],
)
def test_production_has_floors(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"{name}: below the production floor"):
        ServiceSettings.from_env(
            dict(BASE, ENVIRONMENT="production", CORS_ORIGINS="https://a.b", **{name: value})
        )
    s = ServiceSettings.from_env(dict(BASE, ENVIRONMENT="development", **{name: value}))
    assert not s.production


def test_trusted_proxies_and_webhook_algorithms_are_checked() -> None:
    with pytest.raises(SettingsError) as e:
        ServiceSettings.from_env(
            dict(BASE, TRUSTED_PROXIES="10.0.0.0/8,not-an-ip", WEBHOOK_ALGORITHMS="HMAC_MD5_HEX")
        )
    assert "TRUSTED_PROXIES: 'not-an-ip'" in str(e.value)
    assert "WEBHOOK_ALGORITHMS" in str(e.value)
