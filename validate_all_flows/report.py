"""The verdict and its reports: text for people, JSON (schema below) and JUnit XML for machines.

JSON schema (``"schema": "blocktrust.validate/1"``)::

    {
      "schema": "blocktrust.validate/1",
      "verdict": "GO" | "NO-GO",
      "reason": str,                       # one line: why
      "started_at": ISO-8601 UTC, "seconds": float, "version": str,
      "target": {"base_url": str|null, "database_url": str|null (password redacted),
                 "rpc_url": str|null, "contracts": str|null, "embedded": bool,
                 "profile": str},           # the deployment profile's name
      "summary": {"pass": int, "fail": int, "skip": int, "error": int},
      "checks": [{"id": str, "title": str, "status": "pass"|"fail"|"skip"|"error",
                  "found": str, "evidence": [str], "fix": str, "seconds": float,
                  "warnings": [str]}]
    }

Skipped checks never count as passed; the verdict is GO only when nothing failed or errored, no
required check (the profile's ``require`` and ``--require``) was skipped, and at least one check
passed.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from blocktrust_native.flows.junit import JUnitCase, junit_xml
from validate_all_flows.check_model import CheckResult, Status
from validate_all_flows.redact import redact_data, redact_url
from validate_all_flows.target import Target

__all__ = [
    "FORMATS",
    "GoNoGo",
    "decide",
    "not_run",
    "redact_results",
    "render",
    "to_json",
    "to_junit",
    "to_text",
]

SCHEMA = "blocktrust.validate/1"


@dataclass(frozen=True)
class GoNoGo:
    """GO or NO-GO, with the one-line reason."""

    go: bool
    reason: str

    @property
    def label(self) -> str:
        """ "GO" or "NO-GO"."""
        return "GO" if self.go else "NO-GO"


def not_run(results: list[CheckResult], required: Sequence[str]) -> list[str]:
    """For each required check or group (``workers.monitor``, ``workers``) that did not run:
    ``"<id>: <why>"`` (skipped, or absent from the results)."""
    out = []
    for want in required:
        mine = [r for r in results if r.id == want or r.id.startswith(want + ".")]
        if not mine:
            out.append(f"{want}: not among the checks run")
        out += [f"{r.id}: {r.found}" for r in mine if r.status is Status.SKIP]
    return out


def decide(results: list[CheckResult], required: Sequence[str] = ()) -> GoNoGo:
    """The verdict over ``results`` (see the module docstring); a ``required`` check (or every
    check of a required group) that skipped is NO-GO too."""
    bad = [r for r in results if r.status in (Status.FAIL, Status.ERROR)]
    missing = not_run(results, required)
    if bad:
        failed = sum(r.status is Status.FAIL for r in bad)
        errors = len(bad) - failed
        counts = ", ".join(
            x
            for x in (
                f"{failed} check(s) failed" if failed else "",
                f"{errors} could not be judged (error)" if errors else "",
            )
            if x
        )
        names = ", ".join(r.id for r in bad[:5]) + (" ..." if len(bad) > 5 else "")
        extra = f"; required but not run: {'; '.join(missing)}" if missing else ""
        return GoNoGo(False, f"{counts}: {names}{extra}")
    if missing:
        return GoNoGo(False, f"required but not run: {'; '.join(missing)}")
    passed = sum(r.status is Status.PASS for r in results)
    if not passed:
        return GoNoGo(False, "no check could run: give a target (see --help)")
    skipped = sum(r.status is Status.SKIP for r in results)
    extra = f", {skipped} skipped (each says why)" if skipped else ""
    return GoNoGo(True, f"all {passed} checks passed{extra}")


def _summary(results: list[CheckResult]) -> dict[str, int]:
    c = Counter(r.status.value for r in results)
    return {s.value: c.get(s.value, 0) for s in Status}


def to_text(results: list[CheckResult], verdict: GoNoGo, seconds: float) -> str:
    """A report for people: banner, one line per check, then failures with evidence and fixes."""
    mark = {Status.PASS: "PASS", Status.FAIL: "FAIL", Status.SKIP: "skip", Status.ERROR: "ERR "}
    width = max((len(r.id) for r in results), default=10)
    lines = [
        "=" * 72,
        f"  {verdict.label}  —  {verdict.reason}",
        "=" * 72,
    ]
    for r in results:
        lines.append(f"  {mark[r.status]}  {r.id:<{width}}  {r.found}")
    warned = [r for r in results if r.warnings]
    if warned:
        lines.append("")
        lines += [f"  warn  {r.id}: {w}" for r in warned for w in r.warnings]
    bad = [r for r in results if r.status in (Status.FAIL, Status.ERROR)]
    for r in bad:
        lines += ["", f"{r.id}: {r.title}", f"  found: {r.found}"]
        lines += [f"  evidence: {e}" for e in r.evidence]
        if r.fix:
            lines.append(f"  fix: {r.fix}")
    s = _summary(results)
    lines += [
        "",
        f"{s['pass']} passed, {s['fail']} failed, {s['error']} errors, {s['skip']} skipped "
        f"in {seconds:.1f} s",
    ]
    return "\n".join(lines) + "\n"


def to_json(
    results: list[CheckResult],
    verdict: GoNoGo,
    target: Target,
    started_at: str,
    seconds: float,
    version: str,
) -> str:
    """The JSON document described in the module docstring."""
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "verdict": verdict.label,
        "reason": verdict.reason,
        "started_at": started_at,
        "seconds": round(seconds, 3),
        "version": version,
        "target": {
            "base_url": target.base_url and redact_url(target.base_url),
            "database_url": target.database_url and redact_url(target.database_url),
            "rpc_url": target.rpc_url and redact_url(target.rpc_url),
            "contracts": target.contracts,
            "embedded": target.embedded is not None,
            "profile": target.profile.name,
        },
        "summary": _summary(results),
        "checks": [
            {
                "id": r.id,
                "title": r.title,
                "status": r.status.value,
                "found": r.found,
                "evidence": r.evidence,
                "fix": r.fix,
                "seconds": round(r.seconds, 3),
                "warnings": r.warnings,
            }
            for r in results
        ],
    }
    return json.dumps(redact_data(doc, target.redact), indent=2) + "\n"


_JUNIT_OUTCOME = {
    Status.PASS: "passed",
    Status.FAIL: "failure",
    Status.ERROR: "error",
    Status.SKIP: "skipped",
}


def to_junit(results: list[CheckResult], verdict: GoNoGo, seconds: float) -> str:
    """JUnit XML: one test case per check (skipped, failure or error as JUnit knows them),
    written by the library's one JUnit writer (a bare ``<testsuite>``, the verdict a property)."""
    cases = []
    for r in results:
        outcome = _JUNIT_OUTCOME[r.status]
        detail = "\n".join([*r.evidence, *(["fix: " + r.fix] if r.fix else [])])
        cases.append(
            JUnitCase(
                f"validate_all_flows.{r.id.split('.', 1)[0]}",
                r.id,
                outcome,
                r.found if outcome != "passed" else "",
                detail if outcome in ("failure", "error") else None,
                r.seconds,
                "\n".join(f"warning: {w}" for w in r.warnings) if r.warnings else None,
            )
        )
    return junit_xml(
        "validate_all_flows",
        cases,
        seconds=seconds,
        properties={"verdict": verdict.label},
        testsuites=False,
    )


#: The report formats ``render`` writes.
FORMATS = ("text", "json", "junit", "html")


def redact_results(results: list[CheckResult], redact: Callable[[str], str]) -> list[CheckResult]:
    """Copies of ``results`` with every text field passed through ``redact``."""
    return [
        replace(
            r,
            title=redact(r.title),
            found=redact(r.found),
            evidence=[redact(e) for e in r.evidence],
            fix=redact(r.fix),
            warnings=[redact(w) for w in r.warnings],
        )
        for r in results
    ]


def render(
    fmt: str,
    results: list[CheckResult],
    verdict: GoNoGo,
    target: Target,
    started_at: str,
    seconds: float,
    version: str,
    *,
    phases: Sequence[tuple[str, float]] = (),
) -> str:
    """The report in ``fmt`` (one of FORMATS); ``phases`` (name, seconds) are drawn in the HTML
    report. Every format goes through here, and so through the
    target's redaction twice: on each result's fields before they are written (so no encoding of
    a format hides a secret from it), and for the registered values once more on the finished
    document."""
    results = redact_results(results, target.redact)
    verdict = GoNoGo(verdict.go, target.redact(verdict.reason))
    if fmt == "json":
        text = to_json(results, verdict, target, started_at, seconds, version)
    elif fmt == "junit":
        text = to_junit(results, verdict, seconds)
    elif fmt == "text":
        text = to_text(results, verdict, seconds)
    elif fmt == "html":
        from validate_all_flows.report_html import to_html

        text = to_html(
            results,
            verdict,
            redact=target.redact,
            started_at=started_at,
            seconds=seconds,
            version=version,
            target_line=redact_url(target.base_url) if target.base_url else "",
            phases=phases,
        )
    else:
        raise ValueError(f"unknown report format {fmt!r}; known: {', '.join(FORMATS)}")
    return target.redactor.hide_registered(text)
