"""Deploy, then validate (--expect-version / --expect-commit) against a loopback service that
switches versions mid-poll, and the progress display (a bar on a terminal, lines otherwise)."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from validate_all_flows.cli import main
from validate_all_flows.embedded.postgres import free_port
from validate_all_flows.progress import Progress


class Rolling:
    """/api/health reports ``old`` until its ``switch_after``-th hit, then ``new`` (at the JSON
    pointer-ish ``shape``); /api/ready answers 200."""

    def __init__(self, old: Any, new: Any, switch_after: int) -> None:
        self.old, self.new, self.switch_after = old, new, switch_after
        self.hits = 0
        owner = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/api/health":
                    owner.hits += 1
                    doc = owner.new if owner.hits >= owner.switch_after else owner.old
                elif self.path == "/api/ready":
                    doc = {"status": "ready"}
                else:
                    doc = {}
                body = json.dumps(doc).encode()
                self.send_response(200 if doc else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def rolling() -> Iterator[Rolling]:
    r = Rolling({"status": "ok", "version": "1.4.0"}, {"status": "ok", "version": "1.4.1"}, 4)
    yield r
    r.close()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:
    rc = main(["--format", "json", "--only", "http", *argv])
    out, err = capsys.readouterr()
    return rc, json.loads(out), err


def test_waits_for_the_new_version_then_validates(
    rolling: Rolling, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, doc, err = _run(
        capsys,
        "--base-url",
        rolling.url,
        "--expect-version",
        "1.4.1",
        "--expect-interval",
        "0.05",
        "--expect-timeout",
        "60",
    )
    by_id = {c["id"]: c for c in doc["checks"]}
    assert by_id["http.version"]["status"] == "pass"
    assert by_id["http.version"]["found"].startswith("reports /version = '1.4.1' after ")
    assert "(4 poll(s))" in by_id["http.version"]["found"]
    ev = by_id["http.version"]["evidence"]
    assert ev[0].endswith(": /version = '1.4.0'")
    assert ev[-1].endswith(": /version = '1.4.1'")
    # The checks ran after the wait, against the new version.
    assert by_id["http.health"]["status"] == "pass"
    assert rc == 0, doc
    # Not a terminal: plain progress lines name what is awaited and what is reported.
    assert "· waiting for version 1.4.1:" in err
    assert "/version = '1.4.0'" in err


def test_a_version_never_reported_is_no_go_naming_what_was(
    rolling: Rolling, capsys: pytest.CaptureFixture[str]
) -> None:
    rolling.switch_after = 10**9
    rc, doc, _ = _run(
        capsys,
        "--quiet",
        "--base-url",
        rolling.url,
        "--expect-version",
        "2.0.0",
        "--expect-interval",
        "0.05",
        "--expect-timeout",
        "3",
    )
    assert rc == 1
    assert doc["verdict"] == "NO-GO"
    assert doc["reason"] == "1 check(s) failed: http.version"
    (only,) = doc["checks"]  # nothing else ran against the old deployment
    assert only["id"] == "http.version"
    assert "never reported version 2.0.0 in 3 s; last: /version = '1.4.0'" in only["found"]
    assert only["fix"]


def test_a_short_commit_in_a_nested_field(capsys: pytest.CaptureFixture[str]) -> None:
    full = "0123456789abcdef0123456789abcdef01234567"
    r = Rolling(
        {"status": "ok", "build": {"commit": "f" * 40}},
        {"status": "ok", "build": {"commit": full}},
        2,
    )
    try:
        rc, doc, _ = _run(
            capsys,
            "--quiet",
            "--base-url",
            r.url,
            "--expect-commit",
            "0123456",
            "--version-field",
            "build.commit",
            "--expect-interval",
            "0.05",
        )
    finally:
        r.close()
    by_id = {c["id"]: c for c in doc["checks"]}
    assert by_id["http.version"]["status"] == "pass", by_id["http.version"]
    assert f"reports /build/commit = '{full}'" in by_id["http.version"]["found"]
    assert rc == 0


def test_no_answer_at_all_is_reported_as_such(capsys: pytest.CaptureFixture[str]) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    rc, doc, _ = _run(
        capsys,
        "--quiet",
        "--base-url",
        nobody,
        "--expect-version",
        "1",
        "--expect-interval",
        "0.05",
        "--expect-timeout",
        "0.3",
    )
    assert rc == 1
    assert "last: no answer (" in doc["checks"][0]["found"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--expect-version", "1.0"], "need --base-url"),
        (["--base-url", "http://127.0.0.1:9", "--expect-commit", "xyz"], "at least 7 hex digits"),
        (["--base-url", "http://127.0.0.1:9", "--version-field", "/v"], "without --expect-version"),
        (
            ["--base-url", "http://127.0.0.1:9", "--expect-version", "1", "--expect-timeout", "0"],
            "must be > 0",
        ),
        (
            ["--base-url", "http://127.0.0.1:9", "--expect-version", "1", "--version-path", "x"],
            "must start with /",
        ),
    ],
)
def test_bad_arguments_exit_2(argv: list[str], message: str, capsys) -> None:
    assert main(["--quiet", *argv]) == 2
    assert message in capsys.readouterr().err


def test_both_version_and_commit_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--expect-version", "1", "--expect-commit", "0123456"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere() -> None:
    tty = io.StringIO()
    p = Progress(tty, tty=True)
    p.meter("load", 5, 10, "5/10 s")
    p.meter("load", 10, 10, "10/10 s")
    p("done")
    out = tty.getvalue()
    assert out.count("\r\x1b[2K") == 2  # redrawn in place
    assert "load [############............]  50% 5/10 s" in out
    assert "load [########################] 100% 10/10 s\n· done\n" in out

    log = io.StringIO()
    p = Progress(log, tty=False)
    p.meter("load", 1, 10, "first")
    p.meter("load", 2, 10, "within the second: left out")
    p.meter("load", 10, 10, "last")
    p("next")
    assert log.getvalue().splitlines() == ["· load:  10% first", "· load: 100% last", "· next"]
    assert "\r" not in log.getvalue()

    quiet = io.StringIO()
    p = Progress(quiet, quiet=True)
    p.meter("x", 1, 2)
    p("y")
    assert quiet.getvalue() == ""


def test_progress_redacts_what_it_shows() -> None:
    out = io.StringIO()
    p = Progress(out, tty=False, redact=lambda s: s.replace("hunter2", "***"))
    p("connecting with hunter2")
    p.meter("waiting hunter2", 1, 1, "as hunter2")
    assert "hunter2" not in out.getvalue()
    assert out.getvalue().count("***") == 3


def test_a_terminal_gets_a_bar_redrawn_in_place(rolling: Rolling) -> None:
    # The real command with its stderr on a pseudo-terminal: the wait is one bar, redrawn.
    import os
    import pty
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    main_fd, tty_fd = pty.openpty()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "python"), str(root)])}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "validate_all_flows", "--base-url", rolling.url, "--only",
             "http", "--expect-version", "1.4.1", "--expect-interval", "0.05"],
            stdout=subprocess.PIPE, stderr=tty_fd, env=env, timeout=120, check=False,
        )  # fmt: skip
        os.close(tty_fd)
        tty_fd = -1
        shown = b""
        while True:
            try:
                chunk = os.read(main_fd, 65536)
            except OSError:  # EIO: the terminal has no writer left
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if tty_fd >= 0:
            os.close(tty_fd)
        os.close(main_fd)
    text = shown.decode(errors="replace")
    assert proc.returncode == 0, text
    assert text.count("\r\x1b[2Kwaiting for version 1.4.1 [") >= 2, text
    assert "] 100% reported" in text
