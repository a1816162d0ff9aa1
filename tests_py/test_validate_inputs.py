"""Bad input is refused before any check runs: exit 2, on stderr the option and what is wrong.

One table covers every option the command documents (a new option needs its rows here: the
coverage test fails otherwise)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from validate_all_flows.cli import _parser, main

GOOD_ENV = (
    "DATABASE_URL=postgresql://app:Pw-0f-the-db-7Q@db.internal:5432/app\n"
    "JWT_SECRET=k3Jx9vQ2mZ7pL4tR8wY1nB6cF0hD5sGa\n"
    "SUMSUB_APP_TOKEN=sbx:Qm4v8Zr1Lp6Tn2Wx\n"
    "SUMSUB_SECRET_KEY=Zr8q9w8e7r6q9w8e7r6\n"
    "API_KEY_SALT=aG5sD0fH6cB1nY8wR4tL7pZ2mQ9vXj3k\n"
)

_URL = ["--base-url", "http://127.0.0.1:9"]  # nothing listens: never reached

_NOT = "not a duration: "
_RANGE = "must be a duration > 0 and at most 7d"
#: The chain work objectives' bad values, (option, value, what argparse says after the option's
#: name): the same options, checks and messages in both commands.
_CHAIN_OBJECTIVE_VALUES = [
    ("--failsafe-margin", "-5", _NOT + "'-5'"),
    ("--failsafe-margin", "0s", "'0s': " + _RANGE),
    ("--failsafe-margin", "soon", _NOT + "'soon'"),
    ("--failsafe-margin", "nan", _NOT + "'nan'"),
    ("--failsafe-margin", "600d", "'600d': " + _RANGE),
    ("--worker-stale-after", "-1m", _NOT + "'-1m'"),
    ("--worker-stale-after", "0", "'0': " + _RANGE),
    ("--worker-stale-after", "inf", _NOT + "'inf'"),
    ("--worker-stale-after", "1e9", _NOT + "'1e9'"),
    ("--job-objective", "-600", _NOT + "'-600'"),
    ("--job-objective", "0m", "'0m': " + _RANGE),
    ("--job-objective", "10 weeks", _NOT + "'10 weeks'"),
    ("--job-objective", "99999999h", "'99999999h': " + _RANGE),
]
CHAIN_OBJECTIVE_BAD = [
    # "--opt -1m" is an option to argparse ("expected one argument"): "--opt=-1m" is the value
    (f"{o[2:]}-{v}", [f"{o}={v}"] if v.startswith("-") else [o, v], f"argument {o}: {says}")
    for o, v, says in _CHAIN_OBJECTIVE_VALUES
]

#: (id, argv, what stderr must say). "{tmp}" is the test's temporary directory.
BAD = [
    ("base-url-not-url", ["--base-url", "not-a-url"], "--base-url 'not-a-url': not a URL"),
    ("base-url-ftp", ["--base-url", "ftp://files.example"], "--base-url 'ftp://files.example'"),
    ("base-url-port", ["--base-url", "http://127.0.0.1:180911"], "Port out of range"),
    ("base-url-no-host", ["--base-url", "http://"], "--base-url 'http://': no host"),
    ("database-url-not-url", ["--database-url", "not-a-url"], "--database-url 'not-a-url'"),
    ("database-url-http", ["--database-url", "http://db:5432/x"], "--database-url"),
    ("database-url-port", ["--database-url", "postgresql://u:Secret99@h:99999/d"], "Port out"),
    ("rpc-url-not-url", ["--rpc-url", "not-a-url"], "--rpc-url 'not-a-url': not a URL"),
    ("rpc-url-ws", ["--rpc-url", "ws://127.0.0.1:8545"], "--rpc-url"),
    ("contracts-missing", ["--contracts", "/nonexistent/contracts.json"], "--contracts"),
    ("contracts-not-json", ["--contracts", "{tmp}/bad.json"], "--contracts {tmp}/bad.json: not"),
    ("env-file-missing", ["--env-file", "/nonexistent/.env"], "cannot read the env file"),
    ("env-file-bad-line", ["--env-file", "{tmp}/bad.env"], "expected NAME=value"),
    ("env-schema-missing", ["--env-schema", "/nonexistent.yaml"], "--env-schema"),
    ("env-schema-not-yaml", ["--env-schema", "{tmp}/bad.yaml"], "--env-schema {tmp}/bad.yaml"),
    ("env-schema-bad-key", ["--env-schema", "{tmp}/unknown.yaml"], "unknown top-level key"),
    ("flows-missing", ["--flows", "/nonexistent-flows.yaml"], "--flows"),
    ("logs-missing", ["--logs", "/nonexistent.log"], "--logs /nonexistent.log"),
    ("logs-cmd-fails", ["--logs-cmd", "false"], "--logs-cmd exited 1"),
    ("p95-negative", ["--p95-ms", "-5"], "--p95-ms -5.0: must be"),
    ("p95-nan", ["--p95-ms", "nan"], "--p95-ms nan: must be"),
    ("p95-zero", ["--p95-ms", "0"], "--p95-ms 0.0"),
    ("error-rate-5", ["--error-rate", "5"], "--error-rate 5.0: must be a ratio"),
    ("error-rate-nan", ["--error-rate", "nan"], "--error-rate nan"),
    ("availability-2", ["--availability", "2"], "--availability 2.0: must be a ratio"),
    ("availability-0", ["--availability", "0"], "--availability 0.0"),
    ("listener-lag-negative", ["--listener-lag", "-1"], "--listener-lag -1.0: must be"),
    ("listener-lag-inf", ["--listener-lag", "inf"], "--listener-lag inf"),
    ("load-zero", ["--load", "0"], "argument --load: must be > 0"),
    ("load-duration-negative", ["--load", "1", "--load-duration", "-1"], "--load-duration: must"),
    ("load-duration-nan", ["--load", "1", "--load-duration", "nan"], "--load-duration: must"),
    ("load-rate-zero", ["--load", "1", "--load-rate", "0"], "argument --load-rate: must be > 0"),
    ("load-rate-alone", ["--load-rate", "5"], "--load-rate given without --load VUS"),
    ("shard-malformed", ["--load", "1", "--shard", "x"], "--shard 'x': expected K/N"),
    ("shard-alone", ["--shard", "0/2"], "--shard given without --load VUS"),
    ("load-output-no-dir", ["--load", "1", "--load-output", "/nonexistent-dir/x.json"], "no dir"),
    ("load-flows-missing", ["--load", "2", "--load-flows", "/nonexistent.yaml"], "--load-flows"),
    ("only-empty", ["--only", ""], "--only '': no group named"),
    ("only-commas", ["--only", ","], "--only ',': no group named"),
    ("only-unknown", ["--only", "nope"], "--only: unknown group(s) ['nope']"),
    ("profile-missing", ["--profile", "/nonexistent.yaml"], "--profile /nonexistent.yaml"),
    ("profile-unknown", ["--profile", "nosuch"], "--profile nosuch: no such profile"),
    ("require-unknown", ["--require", "nosuch.check"], "'nosuch.check' is not a check id"),
    ("require-empty", ["--require", ""], "--require '': no check or group named"),
    ("expect-version-no-url", ["--expect-version", "1.2.0"], "need --base-url"),
    ("expect-commit-not-hex", [*_URL, "--expect-commit", "xyz"], "--expect-commit 'xyz'"),
    ("expect-timeout", [*_URL, "--expect-version", "1", "--expect-timeout", "-1"], "must be > 0"),
    ("expect-interval", [*_URL, "--expect-version", "1", "--expect-interval", "nan"], "> 0"),
    ("version-path", [*_URL, "--expect-version", "1", "--version-path", "v"], "must start with /"),
    ("version-field-alone", ["--version-field", "/v"], "--version-field given without"),
    ("min-gas-balance-negative", ["--min-gas-balance", "-1"], "--min-gas-balance must be >= 0"),
    ("min-gas-balance-nan", ["--min-gas-balance", "nan"], "--min-gas-balance must be >= 0"),
    ("min-gas-balance-inf", ["--min-gas-balance", "inf"], "--min-gas-balance must be >= 0"),
    # the chain work objectives (the same rows as the monitor's)
    *CHAIN_OBJECTIVE_BAD,
    ("format-unknown", ["--format", "xml"], "--format: invalid choice"),
    ("output-no-dir", ["--output", "/nonexistent-dir/report.json"], "--output /nonexistent-dir"),
    ("output-is-dir", ["--output", "{tmp}"], "--output {tmp}: is a directory"),
    ("output-unwritable", ["--output", "/proc/version"], "--output /proc/version: cannot write"),
]

#: Options that take no value to get wrong.
FLAGS = {"-h", "--help", "--quiet", "--self-check", "--version"}


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    (tmp_path / "good.env").write_text(GOOD_ENV)
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "bad.env").write_text("JWT_SECRET k3Jx9vQ2mZ7pL4tR8wY1nB6cF0hD5sGa\n")
    (tmp_path / "bad.yaml").write_text("variables: [unclosed\n")
    (tmp_path / "unknown.yaml").write_text("varaibles: {}\n")
    return tmp_path


@pytest.mark.parametrize(("argv", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_exits_2_before_any_check(
    argv: list[str], message: str, inputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.replace("{tmp}", str(inputs)) for a in argv]
    message = message.replace("{tmp}", str(inputs))
    # A good env file as the target, so a row that is wrongly accepted runs a cheap check
    # (and says "checking") instead of bringing up the embedded stack.
    base = [] if "--env-file" in argv else ["--env-file", str(inputs / "good.env")]
    try:
        rc = main([*base, *argv])
    except SystemExit as exc:  # argparse's own refusals (--format xml) exit 2 too
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2, err
    assert message in err, err
    assert "checking" not in err  # refused before any check ran
    assert "Pw-0f-the-db-7Q" not in err
    assert "Secret99" not in err


def test_every_documented_option_has_a_bad_input_row() -> None:
    documented = {
        s
        for a in _parser()._actions
        if not isinstance(a, argparse._HelpAction)
        for s in a.option_strings
        if s.startswith("--")
    }
    covered = {a for _, argv, _ in BAD for a in argv if a.startswith("--")}
    missing = documented - FLAGS - covered
    assert not missing, f"add bad-input rows to BAD for {sorted(missing)}"


def test_an_unwritable_output_is_found_before_the_checks(
    inputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found up front, not after every check ran; and nothing is left behind on success.
    out = inputs / "report.json"
    argv = ["--env-file", str(inputs / "good.env"), "--only", "env", "--output", str(out)]
    assert main(["--quiet", *argv]) == 0
    assert out.read_text().startswith("=")
    assert main(["--quiet", *argv[:-1], str(inputs / "missing" / "r.json")]) == 2
    assert not (inputs / "missing").exists()


def test_good_objectives_at_their_limits_are_accepted(inputs: Path) -> None:
    env = ["--env-file", str(inputs / "good.env"), "--only", "env", "--quiet"]
    limits = ["--availability", "1", "--error-rate", "0", "--p95-ms", "0.5", "--listener-lag", "1"]
    assert main([*env, *limits]) == 0
    chain = ["--failsafe-margin", "0.5", "--worker-stale-after", "7d", "--job-objective", "168h"]
    assert main([*env, *chain]) == 0
    dsn = "host=db.internal port=5432 dbname=app user=app password=Secret99"
    assert main([*env, "--database-url", dsn, "--only", "env"]) == 0


# --- the monitor command: the same rule for its options

#: (id, argv, what stderr must say); every row also names a store (a closed port: a row wrongly
#: accepted would run a cycle against nothing and exit, not name its option).
MONITOR_BAD = [
    ("base-url", ["--base-url", "not-a-url"], "--base-url 'not-a-url': not a URL"),
    ("database-url", ["--database-url", "http://db/x"], "--database-url"),
    ("rpc-url", ["--rpc-url", "ftp://x"], "--rpc-url 'ftp://x': scheme 'ftp'"),
    ("contracts", ["--contracts", "/nonexistent.json"], "--contracts /nonexistent.json"),
    ("env-file", ["--env-file", "/nonexistent.env"], "cannot read the env file"),
    ("env-schema", ["--env-schema", "/nonexistent.yaml"], "--env-schema"),
    ("profile", ["--profile", "nosuch"], "--profile nosuch"),
    ("interval", ["--interval", "0"], "--interval, --report-every and --window must be positive"),
    ("interval-negative", ["--interval", "-5"], "argument --interval: not a duration"),
    ("once-and-cycles", ["--once", "--cycles", "2"], "give --once or --cycles, not both"),
    ("cycles", ["--cycles", "0"], "--cycles must be at least 1"),
    ("groups-unknown", ["--groups", "nosuch"], "--groups: unknown group(s) ['nosuch']"),
    ("groups-empty", ["--groups", ""], "--groups '': no group named"),
    ("name-empty", ["--name", " "], "--name '': give this monitor a name"),
    ("monitor-database-url", ["--monitor-database-url", "not-a-url"], "--monitor-database-url"),
    ("retention", ["--retention", "-1"], "argument --retention: not a duration"),
    ("p95-ms", ["--p95-ms", "-5"], "--p95-ms -5.0: must be"),
    ("error-rate", ["--error-rate", "5"], "--error-rate 5.0: must be a ratio"),
    ("availability", ["--availability", "2"], "--availability 2.0: must be a ratio"),
    ("listener-lag", ["--listener-lag", "-1"], "--listener-lag -1.0: must be"),
    ("window", ["--window", "0"], "--window must be positive"),
    ("report-every", ["--report-every", "0"], "--report-every and --window must be positive"),
    ("report-dir", ["--report-dir", "/proc/nope/x"], "--report-dir /proc/nope/x"),
    ("slack-webhook", ["--slack-webhook", "ftp://hooks/T0/secretpath"], "not an http(s) URL"),
    ("telegram-token", ["--telegram-token", "123:" + "a" * 30], "needs both a token and a chat"),
    ("telegram-chat-id", ["--telegram-chat-id", "5"], "needs both a token and a chat id"),
    (
        "telegram-api-base",
        [
            "--telegram-token",
            "123:" + "a" * 30,
            "--telegram-chat-id",
            "5",
            "--telegram-api-base",
            "not-a-url",
        ],
        "--telegram-api-base: not an http(s) URL",
    ),
    ("remind-every", ["--remind-every", "-1"], "argument --remind-every: not a duration"),
    ("burn-alert-negative", ["--burn-alert", "-1"], "--burn-alert -1.0: must be a burn rate"),
    ("burn-alert-nan", ["--burn-alert", "nan"], "--burn-alert nan"),
    ("metrics-port", ["--metrics-port", "70000"], "--metrics-port 70000: not a port"),
    ("min-gas-balance-negative", ["--min-gas-balance", "-1"], "--min-gas-balance must be >= 0"),
    ("min-gas-balance-nan", ["--min-gas-balance", "nan"], "--min-gas-balance must be >= 0"),
    ("min-gas-balance-inf", ["--min-gas-balance", "inf"], "--min-gas-balance must be >= 0"),
    ("min-gas-balance-text", ["--min-gas-balance", "lots"], "argument --min-gas-balance: invalid"),
    *CHAIN_OBJECTIVE_BAD,
]
MONITOR_FLAGS = {"-h", "--help", "--quiet", "--once", "--metrics-host"}


@pytest.mark.parametrize(
    ("argv", "message"), [b[1:] for b in MONITOR_BAD], ids=[b[0] for b in MONITOR_BAD]
)
def test_bad_monitor_input_exits_2_naming_it(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["--database-url", "postgresql://u@127.0.0.1:9/x"]
    once = [] if "--once" in argv or "--cycles" in argv else ["--once"]
    base = [] if "--database-url" in argv else store
    try:
        rc = main(["monitor", *once, *base, *argv])
    except SystemExit as exc:
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2, err
    assert message in err, err
    assert "secretpath" not in err
    assert "cycle 1" not in err  # refused before any cycle ran


def test_every_documented_monitor_option_has_a_bad_input_row() -> None:
    from validate_all_flows.monitor.cli import _parser as monitor_parser

    documented = {
        s
        for a in monitor_parser()._actions
        if not isinstance(a, argparse._HelpAction)
        for s in a.option_strings
        if s.startswith("--")
    }
    covered = {a for _, argv, _ in MONITOR_BAD for a in argv if a.startswith("--")}
    missing = documented - MONITOR_FLAGS - covered
    assert not missing, f"add bad-input rows to MONITOR_BAD for {sorted(missing)}"


def test_the_old_name_of_the_deployment_slo_warns() -> None:
    from validate_all_flows import target

    with pytest.warns(DeprecationWarning, match="DeploymentSlo"):
        old = target.Slo
    assert old is target.DeploymentSlo
    with pytest.raises(AttributeError):
        _ = target.NoSuchName
