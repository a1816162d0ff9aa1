"""The monitor's alerts: one per failing check until it recovers, posted to webhooks.

A check that fails (or cannot complete) opens an alert; while it keeps failing the alert stays the
same one (deduplicated on its fingerprint, ``<instance>/<check id>``, as the unique index of
migration 008 requires), with at most one reminder per ``remind_every`` seconds; when the check
passes again the alert is resolved and a recovery notice goes out. A skipped check leaves its alert
as it is: a missing input is not a recovery.

Notices go to every configured channel: Slack-compatible webhooks (``{"text": ...}``, which
Mattermost, Rocket.Chat and Discord's ``/slack`` endpoints accept too) and the Telegram bot API
(``POST {base}/bot<token>/sendMessage``). A channel that fails is logged, without its URL or token,
and tried again next cycle; channels that already took a notice do not get it twice (tracked in
memory: after a restart, a notice half-delivered before it may reach a channel again).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from blocktrust_native.errors import ConfigError
from blocktrust_native.http import http_request
from validate_all_flows.check_model import CheckResult, Status

__all__ = [
    "AVAILABILITY_CHECKS",
    "Alert",
    "AlertManager",
    "Channel",
    "SlackWebhook",
    "TelegramBot",
]

log = logging.getLogger("validate_all_flows.monitor")

#: Checks whose failure means the deployment is down for its users: their alerts are critical.
AVAILABILITY_CHECKS = frozenset({"http.health", "http.ready", "database.reachable"})
#: Checks whose failure breaks the duress promise (a fail-safe late or at risk): critical too.
SAFETY_CHECKS = frozenset({"workers.chain"})

#: Recovery notices still undelivered after this many attempts (one per cycle) are given up.
MAX_RECOVERY_ATTEMPTS = 30

_MAX_TEXT = 3500  # Telegram takes 4096 characters at most; Slack far more


class Channel(Protocol):
    """Where notices go. ``send`` returns None when the notice was taken, else why not (never a
    secret); ``name`` is short and safe to log."""

    name: str

    def send(self, text: str) -> str | None: ...


def _check_url(url: str, option: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        # The URL itself is a secret (a Slack webhook's path is its credential): never echo it.
        raise ConfigError(f"{option}: not an http(s) URL")


def _post_json(url: str, doc: dict[str, Any], timeout: float) -> dict[str, Any]:
    return http_request(
        "POST",
        url,
        headers={"Content-Type": "application/json"},
        body=json.dumps(doc).encode(),
        connect_timeout=min(timeout, 5.0),
        request_timeout=timeout,
        max_response_bytes=64 << 10,
    )


class SlackWebhook:
    """A Slack-compatible incoming webhook: ``POST url {"text": ...}``; any 2xx is success."""

    def __init__(self, url: str, *, timeout: float = 10.0, option: str = "--slack-webhook") -> None:
        _check_url(url, option)
        self._url = url
        self._timeout = timeout
        self.name = f"slack({urlsplit(url).hostname})"

    def __repr__(self) -> str:
        return f"SlackWebhook({self.name})"

    def send(self, text: str) -> str | None:
        """Posts ``text``; returns None on a 2xx answer, else the reason."""
        r = _post_json(self._url, {"text": text}, self._timeout)
        if r["error"]:
            return f"no answer: {_scrub(str(r['error']), self._url)}"
        if not 200 <= int(r["status"]) < 300:
            return f"answered {r['status']}"
        return None


class TelegramBot:
    """The Telegram bot API: ``POST {api_base}/bot<token>/sendMessage`` with chat_id and text.

    The token is a credential: it is kept out of ``repr``, logs and errors. ``api_base`` is
    configurable (a local Bot API server; loopback in tests).
    """

    def __init__(
        self,
        token: str,
        chat_id: str,
        *,
        api_base: str = "https://api.telegram.org",
        timeout: float = 10.0,
    ) -> None:
        if not token or "/" in token or any(c.isspace() for c in token):
            raise ConfigError("--telegram-token: empty or malformed (expected <id>:<secret>)")
        if not chat_id.strip():
            raise ConfigError("--telegram-chat-id: empty")
        _check_url(api_base, "--telegram-api-base")
        self._token = token
        self._url = f"{api_base.rstrip('/')}/bot{token}/sendMessage"
        self._timeout = timeout
        self.chat_id = chat_id
        self.name = f"telegram({urlsplit(api_base).hostname})"

    def __repr__(self) -> str:
        return f"TelegramBot({self.name}, chat_id={self.chat_id!r})"

    def send(self, text: str) -> str | None:
        """Sends ``text`` to the chat; returns None when Telegram says ok, else the reason."""
        doc = {"chat_id": self.chat_id, "text": text, "disable_web_page_preview": True}
        r = _post_json(self._url, doc, self._timeout)
        if r["error"]:
            return f"no answer: {_scrub(str(r['error']), self._url, self._token)}"
        try:
            reply = json.loads(r["body"] or b"{}")
        except ValueError:
            reply = {}
        if not 200 <= int(r["status"]) < 300 or not isinstance(reply, dict) or not reply.get("ok"):
            desc = reply.get("description", "") if isinstance(reply, dict) else ""
            why = f"answered {r['status']}" + (f": {str(desc)[:200]}" if desc else "")
            return _scrub(why, self._url, self._token)
        return None


def _scrub(text: str, *secrets: str) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


@dataclass
class Alert:
    """One alert: a check's failure from ``opened_at`` until ``resolved_at``.

    ``notified_at`` is when its last notice (opening, reminder or recovery) reached every channel;
    ``notify_attempts`` counts every attempt to send one; ``row_id`` is its monitor_alerts row
    once written; ``dirty`` says the row is behind.
    """

    fingerprint: str
    check_id: str
    severity: str
    message: str
    details: dict[str, Any]
    opened_at: dt.datetime
    last_seen_at: dt.datetime
    resolved_at: dt.datetime | None = None
    notified_at: dt.datetime | None = None
    notify_attempts: int = 0
    row_id: int | None = None
    dirty: bool = True
    pending: str | None = "open"  # the notice due: open, reminder, recovery or None
    delivered: set[str] = field(default_factory=set)  # channels that took the pending notice
    tries: int = 0  # attempts at the pending notice

    @property
    def is_open(self) -> bool:
        """True until the check passes again."""
        return self.resolved_at is None


def _when(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _span(seconds: float) -> str:
    s = int(max(0, seconds))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    if s < 172800:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


class AlertManager:
    """Turns each cycle's results into alert state and notices (see the module docstring).

    Keeps the open alerts in memory (loaded from the store at start, so deduplication survives a
    restart); the runner writes every ``dirty`` alert to the store after each cycle.
    """

    def __init__(
        self,
        instance: str,
        channels: Iterable[Channel] = (),
        *,
        remind_every_s: float = 4 * 3600.0,
        redact: Callable[[str], str] = lambda s: s,
    ) -> None:
        self.instance = instance
        self.channels = list(channels)
        self.remind_every_s = remind_every_s
        self.redact = redact
        self.alerts: dict[str, Alert] = {}  # fingerprint -> open alert
        self.closing: list[Alert] = []  # resolved, recovery notice not yet delivered
        self.sent = 0  # notices delivered to a channel
        self.failures: dict[str, int] = {c.name: 0 for c in self.channels}

    def fingerprint(self, check_id: str) -> str:
        """The deduplication key of ``check_id``'s alert for this instance."""
        return f"{self.instance}/{check_id}"

    def restore(self, rows: Iterable[dict[str, Any]]) -> None:
        """Takes over open alerts from the store (rows of MonitorStore.open_alerts).

        Normally called before the first cycle; when the store did not answer then, it is called
        later and merges: an alert opened meanwhile for the same check becomes the stored one
        (its notice is not sent again if the stored one was announced).
        """
        for r in rows:
            have = self.alerts.get(r["fingerprint"])
            if have is not None:
                have.row_id, have.dirty = int(r["id"]), True
                have.opened_at = min(have.opened_at, r["opened_at"])
                have.notify_attempts += int(r["notify_attempts"])
                if r["notified_at"] is not None and have.pending == "open" and not have.delivered:
                    have.notified_at, have.pending = r["notified_at"], None
                continue
            details = r["details"] if isinstance(r["details"], dict) else {}
            a = Alert(
                fingerprint=r["fingerprint"],
                check_id=r["check_name"],
                severity=r["severity"],
                message=r["message"],
                details=details,
                opened_at=r["opened_at"],
                last_seen_at=r["last_seen_at"],
                notified_at=r["notified_at"],
                notify_attempts=int(r["notify_attempts"]),
                row_id=int(r["id"]),
                dirty=False,
                pending="open" if r["notified_at"] is None else None,
            )
            self.alerts[a.fingerprint] = a

    @property
    def open_count(self) -> int:
        """Alerts open now."""
        return len(self.alerts)

    def observe(self, results: Iterable[CheckResult], now: dt.datetime) -> None:
        """Opens, refreshes or resolves alerts from one cycle's results.

        A check that raised reports ERROR under ``<group>.<function>``, an id its normal results
        do not use: its alert is resolved once that group reports again without that id.
        """
        results = list(results)
        ids = {r.id for r in results}
        groups = {r.id.split(".", 1)[0] for r in results}
        for fp, a in list(self.alerts.items()):
            if (
                a.details.get("status") == Status.ERROR.value
                and a.check_id not in ids
                and a.check_id.split(".", 1)[0] in groups
            ):
                self._resolve(fp, now)
        for r in results:
            fp = self.fingerprint(r.id)
            if r.status in (Status.FAIL, Status.ERROR):
                message = self.redact(f"{r.title}: {r.found}")
                details = {
                    "instance": self.instance,
                    "status": r.status.value,
                    "found": self.redact(r.found),
                    "evidence": [self.redact(e) for e in r.evidence[:5]],
                    "fix": self.redact(r.fix),
                }
                alert = self.alerts.get(fp)
                if alert is None:
                    critical = r.id in AVAILABILITY_CHECKS or r.id in SAFETY_CHECKS
                    severity = "critical" if critical else "warning"
                    self.alerts[fp] = Alert(fp, r.id, severity, message, details, now, now)
                    log.warning("alert opened for %s: %s", r.id, self.redact(r.found))
                else:
                    alert.message, alert.details, alert.last_seen_at = message, details, now
                    alert.dirty = True
            elif r.status is Status.PASS and fp in self.alerts:
                self._resolve(fp, now)

    def _resolve(self, fp: str, now: dt.datetime) -> None:
        a = self.alerts.pop(fp)
        a.resolved_at = a.last_seen_at = now
        a.pending, a.delivered, a.tries, a.dirty = "recovery", set(), 0, True
        self.closing.append(a)
        lasted = _span((now - a.opened_at).total_seconds())
        log.info("alert resolved: %s after %s", a.check_id, lasted)

    def _due(self, now: dt.datetime) -> list[Alert]:
        for a in self.alerts.values():
            if (
                a.pending is None
                and a.notified_at is not None
                and self.remind_every_s > 0
                and (now - a.notified_at).total_seconds() >= self.remind_every_s
            ):
                a.pending, a.delivered = "reminder", set()
        # Recoveries first: a check that recovered and failed again reads in that order.
        return [a for a in [*self.closing, *self.alerts.values()] if a.pending]

    def text(self, a: Alert, now: dt.datetime) -> str:
        """The notice for ``a``'s pending kind (redacted, at most 3500 characters)."""
        head = f"[blocktrust monitor {self.instance}]"
        since = (now - a.opened_at).total_seconds()
        if a.pending == "recovery":
            assert a.resolved_at is not None
            lasted = _span((a.resolved_at - a.opened_at).total_seconds())
            body = f"RECOVERED {a.check_id} after {lasted} (failing since {_when(a.opened_at)})"
        elif a.pending == "reminder":
            body = (
                f"STILL FAILING {a.check_id} ({a.severity}) for {_span(since)}, "
                f"since {_when(a.opened_at)}: {a.message}"
            )
        else:
            body = f"FAILING {a.check_id} ({a.severity}): {a.message}"
        lines = [f"{head} {body}"]
        if a.pending != "recovery":
            lines += [f"evidence: {e}" for e in a.details.get("evidence", [])[:2]]
            if a.details.get("fix"):
                lines.append(f"fix: {a.details['fix']}")
        text = self.redact("\n".join(lines))
        return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"

    def notify(self, now: dt.datetime) -> int:
        """Sends every due notice to the channels that have not taken it; returns how many
        notices were fully delivered. Never raises for a channel's failure."""
        if not self.channels:  # alerts are only recorded; nothing is due anywhere
            for a in self.closing:
                a.pending = None
            self.closing = [a for a in self.closing if a.dirty]
            return 0
        done = 0
        for a in self._due(now):
            text = self.text(a, now)
            a.notify_attempts += 1
            a.tries += 1
            a.dirty = True
            for ch in self.channels:
                if ch.name in a.delivered:
                    continue
                try:
                    why = ch.send(text)
                except Exception as exc:  # a channel must never stop the monitor
                    why = f"{type(exc).__name__}"
                if why is None:
                    a.delivered.add(ch.name)
                    self.sent += 1
                else:
                    self.failures[ch.name] = self.failures.get(ch.name, 0) + 1
                    log.warning(
                        "%s notice for %s via %s failed (%s); trying again next cycle",
                        a.pending,
                        a.check_id,
                        ch.name,
                        self.redact(why),
                    )
            if all(ch.name in a.delivered for ch in self.channels):
                a.notified_at, a.pending, a.delivered, a.tries = now, None, set(), 0
                done += 1
            elif a.pending == "recovery" and a.tries >= MAX_RECOVERY_ATTEMPTS:
                log.error("giving up the recovery notice for %s", a.check_id)
                a.pending = None
        self.closing = [a for a in self.closing if a.pending or a.dirty]
        return done

    def dirty(self) -> list[Alert]:
        """Alerts whose store row is behind."""
        return [a for a in [*self.alerts.values(), *self.closing] if a.dirty]

    def saved(self, a: Alert, row_id: int) -> None:
        """Marks ``a`` as written (and forgets it once resolved and notified)."""
        a.row_id, a.dirty = row_id, False
        if not a.is_open and not a.pending and a in self.closing:
            self.closing.remove(a)
