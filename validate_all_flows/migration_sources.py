"""What a deployment's migrations should have produced, for each migration source a profile names.

``ledger`` is ours (validate_all_flows.embedded.migrate). The others are read here without their
tools: Alembic's versions folder is parsed for ``revision`` / ``down_revision`` (no Alembic import,
no code run), Flyway's ``flyway_schema_history`` is read as a table, and a folder of SQL files
applied by hand (``psql -f``, Blocktrust v1.4's way) is judged by the tables, columns and indexes
its statements create.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SqlObjects", "alembic_heads", "sql_dir_objects"]


def _literal(node: ast.expr | None) -> object:
    try:
        return ast.literal_eval(node) if node is not None else None
    except ValueError:
        return None


def alembic_heads(versions: Path) -> tuple[set[str], int]:
    """(head revisions, number of revision files) of an Alembic versions folder: the revisions
    no other revision names as its ``down_revision``. ValueError names an unreadable file."""
    revisions: dict[str, set[str]] = {}
    for path in sorted(versions.glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        except (OSError, SyntaxError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: cannot read: {exc}") from None
        values: dict[str, object] = {}
        for node in tree.body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for tgt in targets:
                    if isinstance(tgt, ast.Name):
                        values[tgt.id] = _literal(node.value)
        rev = values.get("revision")
        if not isinstance(rev, str):
            continue  # not a revision file (e.g. a helper module)
        down = values.get("down_revision")
        # A string, a tuple of them (a merge revision) or None (the first revision); any other
        # literal names no revision.
        if isinstance(down, str):
            downs = {down}
        elif isinstance(down, tuple | list | set | frozenset):
            downs = {d for d in down if isinstance(d, str)}
        else:
            downs = set()
        revisions[rev] = downs
    named = set().union(*revisions.values()) if revisions else set()
    return {r for r in revisions if r not in named}, len(revisions)


@dataclass
class SqlObjects:
    """Tables, (table, column) pairs and indexes that a folder of SQL files leaves behind."""

    files: list[str] = field(default_factory=list)
    tables: set[str] = field(default_factory=set)
    columns: set[tuple[str, str]] = field(default_factory=set)
    indexes: set[str] = field(default_factory=set)


_NAME = r'(?:"?[A-Za-z_][A-Za-z0-9_$]*"?\.)?"?([A-Za-z_][A-Za-z0-9_$]*)"?'
_CREATE_TABLE = re.compile(
    rf"CREATE\s+(?:UNLOGGED\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?{_NAME}\s*\(", re.I
)
_CREATE_INDEX = re.compile(
    rf"CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?{_NAME}\s+ON",
    re.I,
)
_ALTER = re.compile(rf"ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?{_NAME}\s+(.*)", re.I | re.S)
_ADD_COLUMN = re.compile(rf"ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?{_NAME}", re.I)
_DROP_TABLE = re.compile(rf"DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?{_NAME}", re.I)
_DROP_INDEX = re.compile(rf"DROP\s+INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+EXISTS\s+)?{_NAME}", re.I)
_DROP_COLUMN = re.compile(rf"DROP\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?{_NAME}", re.I)
_CONSTRAINT_WORDS = {"constraint", "primary", "unique", "check", "foreign", "exclude", "like"}


def _strip_comments(sql: str) -> str:
    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.S)
    return re.sub(r"--[^\n]*", " ", sql)


def _statements(sql: str) -> list[str]:
    # Dollar-quoted bodies (functions, DO blocks) create nothing we judge: drop them whole.
    sql = re.sub(r"\$([A-Za-z_]*)\$.*?\$\1\$", " ", _strip_comments(sql), flags=re.S)
    return [s.strip() for s in sql.split(";") if s.strip()]


def _table_columns(body: str) -> list[str]:
    """Column names of a CREATE TABLE body (constraints left out)."""
    depth, part, parts = 0, "", []
    for ch in body:
        if ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                break
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(part)
            part = ""
        else:
            part += ch
    parts.append(part)
    out = []
    for p in parts:
        words = p.split()
        if words and words[0].lower() not in _CONSTRAINT_WORDS:
            out.append(words[0].strip('"'))
    return out


def sql_dir_objects(directory: Path) -> SqlObjects:
    """The objects the ``*.sql`` files of ``directory`` create, applied in file-name order."""
    objs = SqlObjects()
    for path in sorted(directory.glob("*.sql")):
        objs.files.append(path.name)
        for stmt in _statements(path.read_text(encoding="utf-8", errors="replace")):
            if m := _CREATE_TABLE.match(stmt):
                table = m.group(1).lower()
                objs.tables.add(table)
                body = stmt[m.end() :]
                objs.columns.update((table, c.lower()) for c in _table_columns(body))
            elif m := _CREATE_INDEX.match(stmt):
                objs.indexes.add(m.group(1).lower())
            elif m := _DROP_TABLE.match(stmt):
                table = m.group(1).lower()
                objs.tables.discard(table)
                objs.columns = {c for c in objs.columns if c[0] != table}
            elif m := _DROP_INDEX.match(stmt):
                objs.indexes.discard(m.group(1).lower())
            elif m := _ALTER.match(stmt):
                table, rest = m.group(1).lower(), m.group(2)
                for clause in re.split(r",(?![^(]*\))", rest):
                    clause = clause.strip()
                    if (a := _ADD_COLUMN.match(clause)) and a.group(
                        1
                    ).lower() not in _CONSTRAINT_WORDS:
                        objs.columns.add((table, a.group(1).lower()))
                    elif (d := _DROP_COLUMN.match(clause)) and d.group(1).lower() != "constraint":
                        objs.columns.discard((table, d.group(1).lower()))
    return objs
