"""The store's long-lived SQL, kept as resources in store/sql/*.sql rather than in Python strings.

A file holds named statements, each introduced by a `-- name: <statement>` line. Table names are
written `{table}` and qualified with the CDM schema of the database they run on. Values are `?`
parameters, except lists of known length only at run time (`IN {runs}`), which are given as
literal lists of ints or of texts (quoted here), and the relations of Database.temp_relation
(`JOIN {files} f`), given by the name it yields.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from importlib import resources

from ctcl_map.store.database import Database

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_TABLE = re.compile(r"\{(\w+)\}")


@cache
def _statements(file: str) -> dict[str, str]:
    text = resources.files("ctcl_map.store").joinpath("sql", f"{file}.sql").read_text(encoding="utf-8")
    parts = _NAME.split(text)[1:]  # [name, body, name, body, ...]; what precedes the first name is a comment
    return {name: _without_comments(body) for name, body in zip(parts[::2], parts[1::2])}


def _without_comments(body: str) -> str:
    lines = (line for line in body.splitlines() if not line.lstrip().startswith("--"))
    return " ".join(" ".join(lines).split())


def statement(db: Database, file: str, name: str, **parts: str | Iterable[int | str]) -> str:
    """Statement `name` of store/sql/`file`.sql, its tables qualified for `db`; each `{part}` is
    the relation (a str) or the literal list (any other iterable) given for it."""
    literals = {key: value if isinstance(value, str) else _literal_list(value) for key, value in parts.items()}
    return _TABLE.sub(lambda match: literals.get(match.group(1)) or db.table(match.group(1)), _statements(file)[name])


def int_list(values: Iterable[int]) -> str:
    """A SQL IN-list of integers (ints only, so no injection), sorted, once each; '(NULL)' when empty."""
    items = sorted({int(v) for v in values})
    return "(" + ", ".join(str(v) for v in items) + ")" if items else "(NULL)"


def _literal_list(values: Iterable[int | str]) -> str:
    """`(1, 2)` or `('a', 'b')`; `(NULL)` when empty (matches nothing)."""
    items = [str(int(v)) if isinstance(v, int) else "'" + str(v).replace("'", "''") + "'" for v in values]
    return "(" + ", ".join(items) + ")" if items else "(NULL)"
