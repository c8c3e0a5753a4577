"""Connections owned by a thread: the writer, and the sync writer's planner.

Work runs as whole functions on the connection's thread (``await conn.run(fn,
...)``), so a group commit costs a few hand-offs between threads however many
statements it holds.  Pulls and token lookups use aiosqlite; this module is where
transactions run as plain functions instead.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

__all__ = ["PRAGMAS", "ThreadConnection", "WriteLock", "connect"]

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
        # Checkpoints run in the background (``SqliteStore._checkpoint_loop``); a commit
        # checkpoints only past ~200 MB of log. Under a steady push the log cannot be
        # reset while readers hold snapshots, so at ~40 MB (10,000 pages) nearly every
        # commit of the writer ran a checkpoint itself: at 100,000 realistic records,
        # ~15 µs a record of COMMIT and ~8 KB a record written (issue 16, bench/README).
        "PRAGMA wal_autocheckpoint = 50000",
        "PRAGMA journal_size_limit = 268435456",  # the log file, once reset, is cut back to 256 MiB
    )


def connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row  # rows read by column name (``stores/_rows.py``), or unpacked
    for pragma in PRAGMAS(busy_timeout_ms):
        conn.execute(pragma)
    return conn


class WriteLock:
    """``flock`` on ``<store>-writelock``, held by a writer for a whole write transaction:
    the server's writer thread and its writer process (``_process.py``) queue on it.

    SQLite's own write lock is waited for by polling (sleeps of 1 to 100 ms between
    tries), so a process that commits back to back, as the writer process does under
    load, would keep a poller out for as long as it had work; a photo's upload or an
    admin's write would wait up to the busy timeout and fail.  A process blocked in
    ``flock`` gets the lock the moment it is let go.  Other programs (the CLI, a backup)
    do not take it and poll as before.
    """

    def __init__(self, path: Path) -> None:
        self._fd = os.open(f"{path}-writelock", os.O_RDWR | os.O_CREAT, 0o600)

    def acquire(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def close(self) -> None:
        os.close(self._fd)


class ThreadConnection:
    """One sqlite3 connection and the one thread that uses it; with a ``WriteLock``, each
    of its transactions holds that lock from the call that begins it to the call that
    ends it."""

    def __init__(self, path: Path, busy_timeout_ms: int, name: str, *, lock: bool = False) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._name = name
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._wants_lock = lock
        self._lock: WriteLock | None = None  # (made on open: the folder is checked first)
        self._holding = False

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"patrol-sqlite-{self._name}")
        if self._wants_lock:
            self._lock = WriteLock(self._path)
        self._conn = await self._call(connect, self._path, self._busy_timeout_ms)

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._call(conn.close)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._lock is not None:
            self._lock.close()
            self._lock, self._holding = None, False

    async def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._executor is None:
            raise sqlite3.ProgrammingError("the store is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    async def run(self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(connection, *args)`` on the connection's thread."""
        conn = self._conn
        if conn is None:
            raise sqlite3.ProgrammingError("the store is closed")
        lock = self._lock
        if lock is None:
            return await self._call(lambda: fn(conn, *args, **kwargs))

        def locked() -> T:
            if not self._holding:
                lock.acquire()
                self._holding = True
            try:
                return fn(conn, *args, **kwargs)
            finally:
                if not conn.in_transaction:
                    self._holding = False
                    lock.release()

        return await self._call(locked)
