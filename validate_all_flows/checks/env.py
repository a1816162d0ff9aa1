"""Environment checks against a declarative schema (see validate_all_flows.envcheck)."""

from __future__ import annotations

from validate_all_flows.check_model import CheckResult, Status, check
from validate_all_flows.envcheck import EnvSchema, EnvSchemaError, check_env, unknown_variables
from validate_all_flows.target import Target


@check("env")
def environment(t: Target) -> list[CheckResult]:
    """The environment satisfies its schema."""
    title = "environment satisfies its schema"
    if t.env is None:
        return [CheckResult("env.schema", title, Status.SKIP, "no environment given (--env-file)")]
    if t.env_schema is None:
        why = f"the profile ({t.profile.name}) declares no environment schema (env.schema)"
        return [CheckResult("env.schema", title, Status.SKIP, why)]
    try:
        schema = EnvSchema.load(t.env_schema)
    except EnvSchemaError as exc:
        return [CheckResult("env.schema", title, Status.ERROR, str(exc), fix="fix the schema file")]
    t.redactor.add_env(t.env, schema.secret_names())
    findings = check_env(schema, t.env)
    warnings = [f"{w.variable}: {w.problem} ({w.fix})" for w in unknown_variables(schema, t.env)]
    if not findings:
        n = len(schema.variables)
        found = f"{n} variables checked, no problem"
        if warnings:
            found += f"; {len(warnings)} warning(s) about unknown names"
        return [CheckResult("env.schema", title, Status.PASS, found, warnings=warnings)]
    return [
        CheckResult(
            "env.schema",
            title,
            Status.FAIL,
            f"{len(findings)} problem(s) in the environment",
            evidence=[t.redact(f"{f.variable}: {f.problem}") for f in findings],
            fix="; ".join(dict.fromkeys(t.redact(f.fix) for f in findings)),
            warnings=warnings,
        )
    ]
