"""Environment checks: every rule kind reports its problem, names the variable, hides secrets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from validate_all_flows.envcheck import (
    BUILTIN_SCHEMA,
    EnvSchema,
    EnvSchemaError,
    check_env,
    parse_env_file,
)

GOOD_SECRET = "k3Jx9vQ2mZ7pL4tR8wY1nB6cF0hD5sGa"  # 32 bytes, random-looking
GOOD = {
    "DATABASE_URL": "postgresql://app:pw@db.internal:5432/blocktrust",
    "JWT_SECRET": GOOD_SECRET,
    "SUMSUB_APP_TOKEN": "sbx:" + "a1b2c3d4" * 3,
    "SUMSUB_SECRET_KEY": "Zr8" + "q9w8e7r6" * 2,
    "API_KEY_SALT": GOOD_SECRET[::-1],
}

# A FastAPI service with storage paths and a provider switch (the README shows this schema).
TRACTION = {
    "production": {"variable": "APP_ENV", "values": ["production"]},
    "variables": {
        "DATABASE_URL": {"required": True, "type": "url", "schemes": ["postgresql"]},
        "JWT_SECRET": {"required": True, "secret": True, "min_length": 32},
        "TEMPLATE_STORAGE_PATH": {
            "required": True,
            "type": "path",
            "absolute": True,
            "writable_dir": True,
        },
        "DEBUG_MODE": {"type": "bool", "in_production": False},
        "CORS_ORIGINS": {"type": "list", "required_in_production": True},
        "LLM_PROVIDER": {"one_of": ["groq", "openai"]},
        "WORKERS": {"type": "int", "min": 1, "max": 64},
    },
    "rules": [
        {"when": {"LLM_PROVIDER": "groq"}, "require": ["GROQ_API_KEY"]},
        {"when": {"LLM_PROVIDER": "openai"}, "require": ["OPENAI_API_KEY"]},
    ],
}


def _problems(schema: EnvSchema, env: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in check_env(schema, env):
        out[f.variable] = f"{out[f.variable]}; {f.problem}" if f.variable in out else f.problem
    return out


def test_the_builtin_schema_accepts_a_good_environment() -> None:
    assert check_env(EnvSchema.load(BUILTIN_SCHEMA), GOOD) == []


def test_missing_and_empty_required_variables_are_all_reported() -> None:
    env = dict(GOOD, JWT_SECRET="")
    del env["DATABASE_URL"]
    got = _problems(EnvSchema.load(), env)
    assert got == {"DATABASE_URL": "missing (required)", "JWT_SECRET": "empty (required)"}


@pytest.mark.parametrize("weak", ["secret", "changeme", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"])
def test_weak_or_short_secrets_are_refused_without_showing_them(weak: str) -> None:
    findings = check_env(EnvSchema.load(), dict(GOOD, JWT_SECRET=weak))
    assert [f.variable for f in findings] == ["JWT_SECRET"]
    assert weak not in str(findings[0])


def test_each_kind_of_rule(tmp_path: Path) -> None:
    schema = EnvSchema.from_dict(TRACTION)
    ro = tmp_path / "ro"
    ro.mkdir()
    env = {
        "DATABASE_URL": "mysql://x/y",
        "JWT_SECRET": GOOD_SECRET,
        "TEMPLATE_STORAGE_PATH": "relative/dir",
        "DEBUG_MODE": "maybe",
        "LLM_PROVIDER": "groq",
        "WORKERS": "0",
    }
    got = _problems(schema, env)
    assert got["DATABASE_URL"].startswith("not a URL with an allowed scheme (scheme 'mysql')")
    assert "not an absolute path" in got["TEMPLATE_STORAGE_PATH"]
    assert "not a boolean" in got["DEBUG_MODE"]
    assert "below the minimum 1" in got["WORKERS"]
    assert got["GROQ_API_KEY"] == "required when LLM_PROVIDER=groq"
    assert "CORS_ORIGINS" not in got  # only required in production
    assert "OPENAI_API_KEY" not in got

    env.update(TEMPLATE_STORAGE_PATH=str(tmp_path / "nope"), LLM_PROVIDER="claude")
    got = _problems(schema, env)
    assert "not an existing directory" in got["TEMPLATE_STORAGE_PATH"]
    assert "'claude' is not one of" in got["LLM_PROVIDER"]

    if os.geteuid() != 0:  # root may write anywhere
        ro.chmod(0o500)
        env["TEMPLATE_STORAGE_PATH"] = str(ro)
        assert "not writable" in _problems(schema, env)["TEMPLATE_STORAGE_PATH"]


def test_production_rules_apply_only_in_production(tmp_path: Path) -> None:
    schema = EnvSchema.from_dict(TRACTION)
    env = {
        "DATABASE_URL": "postgresql://db/app",
        "JWT_SECRET": GOOD_SECRET,
        "TEMPLATE_STORAGE_PATH": str(tmp_path),
        "DEBUG_MODE": "true",
    }
    assert _problems(schema, env) == {}
    got = _problems(schema, dict(env, APP_ENV="production"))
    assert got == {
        "DEBUG_MODE": "must be false in production",
        "CORS_ORIGINS": "missing (required in production)",
    }


def test_env_files_parse_like_dotenv_and_errors_never_echo_the_line(tmp_path: Path) -> None:
    f = tmp_path / ".env"
    f.write_text(
        "# comment\nexport A=1\nB='two words'\nC=\"x#y\"\nD=plain # trailing comment\nE=\n"
    )
    assert parse_env_file(f) == {"A": "1", "B": "two words", "C": "x#y", "D": "plain", "E": ""}
    f.write_text("JWT_SECRET=abc\nthis line has the-secret-value in it\n")
    with pytest.raises(EnvSchemaError, match=r":2: expected NAME=value") as err:
        parse_env_file(f)
    assert "the-secret-value" not in str(err.value)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ([], "top level must be a mapping"),
        ({"varz": {}}, "unknown top-level key"),
        ({"variables": {"X": {"requird": True}}}, r"variables\.X: unknown check"),
        ({"variables": {"X": {"type": "float"}}}, r"variables\.X\.type"),
        ({"variables": {"1X": {}}}, "not a valid variable name"),
        ({"rules": [{"when": {"A": "b"}}]}, r"rules\[0\]"),
    ],
)
def test_bad_schemas_name_the_place(schema: object, message: str) -> None:
    with pytest.raises(EnvSchemaError, match=message):
        EnvSchema.from_dict(schema)


def test_schema_files_load_from_yaml_and_json(tmp_path: Path) -> None:
    import json

    j = tmp_path / "s.json"
    j.write_text(json.dumps(TRACTION))
    assert EnvSchema.load(j).secret_names() == {"JWT_SECRET"}
    y = tmp_path / "s.yaml"
    y.write_text("variables: [unclosed\n")
    with pytest.raises(EnvSchemaError, match="not valid yaml"):
        EnvSchema.load(y)
    with pytest.raises(EnvSchemaError, match="cannot read"):
        EnvSchema.load(tmp_path / "missing.yaml")


def test_the_seed_deploy_names_are_accepted_as_aliases() -> None:
    key = "5a0c3e19b7d2" * 5 + "ab12"
    env = dict(
        GOOD,
        POLYGON_RPC_URL="https://rpc-amoy.polygon.technology",
        DEPLOYER_PRIVATE_KEY=key,
        CHAIN_ID="80002",
        CONTRACTS_CONFIG="/srv/contracts_config.json",
    )
    schema = EnvSchema.load()
    assert check_env(schema, env) == []
    resolved, findings = schema.resolve_aliases(env)
    assert findings == []
    assert resolved["RPC_URL"] == env["POLYGON_RPC_URL"]
    assert resolved["CHAIN_PRIVATE_KEY"] == key
    assert {"CHAIN_PRIVATE_KEY", "DEPLOYER_PRIVATE_KEY"} <= schema.secret_names()
    # Without CHAIN_ID the rule for RPC_URL fires through the alias.
    del env["CHAIN_ID"]
    assert _problems(schema, env) == {"CHAIN_ID": "required when RPC_URL is set"}


KEY_A = "5a0c3e19d7b2f4a68e1c9053b7d2a4f6c8e0b1d3f5a7c9e2b4d6f8a0c1e3b5d7"
KEY_B = "6b1d4f2a0e9c8b7a6f5e4d3c2b1a09f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2"


def test_an_alias_that_disagrees_with_its_variable_is_a_finding_without_the_values() -> None:
    env = dict(GOOD, CHAIN_PRIVATE_KEY=KEY_A, DEPLOYER_PRIVATE_KEY=KEY_B)
    findings = check_env(EnvSchema.load(), env)
    assert [f.variable for f in findings] == ["DEPLOYER_PRIVATE_KEY"]
    assert "5a0c3e19" not in str(findings[0])
    assert KEY_B[:8] not in str(findings[0])
    assert "CHAIN_PRIVATE_KEY" in str(findings[0])


def test_aliases_must_be_a_list_of_names() -> None:
    with pytest.raises(EnvSchemaError, match=r"variables\.A\.aliases"):
        EnvSchema.from_dict({"variables": {"A": {"aliases": "B"}}})
    with pytest.raises(EnvSchemaError, match=r"variables\.A\.aliases"):
        EnvSchema.from_dict({"variables": {"A": {"aliases": ["not a name"]}}})
