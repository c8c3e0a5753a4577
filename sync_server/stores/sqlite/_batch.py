"""Many rows in few statements, for the writer thread.

``executemany`` steps its statement once a row, and Python's sqlite3 module lets go of
the GIL around each step and takes it back after: a group commit of 100 records made
about a thousand such round trips, and each waited for whatever long C call the event
loop was in (decoding a body, compressing an answer).  Measured (issue 16): a save of
100 records took 42 ms of wall time for 11 ms of CPU.  Here a statement carries up to
``PARAMS`` parameters, so a group makes a few round trips a table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

__all__ = ["PARAMS", "insert", "where_in"]

#: parameters a statement: SQLite's lowest ``SQLITE_MAX_VARIABLE_NUMBER`` (before 3.32)
PARAMS = 999


def insert(conn: sqlite3.Connection, head: str, rows: Sequence[Sequence[Any]], tail: str = "", *, row: str | None = None) -> None:
    """``{head} VALUES (...), (...) {tail}``, as many rows a statement as fit.

    ``row`` is one row's template (default: one ``?`` a value); its ``?`` must match
    each row's length.
    """
    if not rows:
        return
    template = row or f"({', '.join('?' * len(rows[0]))})"
    per = max(1, PARAMS // len(rows[0]))
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        conn.execute(f"{head} VALUES {', '.join([template] * len(chunk))}{tail}", [value for r in chunk for value in r])


def where_in(conn: sqlite3.Connection, sql: str, first: Sequence[Any], values: Sequence[Any]) -> None:
    """``sql`` with its ``{marks}`` filled with ``?`` for a chunk of ``values`` (after
    the ``first`` parameters), run once a chunk: a statement that returns no rows."""
    per = PARAMS - len(first)
    for start in range(0, len(values), per):
        chunk = values[start : start + per]
        conn.execute(sql.format(marks=", ".join("?" * len(chunk))), [*first, *chunk])
