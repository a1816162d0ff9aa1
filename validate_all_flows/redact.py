"""The one place secrets are taken out of what ``validate_all_flows`` prints or sends.

Every output (the text, JSON, JUnit and HTML reports, stderr progress, the monitor's log, alerts,
SLO reports and Prometheus exposition, the pytest plugin's messages) goes through a
:class:`Redactor`: the values registered with it (env-file secrets, passwords in the given URLs,
the probe users' passwords, the webhook secret) are hidden in any form they may take (as given,
URL-encoded, JSON-escaped, base64, hex, any case), and so is whatever *looks* like a credential
whether registered or not (:func:`redact_text`):

- URL user info: the password (``postgresql://app:***@db:5432/x``); a user name alone is kept for
  PostgreSQL (a role name) and hidden elsewhere (RPC providers put keys there);
- query parameters with secret-looking names (``?password=``, ``?apikey=``, ``&token=``);
- provider keys in URL paths (``/v3/<key>``, ``/v2/<key>``, long random segments, ``/bot<token>``);
- ``password=`` / ``sslpassword=`` and other secret-named ``key=value`` pairs (libpq DSNs, logs)
  and ``"secret-named": "value"`` in JSON;
- ``Bearer`` / ``Basic`` credentials, JWTs, API keys of well-known shapes, PEM private keys.

The library's own messages never hold a secret (``blocktrust_native.pool.redact_dsn`` and
``blocktrust_native.jsonrpc.redact_url`` serve its C++ side); this module is the tool's.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = [
    "MASK",
    "Redactor",
    "looks_secret_name",
    "redact_data",
    "redact_text",
    "redact_url",
    "url_secrets",
]

MASK = "***"
_MIN_SECRET = 6  # shorter registered values would redact ordinary words

# A name whose value is a credential: ends with one of these words (JWT_SECRET, db_password,
# SUMSUB_APP_TOKEN, API_KEY_SALT, x-api-key, SLACK_WEBHOOK_URL) -- never token_id or key_count.
_SECRET_WORD = (
    r"(?:password|passwd|passphrase|pwd|pass|secret|token|api[_-]?key|apikey|private[_-]?key|"
    r"secret[_-]?key|access[_-]?key|signing[_-]?key|salt|credentials?|mnemonic|seed|auth|"
    r"webhook[_-]?url|dsn|sig|signature)"
)
_SECRET_NAME = re.compile(rf"(?i)^[A-Za-z0-9_.-]*?{_SECRET_WORD}$")

_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\s'\"<>`]+")
# key=value with a secret-named key (libpq keyword DSNs, log lines, query strings outside URLs).
_KEY_VALUE = re.compile(
    rf"(?i)(?<![A-Za-z0-9_.-])([A-Za-z0-9_.-]*?{_SECRET_WORD})(\s*=\s*)"
    r"('(?:[^'\\]|\\.)*'?|\"(?:[^\"\\]|\\.)*\"?|[^\s&,;'\"]+)"
)
_JSON_PAIR = re.compile(rf'(?i)("[A-Za-z0-9_.-]*?{_SECRET_WORD}"\s*:\s*)"(?:[^"\\]|\\.)*"')
_HEADER = re.compile(r"(?im)^(\s*(?:[\w-]*api-key|cookie|set-cookie|x-[\w-]*token)\s*:\s*).+$")
_PATTERNS = [
    (re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1\2" + MASK),
    (re.compile(r"\b(Basic)(\s+)[A-Za-z0-9+/]{12,}={0,2}"), r"\1\2" + MASK),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), MASK),
    (re.compile(r"\b[a-z][a-z0-9]{1,15}_(?:live|test|prod|dev)_[A-Za-z0-9]{16,}"), MASK),
    (re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{20,}"), MASK),
    (re.compile(r"\bxox[abprse]-[A-Za-z0-9-]{10,}"), MASK),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"), MASK),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), MASK),
    (re.compile(r"\b\d{6,12}:[A-Za-z0-9_-]{30,}"), MASK),  # Telegram bot tokens
    (
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S
        ),
        MASK,
    ),
]

_PG_SCHEMES = ("postgres", "postgresql")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_KEYISH = re.compile(r"^[A-Za-z0-9_-]{20,}$")


def looks_secret_name(name: str) -> bool:
    """True for names whose values are credentials (``JWT_SECRET``, ``password``, ``x-api-key``,
    ``SLACK_WEBHOOK_URL``), false for ``token_id`` and the like."""
    return bool(_SECRET_NAME.match(name))


def _path_key(segment: str, after_version: bool) -> bool:
    """A URL path segment that is a provider key: right after ``/v2/``, ``/v3/`` ..., long and
    random-looking, or a Telegram ``bot<token>``."""
    if not segment or segment.startswith("0x") or _UUID.match(segment):
        return False  # addresses, hashes and ids are public
    if re.match(r"^bot\d+:", segment):
        return True
    if after_version and re.match(r"^[A-Za-z0-9_-]{12,}$", segment):
        return True
    return bool(
        _KEYISH.match(segment) and re.search(r"[0-9]", segment) and re.search(r"[A-Za-z]", segment)
    )


def _split(url: str) -> tuple[str, str, str, str, str] | None:
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$", url)
    if not m:
        return None
    return m.group(1), m.group(2), m.group(3), m.group(4) or "", m.group(5) or ""


def redact_url(url: str) -> str:
    """``url`` with its credentials replaced by ``***`` and everything else kept (scheme, user of
    a DSN, host, port, the non-secret path and query): see the module docstring."""
    parts = _split(url)
    if parts is None:
        return redact_text(url) if "://" not in url else "<unparseable URL>"
    scheme, netloc, path, query, fragment = parts
    base = scheme.lower().split("+", 1)[0]
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, colon, _password = userinfo.partition(":")
        if colon:
            userinfo = f"{user}:{MASK}"
        elif base not in _PG_SCHEMES:
            userinfo = MASK
        netloc = f"{userinfo}@{host}"
    segments = path.split("/")
    for i, seg in enumerate(segments):
        after_version = i > 0 and bool(re.match(r"^v\d+$", segments[i - 1]))
        if _path_key(seg, after_version):
            segments[i] = MASK
    path = "/".join(segments)
    if query:
        pairs = []
        for pair in query[1:].split("&"):
            name, eq, _value = pair.partition("=")
            pairs.append(f"{name}={MASK}" if eq and looks_secret_name(name) else pair)
        query = "?" + "&".join(pairs)
    return f"{scheme}://{netloc}{path}{query}{fragment}"


def url_secrets(url: str) -> list[str]:
    """The secret parts of ``url`` as written in it (password, a lone user of a non-PostgreSQL
    URL, path keys, secret query values): what a :class:`Redactor` registers for a URL."""
    parts = _split(url.strip())
    if parts is None:
        return []
    scheme, netloc, path, query, _fragment = parts
    out = []
    if "@" in netloc:
        userinfo = netloc.rsplit("@", 1)[0]
        user, colon, password = userinfo.partition(":")
        if colon:
            out.append(password)
        elif scheme.lower().split("+", 1)[0] not in _PG_SCHEMES:
            out.append(user)
    segments = path.split("/")
    for i, seg in enumerate(segments):
        after_version = i > 0 and bool(re.match(r"^v\d+$", segments[i - 1]))
        if _path_key(seg, after_version):
            out.append(seg.removeprefix("bot"))
    for pair in query[1:].split("&") if query else []:
        name, eq, value = pair.partition("=")
        if eq and looks_secret_name(name):
            out.append(value)
    return [s for s in out if s]


def _mask_pair(m: re.Match[str]) -> str:
    value = m.group(3)
    if value.startswith("${") or value in (MASK, "'***'", '"***"'):
        return m.group(0)  # a reference (${JWT_SECRET}) or already hidden
    return f"{m.group(1)}{m.group(2)}{MASK}"


def redact_text(text: str) -> str:
    """``text`` with everything that looks like a credential replaced by ``***`` (no registered
    values needed; see the module docstring)."""
    text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    text = _KEY_VALUE.sub(_mask_pair, text)
    text = _JSON_PAIR.sub(lambda m: f'{m.group(1)}"{MASK}"', text)
    text = _HEADER.sub(lambda m: m.group(1) + MASK, text)
    for rx, repl in _PATTERNS:
        text = rx.sub(repl, text)
    return text


def redact_data(data: Any, redact: Callable[[str], str]) -> Any:
    """A copy of JSON-like ``data`` with every string (keys too) passed through ``redact``; for
    documents that are serialised afterwards (redacting serialised JSON could break a quote)."""
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, dict):
        return {redact(str(k)): redact_data(v, redact) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [redact_data(v, redact) for v in data]
    return data


def _forms(value: str) -> set[str]:
    """The forms ``value`` may take in a log or a report: as given, URL-encoded, JSON-escaped,
    hex, and base64 at each of the three alignments (so it is found inside longer base64 too)."""
    raw = value.encode()
    forms = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1], raw.hex()}
    for k in range(3):
        tail = raw[k:]
        whole = len(tail) // 3 * 3
        for enc in (base64.b64encode, base64.urlsafe_b64encode):
            core = enc(tail[:whole]).decode()
            if len(core) >= 8:
                forms.add(core)
    return {f for f in forms if len(f) >= _MIN_SECRET}


class Redactor:
    """Hides registered secret values (in every form, see ``_forms``) and anything that looks
    like a credential. Call it on any text that leaves the process."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._rx: re.Pattern[str] | None = None

    def __bool__(self) -> bool:
        return bool(self._values)

    def add(self, values: Iterable[str | None]) -> None:
        """Registers secret values (shorter than 6 characters: ignored, they would hide words)."""
        new = {v for v in values if v and len(v) >= _MIN_SECRET} - self._values
        if new:
            self._values |= new
            forms = sorted({f for v in self._values for f in _forms(v)}, key=len, reverse=True)
            self._rx = re.compile("|".join(map(re.escape, forms)), re.IGNORECASE)

    def add_url(self, url: str | None) -> None:
        """Registers the secret parts of a URL or DSN (see :func:`url_secrets`; a keyword DSN's
        ``password=``)."""
        if not url:
            return
        self.add(url_secrets(url))
        for m in _KEY_VALUE.finditer(url):
            self.add([m.group(3).strip("'\"")])

    def add_env(self, env: Mapping[str, str], secret_names: Iterable[str] = ()) -> None:
        """Registers an environment's secrets: the variables ``secret_names`` lists (the schema's),
        those whose names say they are secrets, and the secret parts of every URL value."""
        named = set(secret_names)
        for name, value in env.items():
            if name in named or looks_secret_name(name):
                self.add([value])
            if "://" in value or "password" in value.lower():
                self.add_url(value)

    def found_in(self, text: str) -> bool:
        """True when a registered value appears in ``text`` in any of its forms."""
        return self._rx is not None and self._rx.search(text) is not None

    def hide_registered(self, text: str) -> str:
        """``text`` with the registered values (in every form) hidden and nothing else changed:
        safe on a serialised document (JSON, XML), where the credential patterns could cut a
        quoted string."""
        return self._rx.sub(MASK, text) if self._rx is not None else text

    def __call__(self, text: str) -> str:
        """``text`` with every registered value and every credential-looking part hidden."""
        return redact_text(self.hide_registered(text))
