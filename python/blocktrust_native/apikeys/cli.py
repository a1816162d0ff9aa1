"""``python -m blocktrust_native.apikeys``: API keys managed from the shell.

    issue --role R [--owner O] [--expires 90d] [--scope S ...]   a new key; its token on stdout
    list [--owner O] [--all]                                     the keys, never a secret
    revoke KEY_ID                                                revoked everywhere at once
    rotate KEY_ID [--overlap 1h]                                 a successor; the old key works
                                                                 for the overlap, then expires
    rotate-secret                                                a new server secret (stdout) and
                                                                 how to roll it with a KeyRing
    seed FILE                                                    development keys from YAML/JSON

The database comes from ``DATABASE_URL`` and the server secret from ``API_KEY_SALT`` (at least
32 bytes); during a secret rotation ``API_KEY_SALT_PREVIOUS`` holds the old one, and keys made
under it keep working (and are re-digested on first use). Nothing secret is ever taken from the
command line (argv shows in ``ps`` and shell history): tokens are printed once, to stdout only,
and every message on stderr has the database password and the secrets removed.

Exit codes: 0 done, 1 the operation was refused (unknown, revoked or expired key, the database
did not answer), 2 bad usage or configuration (a missing variable, a bad role or duration).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["main", "parse_duration"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PREFIX = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


class _Usage(Exception):
    """Bad usage or configuration: exit 2."""


class _Refused(Exception):
    """The operation could not be done: exit 1."""


def parse_duration(text: str) -> dt.timedelta:
    """``90d``, ``12h``, ``30m``, ``45s``, ``2w`` (or plain seconds) as a timedelta > 0;
    ValueError names a bad one."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (e.g. 90d, 12h, 30m, 45s)")
    seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    if seconds <= 0:
        raise ValueError(f"duration must be > 0: {text!r}")
    return dt.timedelta(seconds=seconds)


def _duration(text: str) -> dt.timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m blocktrust_native.apikeys",
        description="Manage API keys in PostgreSQL. DATABASE_URL and API_KEY_SALT come from the "
        "environment (API_KEY_SALT_PREVIOUS during a secret rotation); tokens are printed once, "
        "to stdout.",
    )
    p.add_argument(
        "--prefix",
        default=os.environ.get("API_KEY_PREFIX", "btk_live"),
        help="token prefix (API_KEY_PREFIX, default btk_live)",
    )
    p.add_argument("--table", default="blocktrust_api_keys", help="the keys' table")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    i = sub.add_parser("issue", help="issue a key; prints its token once")
    i.add_argument("--role", required=True, choices=["admin", "auditor", "client"])
    i.add_argument("--owner", default="cli", help="who the key is for (default: cli)")
    i.add_argument("--expires", type=_duration, help="lifetime, e.g. 90d (default: none)")
    i.add_argument("--scope", action="append", default=[], help="a scope (repeatable)")
    ls = sub.add_parser("list", help="list the keys (no secret)")
    ls.add_argument("--owner", help="only this owner's keys")
    ls.add_argument("--all", action="store_true", help="include revoked keys")
    ls.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    r = sub.add_parser("revoke", help="revoke a key everywhere at once")
    r.add_argument("key_id")
    ro = sub.add_parser("rotate", help="issue a successor; the old key expires after --overlap")
    ro.add_argument("key_id")
    ro.add_argument(
        "--overlap",
        type=_duration,
        default=dt.timedelta(hours=1),
        help="how long the old key keeps working (default 1h)",
    )
    sub.add_parser("rotate-secret", help="make a new server secret and say how to roll it")
    s = sub.add_parser("seed", help="issue development keys listed in a YAML/JSON file")
    s.add_argument("file")
    s.add_argument("--force", action="store_true", help="even when ENVIRONMENT=production")
    return p


def _secrets() -> list[str]:
    return [v for k in ("API_KEY_SALT", "API_KEY_SALT_PREVIOUS") if (v := os.environ.get(k))]


def _clean(text: str) -> str:
    """``text`` without the secrets of the environment or a URL's password."""
    for s in sorted(_secrets(), key=len, reverse=True):
        text = text.replace(s, "***")
    dsn = os.environ.get("DATABASE_URL", "")
    if dsn:
        text = text.replace(dsn, _redact_url(dsn))
    text = re.sub(r"(://[^:/@\s]*:)[^@\s/]+@", r"\1***@", text)
    return re.sub(r"(?i)(password\s*=\s*)\S+", r"\1***", text)


def _redact_url(url: str) -> str:
    return re.sub(r"(://[^:/@\s]*:)[^@\s/]+@", r"\1***@", url)


def _ring(prefix: str) -> Any:
    from blocktrust_native.apikeys import KeyRing
    from blocktrust_native.errors import ConfigError

    salt = os.environ.get("API_KEY_SALT")
    if not salt:
        raise _Usage("API_KEY_SALT is not set (the server secret, at least 32 bytes)")
    previous = [v for v in os.environ.get("API_KEY_SALT_PREVIOUS", "").split(",") if v]
    if not _PREFIX.match(prefix):
        raise _Usage(f"--prefix {prefix!r} must match {_PREFIX.pattern}")
    for name, value in [("API_KEY_SALT", salt), *(("API_KEY_SALT_PREVIOUS", v) for v in previous)]:
        if len(value.encode()) < 32:
            raise _Usage(f"{name} is {len(value.encode())} bytes; at least 32 are needed")
    try:
        return KeyRing(prefix, salt, *previous)
    except ConfigError as exc:
        raise _Usage(str(exc)) from None


def _store(args: argparse.Namespace) -> Any:
    from blocktrust_native.apikeys.store import PgKeyStore
    from blocktrust_native.errors import ConfigError
    from blocktrust_native.pool import Pool

    ring = _ring(args.prefix)
    dsn = os.environ.get("DATABASE_URL")
    if not dsn:
        raise _Usage("DATABASE_URL is not set (postgresql://user@host/db)")
    pool = Pool(dsn, min_size=0, max_size=2, acquire_timeout=10, connect_timeout=5)
    try:
        return PgKeyStore(pool, ring, table=args.table, cache=False), pool
    except ConfigError as exc:
        pool.close()
        raise _Usage(str(exc)) from None
    except BaseException:
        pool.close()
        raise


def _when(t: dt.datetime | None) -> str:
    return "-" if t is None else t.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _say(msg: str) -> None:
    print(_clean(msg), file=sys.stderr, flush=True)


def _issued(key: Any, what: str) -> None:
    i = key.info
    _say(
        f"{what} {i.key_id} (role {i.role}, owner {i.owner}, expires {_when(i.expires_at)}); "
        "the token below is shown once: store it now"
    )
    print(key.token, flush=True)


def _seed_entries(path: str) -> list[dict[str, Any]]:
    import yaml

    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise _Usage(f"seed {path}: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _Usage(f"seed {path}: not YAML/JSON: {exc}") from None
    keys = doc.get("keys") if isinstance(doc, dict) else doc
    if not isinstance(keys, list) or not keys:
        raise _Usage(f"seed {path}: expected a list of keys (or {{keys: [...]}})")
    out = []
    for n, k in enumerate(keys, start=1):
        where = f"seed {path}: key {n}"
        if not isinstance(k, dict):
            raise _Usage(f"{where}: expected a mapping with role and owner")
        unknown = set(k) - {"role", "owner", "expires", "scopes"}
        if unknown:
            raise _Usage(f"{where}: unknown field(s) {sorted(unknown)}")
        if k.get("role") not in ("admin", "auditor", "client"):
            raise _Usage(f"{where}: role must be admin, auditor or client, not {k.get('role')!r}")
        if not isinstance(k.get("owner"), str) or not k["owner"]:
            raise _Usage(f"{where}: owner must be a non-empty string")
        expires = None
        if k.get("expires") is not None:
            try:
                expires = parse_duration(str(k["expires"]))
            except ValueError as exc:
                raise _Usage(f"{where}: expires: {exc}") from None
        scopes = k.get("scopes", [])
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise _Usage(f"{where}: scopes must be a list of strings")
        out.append({"role": k["role"], "owner": k["owner"], "expires": expires, "scopes": scopes})
    return out


def _run(args: argparse.Namespace) -> int:
    from blocktrust_native.errors import ConfigError

    if args.command == "rotate-secret":
        _ring(args.prefix)  # the current secret must be valid before a successor is made
        new = base64.urlsafe_b64encode(os.urandom(48)).decode().rstrip("=")
        _say(
            "a new server secret is below (shown once). To roll it without breaking keys:\n"
            "  1. deploy with API_KEY_SALT=<the new secret> and API_KEY_SALT_PREVIOUS=<the "
            "current API_KEY_SALT>: keys made under either work (KeyRing), and each key is\n"
            "     re-digested under the new secret on its first use;\n"
            "  2. after the overlap (a key's usual idle time, e.g. 30 days), unset "
            "API_KEY_SALT_PREVIOUS: a key unused all that time stops working; rotate it."
        )
        print(new, flush=True)
        return 0
    entries = _seed_entries(args.file) if args.command == "seed" else []
    if args.command == "seed" and os.environ.get("ENVIRONMENT") == "production" and not args.force:
        raise _Usage("seed makes development keys: ENVIRONMENT is production (give --force)")
    store, pool = _store(args)
    try:
        if args.command == "issue":
            _issued(store.issue(args.role, args.owner, args.expires, scopes=args.scope), "issued")
        elif args.command == "list":
            keys = store.list(args.owner, include_revoked=args.all)
            if args.json:
                for k in keys:
                    print(
                        json.dumps(
                            {
                                "key_id": k.key_id,
                                "role": k.role,
                                "owner": k.owner,
                                "scopes": list(k.scopes),
                                "created_at": _when(k.created_at),
                                "expires_at": _when(k.expires_at),
                                "revoked_at": _when(k.revoked_at),
                                "last_used_at": _when(k.last_used_at),
                                "active": k.active(),
                            }
                        )
                    )
            else:
                print(f"{'KEY ID':<14}{'ROLE':<9}{'OWNER':<20}{'CREATED':<22}{'EXPIRES':<22}STATE")
                for k in keys:
                    state = "revoked" if k.revoked_at else ("active" if k.active() else "expired")
                    print(
                        f"{k.key_id:<14}{k.role:<9}{k.owner[:19]:<20}{_when(k.created_at):<22}"
                        f"{_when(k.expires_at):<22}{state}"
                    )
            _say(f"{len(keys)} key(s)")
        elif args.command == "revoke":
            if not store.revoke(args.key_id):
                raise _Refused(f"no active key {args.key_id!r} (unknown or already revoked)")
            _say(f"revoked {args.key_id}")
        elif args.command == "rotate":
            try:
                new = store.rotate(args.key_id, args.overlap)
            except ConfigError as exc:
                raise _Refused(str(exc).removeprefix("PgKeyStore: ")) from None
            _say(
                f"{args.key_id} keeps working until "
                f"{_when(dt.datetime.now(dt.timezone.utc) + args.overlap)}"
            )
            _issued(new, "issued successor")
        elif args.command == "seed":
            have = {(k.owner, k.role) for k in store.list() if k.active()}
            made = 0
            for e in entries:
                if (e["owner"], e["role"]) in have:
                    _say(f"{e['owner']} already has an active {e['role']} key: kept")
                    continue
                key = store.issue(e["role"], e["owner"], e["expires"], scopes=e["scopes"])
                _say(f"issued {key.info.key_id} for {e['owner']} ({e['role']})")
                print(f"{e['owner']}\t{e['role']}\t{key.token}", flush=True)
                have.add((e["owner"], e["role"]))
                made += 1
            _say(f"{made} key(s) issued, {len(entries) - made} kept")
    finally:
        store.close()
        pool.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command; returns the exit code (0 done, 1 refused, 2 bad usage)."""
    args = _parser().parse_args(argv)
    from blocktrust_native.errors import Error

    try:
        return _run(args)
    except _Usage as exc:
        _say(f"cannot run: {exc}")
        return 2
    except _Refused as exc:
        _say(f"refused: {exc}")
        return 1
    except Error as exc:  # the database did not answer or refused
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        _say(f"failed: {type(exc).__name__}: {first}")
        return 1
