"""Deploy, then validate: wait until the service reports the version (or commit) just deployed.

``--expect-version V`` (or ``--expect-commit SHA``) polls the health endpoint (``--version-path``;
default the profile's first health path, ``/api/health`` for the reference service) every
``--expect-interval`` seconds until the JSON field at ``--version-field`` (a JSON pointer such as
``/build/version``, or dotted ``build.version``; default ``/version``, ``/commit`` for a commit)
reports it, for at most ``--expect-timeout`` seconds; the checks then run against the new
version. A commit matches when one of the two is a prefix of the other (a short SHA against a
full one, at least 7 characters), case-insensitively. Never reported: the check ``http.version``
fails with what the service did report, and nothing else runs (its checks would judge the old
deployment).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from validate_all_flows.check_model import CheckResult, Status
from validate_all_flows.httpcall import call

__all__ = ["VersionWait", "add_rollout_arguments", "pointer", "rollout_plan", "wait_for_version"]

_MISSING = object()


def add_rollout_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds --expect-version, --expect-commit, --version-field, --version-path, --expect-timeout
    and --expect-interval."""
    g = parser.add_argument_group("deploy, then validate (wait for the new version first)")
    x = g.add_mutually_exclusive_group()
    x.add_argument(
        "--expect-version",
        metavar="V",
        help="wait until the health endpoint reports version V, then validate",
    )
    x.add_argument(
        "--expect-commit",
        metavar="SHA",
        help="wait until it reports commit SHA (a prefix of at least 7 matches)",
    )
    g.add_argument(
        "--version-field",
        metavar="PATH",
        help="where the answer holds it: a JSON pointer (/build/version) or dotted "
        "path (build.version); default /version, /commit with --expect-commit",
    )
    g.add_argument(
        "--version-path",
        metavar="PATH",
        help="the endpoint to poll (default: the profile's first health path, /api/health)",
    )
    g.add_argument(
        "--expect-timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="give up after S seconds (default 300): NO-GO http.version",
    )
    g.add_argument(
        "--expect-interval",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds between polls (default 2)",
    )


class VersionWait:
    """What to wait for (built from the arguments by :func:`rollout_plan`)."""

    def __init__(
        self, expected: str, *, commit: bool, field: str, path: str, timeout: float, interval: float
    ) -> None:
        self.expected, self.commit, self.field = expected, commit, field
        self.path, self.timeout, self.interval = path, timeout, interval

    def matches(self, value: object) -> bool:
        """True when the reported ``value`` is the expected version or commit."""
        if value is _MISSING or value is None or isinstance(value, (dict, list)):
            return False
        got, want = str(value).strip(), self.expected.strip()
        if not self.commit:
            return got == want
        got, want = got.lower(), want.lower()
        return min(len(got), len(want)) >= 7 and (got.startswith(want) or want.startswith(got))


def _as_pointer(field: str) -> str:
    field = field.strip()
    if field.startswith("/"):
        return field
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in field.split("."))


def pointer(doc: Any, path: str) -> Any:
    """The value at JSON pointer ``path`` in ``doc`` (RFC 6901), or a sentinel when absent."""
    cur = doc
    for raw in path.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return _MISSING
    return cur


def rollout_plan(
    args: argparse.Namespace, base_url: str | None, default_path: str = "/api/health"
) -> VersionWait | None:
    """The wait the arguments ask for (None: none); ValueError names a bad argument.
    ``default_path`` is polled without --version-path (the profile's health path)."""
    expected = args.expect_version or args.expect_commit
    if not expected:
        if args.version_field:
            raise ValueError("--version-field given without --expect-version or --expect-commit")
        return None
    if not base_url:
        raise ValueError("--expect-version/--expect-commit need --base-url (the service to poll)")
    commit = bool(args.expect_commit)
    if commit and (len(expected) < 7 or any(c not in "0123456789abcdefABCDEF" for c in expected)):
        raise ValueError(f"--expect-commit {expected!r}: expected at least 7 hex digits")
    if not args.expect_timeout > 0 or not args.expect_interval > 0:
        raise ValueError("--expect-timeout and --expect-interval must be > 0")
    path = args.version_path or default_path
    if not path.startswith("/"):
        raise ValueError(f"--version-path {path!r} must start with /")
    field = _as_pointer(args.version_field or ("/commit" if commit else "/version"))
    if field == "/":
        raise ValueError("--version-field is empty")
    return VersionWait(
        expected,
        commit=commit,
        field=field,
        path=path,
        timeout=args.expect_timeout,
        interval=args.expect_interval,
    )


def _describe(status: int, error: str, value: object, field: str) -> str:
    if status == 0:
        return f"no answer ({error})"
    if status != 200:
        return f"status {status}"
    if value is _MISSING:
        return f"no {field} in its answer"
    return f"{field} = {value!r}"


def wait_for_version(
    base_url: str,
    wait: VersionWait,
    *,
    progress: Any = None,
    redact: Callable[[str], str] = lambda s: s,
) -> CheckResult:
    """Polls until the service reports ``wait.expected``; the ``http.version`` result.

    ``progress`` (a validate_all_flows.progress.Progress, or None) shows the wait."""
    what = "commit" if wait.commit else "version"
    title = f"GET {wait.path} reports {what} {wait.expected} (within {wait.timeout:g} s)"
    url = base_url.rstrip("/") + wait.path
    t0 = time.monotonic()
    deadline = t0 + wait.timeout
    seen: list[str] = []  # each distinct observation, in order
    polls = 0
    while True:
        polls += 1
        left = max(deadline - time.monotonic(), 0.1)
        r = call("GET", url, timeout=min(10.0, left))
        doc = r.json() if r.status == 200 else None
        value = pointer(doc, wait.field) if doc is not None else _MISSING
        elapsed = time.monotonic() - t0
        now = _describe(r.status, r.error, value, wait.field)
        if not seen or seen[-1].split(": ", 1)[1] != now:
            seen.append(f"after {elapsed:.1f} s: {now}")
        if r.status == 200 and wait.matches(value):
            if progress is not None:
                progress.meter(f"waiting for {what} {wait.expected}", 1, 1, "reported")
            return CheckResult(
                "http.version",
                title,
                Status.PASS,
                redact(f"reports {wait.field} = {value!r} after {elapsed:.1f} s ({polls} poll(s))"),
                [redact(s) for s in seen[-5:]],
            )
        if progress is not None:
            progress.meter(
                f"waiting for {what} {wait.expected}",
                elapsed,
                wait.timeout,
                redact(f"{elapsed:.0f}/{wait.timeout:g} s, {now}"),
            )
        if time.monotonic() + wait.interval > deadline:
            break
        time.sleep(wait.interval)  # the poll interval the operator asked for
    return CheckResult(
        "http.version",
        title,
        Status.FAIL,
        redact(
            f"the service never reported {what} {wait.expected} in {wait.timeout:g} s; "
            f"last: {now} ({polls} poll(s))"
        ),
        [redact(s) for s in seen[-5:]],
        f"check that the deploy finished and reached every instance behind {wait.path}; "
        f"--expect-timeout waits longer, --version-field names where the {what} is",
    )
