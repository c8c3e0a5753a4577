"""Numbered migrations (``migrations/NNNN_*.sql``), applied at start-up.

A migration may have a Python step too (``_STEPS``), run in the same transaction
after its SQL: for what SQL alone cannot compute, such as projections that need a
ward's time zone."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from importlib import resources

from ..errors import SchemaTooNew
from . import _blobs, _projections

__all__ = ["latest", "migrate", "pending"]


def _set_epoch(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO meta (key, value) VALUES ('epoch', lower(hex(randomblob(8))))")


_STEPS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _set_epoch,
    2: _projections.rebuild,
    # migration 3 made the blob references, empty; they are derived at 9, once they
    # have every column the code writes (records written before blobs were served, or
    # keyed by text id)
    9: _blobs.rebuild,
}


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files(__package__).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(found)


def _statements(script: str) -> list[str]:
    """Split a script into statements (triggers included) the way SQLite reads them."""
    out, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                out.append(buffer.strip())
            buffer = ""
    return out


def latest() -> int:
    """The highest migration this version of the code knows."""
    return max(version for version, _ in _migrations())


def pending(conn: sqlite3.Connection, where: str) -> list[int]:
    """The migrations this file lacks; :class:`SchemaTooNew` if a newer version wrote it."""
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current > latest():
        raise SchemaTooNew(where, current, latest())
    return [version for version, _ in _migrations() if version > current]


def migrate(conn: sqlite3.Connection, where: str = "the store") -> None:
    """Apply the migrations this file lacks, each in one transaction.

    The write lock is taken before the version is read, so several workers
    starting at once migrate exactly once. A store a newer version has migrated
    is refused before anything is written: this code does not know its tables."""
    pending(conn, where)
    for version, script in _migrations():
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] >= version:
                conn.execute("ROLLBACK")
                continue
            for statement in _statements(script):
                conn.execute(statement)
            step = _STEPS.get(version)
            if step is not None:
                step(conn)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
