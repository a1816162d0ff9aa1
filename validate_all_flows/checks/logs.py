"""Log checks: no tracebacks or error lines, and no credentials, in the service's recent logs."""

from __future__ import annotations

import re

from validate_all_flows.check_model import CheckResult, Status, check
from validate_all_flows.target import Target

_ERROR_LINE = re.compile(r"Traceback \(most recent call last\)|\b(ERROR|CRITICAL|FATAL)\b")
# Credentials that must never be logged, whatever the env file says.
_CREDENTIALS = [
    # 64 hex digits alone may be a transaction or block hash; with a key-ish name it is a key.
    (
        "a private key",
        re.compile(r"(?i)(priv(ate)?[_ -]?key|secret|mnemonic)\W{0,4}(0x)?[0-9a-f]{64}\b"),
    ),
    ("a bearer token", re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]{16,}")),
    ("a JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("an API key", re.compile(r"\b[a-z][a-z0-9]*_(live|test)_[A-Za-z0-9]{30,}\b")),
    ("a password in a URL", re.compile(r"://[^/\s:@]*:[^/\s@]+@")),
    # password=..., sslpassword=..., db_password: ... outside a URL (libpq DSNs, config dumps);
    # not a placeholder such as ${DB_PASSWORD}, ***, <redacted> or an empty value.
    (
        "a password",
        re.compile(
            r"(?i)(?:(?<![A-Za-z0-9])[A-Za-z0-9_.-]*(?:pass(?:word|wd|phrase)|pwd)\s*=\s*"
            r"|\"[A-Za-z0-9_.-]*(?:pass(?:word|wd|phrase)|pwd)\"\s*:\s*)"
            r"[\"']?(?![\s\"',;&}]|\$\{|\*{3}|<|\[redacted)\S"
        ),
    ),
]


def _where(source: str, n: int) -> str:
    return f"{source}:{n}"


@check("logs")
def log_hygiene(t: Target) -> list[CheckResult]:
    """The logs hold no errors and no credentials."""
    ids = (
        ("logs.errors", "no tracebacks or error lines in the logs"),
        ("logs.secrets", "no credentials in the logs"),
    )
    if not t.log_texts:
        return [
            CheckResult(c, title, Status.SKIP, "no logs given (--logs, --logs-cmd)")
            for c, title in ids
        ]
    errors, leaks = [], []
    lines_seen = 0
    for source, text in t.log_texts:
        for n, line in enumerate(text.splitlines(), 1):
            lines_seen += 1
            if _ERROR_LINE.search(line):
                errors.append(f"{_where(source, n)}: {t.redact(line.strip())[:200]}")
            hits = [name for name, rx in _CREDENTIALS if rx.search(line)]
            if t.redactor.found_in(line):
                hits.append("a secret from the environment")
            if hits:
                # Never quote the line: it holds the credential.
                leaks.append(f"{_where(source, n)}: {', '.join(dict.fromkeys(hits))}")
    out = []
    c, title = ids[0]
    if errors:
        out.append(
            CheckResult(
                c,
                title,
                Status.FAIL,
                f"{len(errors)} error line(s)",
                errors[:20],
                "fix the errors the service logged since the deploy",
            )
        )
    else:
        out.append(CheckResult(c, title, Status.PASS, f"{lines_seen} lines, no error"))
    c, title = ids[1]
    if leaks:
        out.append(
            CheckResult(
                c,
                title,
                Status.FAIL,
                f"{len(leaks)} line(s) with credentials",
                leaks[:20],
                "redact secrets before logging; rotate the leaked ones",
            )
        )
    else:
        out.append(CheckResult(c, title, Status.PASS, f"{lines_seen} lines, no credential"))
    return out
