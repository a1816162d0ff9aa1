"""A real headless Chromium (Debian's ``chromium``, installed by scripts/setup) driven through the
Chrome DevTools protocol: open a page, read what it shows, collect console errors and every
network request the page made, and take a full-page screenshot.

One browser per test session, its profile in a temp dir, its debugging port picked by Chromium
(read back from ``DevToolsActivePort``); every page in a target of its own.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

__all__ = ["Browser", "PageVisit", "browser", "keep_screenshot"]

#: Flags for a root user with no display and no network wanted: nothing but the page runs.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
]


@dataclass
class PageVisit:
    """What one page load showed: console errors, requested URLs and the screenshot's path."""

    url: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot: Path | None = None
    _browser: Browser | None = None
    _session: str = ""

    def eval(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (returned by value)."""
        assert self._browser is not None
        got = self._browser.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True},
            session=self._session,
        )
        if "exceptionDetails" in got:
            raise AssertionError(f"{expression!r} raised: {got['exceptionDetails']}")
        return got["result"].get("value")


class Browser:
    """A headless Chromium and one DevTools connection to it."""

    def __init__(self, workdir: Path) -> None:
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if exe is None:
            raise RuntimeError("chromium is not installed (scripts/setup installs it)")
        profile = workdir / "profile"
        profile.mkdir()
        self._stack = contextlib.ExitStack()
        log = self._stack.enter_context((workdir / "chromium.log").open("wb"))
        self.proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                log = (workdir / "chromium.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"chromium did not open its debugging port: {log}")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        url = f"ws://127.0.0.1:{port}{path}"
        self.ws: ClientConnection = self._stack.enter_context(connect(url, max_size=None))
        self._ids = itertools.count(1)
        self._events: list[dict[str, Any]] = []

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, session: str = ""
    ) -> dict[str, Any]:
        """Sends one command and returns its result (events met meanwhile are kept)."""
        mid = next(self._ids)
        msg: dict[str, Any] = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + 30
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer to {method} within 30 s")
            got = json.loads(self.ws.recv(timeout=left))
            if got.get("id") == mid:
                if "error" in got:
                    raise RuntimeError(f"{method}: {got['error']}")
                return dict(got.get("result", {}))
            self._events.append(got)

    def _wait_event(self, method: str, session: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if any(
                e.get("method") == method and e.get("sessionId") == session for e in self._events
            ):
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{method} did not come within {timeout} s")
            self._events.append(json.loads(self.ws.recv(timeout=left)))

    def visit(self, page: Path, screenshot: Path) -> PageVisit:
        """Loads the file ``page`` in a fresh tab, waits for its load event, settles, and saves a
        full-page screenshot to ``screenshot``."""
        url = page.resolve().as_uri()
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=session)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        self._events.clear()
        self.call("Page.navigate", {"url": url}, session=session)
        self._wait_event("Page.loadEventFired", session)
        visit = PageVisit(url, _browser=self, _session=session)
        # A round trip after the load event: whatever the page logged by then has arrived.
        visit.eval("document.readyState")
        for e in self._events:
            if e.get("sessionId") != session:
                continue
            m, p = e.get("method"), e.get("params", {})
            if m == "Network.requestWillBeSent":
                visit.requests.append(p["request"]["url"])
            elif m == "Runtime.exceptionThrown":
                visit.errors.append(json.dumps(p["exceptionDetails"])[:500])
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                visit.errors.append(json.dumps(p.get("args"))[:500])
            elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
                visit.errors.append(p["entry"].get("text", "")[:500])
        size = self.call("Page.getLayoutMetrics", session=session)["cssContentSize"]
        shot = self.call(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": 1280, "height": size["height"], "scale": 1},
            },
            session=session,
        )
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        visit.screenshot = screenshot
        return visit

    def close(self) -> None:
        """Closes the connection and ends the browser."""
        self._stack.close()  # the connection, then the log file
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """The session's headless Chromium."""
    with tempfile.TemporaryDirectory(prefix="bt-chromium-") as d:
        b = Browser(Path(d))
        try:
            yield b
        finally:
            b.close()


def keep_screenshot(path: Path, name: str) -> None:
    """Copies a screenshot to $BLOCKTRUST_SCREENSHOT_DIR when set (how docs/ screenshots are
    refreshed); the test's own copy stays in its tmp dir as the artifact."""
    out = os.environ.get("BLOCKTRUST_SCREENSHOT_DIR")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(out) / name)
