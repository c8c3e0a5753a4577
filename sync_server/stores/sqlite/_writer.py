"""Connections owned by a thread: the writer, and the sync writer's planner.

Work runs as whole functions on the connection's thread (``await conn.run(fn,
...)``), so a group commit costs a few hand-offs between threads however many
statements it holds.  Pulls and token lookups use aiosqlite; this module is where
transactions run as plain functions instead.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

__all__ = ["PRAGMAS", "ThreadConnection", "connect"]

T = TypeVar("T")
P = ParamSpec("P")


def PRAGMAS(busy_timeout_ms: int) -> tuple[str, ...]:
    return (
        f"PRAGMA busy_timeout = {busy_timeout_ms}",
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = FULL",  # an answered push is on disk, not only in the OS cache
        "PRAGMA foreign_keys = ON",
        "PRAGMA temp_store = MEMORY",
        "PRAGMA cache_size = -65536",
        # checkpoints run in the background; a commit checkpoints only past ~40 MB of log
        "PRAGMA wal_autocheckpoint = 10000",
        "PRAGMA journal_size_limit = 67108864",
    )


def connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row  # rows read by column name (``stores/_rows.py``), or unpacked
    for pragma in PRAGMAS(busy_timeout_ms):
        conn.execute(pragma)
    return conn


class ThreadConnection:
    """One sqlite3 connection and the one thread that uses it."""

    def __init__(self, path: Path, busy_timeout_ms: int, name: str) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._name = name
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"patrol-sqlite-{self._name}")
        self._conn = await self._call(connect, self._path, self._busy_timeout_ms)

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._call(conn.close)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._executor is None:
            raise sqlite3.ProgrammingError("the store is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    async def run(self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(connection, *args)`` on the connection's thread."""
        conn = self._conn
        if conn is None:
            raise sqlite3.ProgrammingError("the store is closed")
        return await self._call(lambda: fn(conn, *args, **kwargs))
