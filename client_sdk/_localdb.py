"""The device's SQLite file: its tables, its transactions, its small state.

One aiosqlite connection per client, in WAL mode with ``synchronous=FULL``: an edit
is on disk when the call that made it returns, so neither an app crash nor a
battery pulled out loses it. Every access goes through :meth:`LocalDB.transaction`,
which serialises the client's coroutines on the one connection; a ``batch()`` holds
one transaction across many edits (one fsync for all of them).

Tables::

    meta         key -> value: device, user, HLC state, pull cursor
    records      the records as last pulled (fields, stamps, seq, deleted), plus
                 ``view``: the fields with pending edits applied (NULL when none)
    outbox       pending edits, one open row per record holding them coalesced (a field
                 edited twice is one change); a row frozen into a change set never changes
    changesets   change sets frozen for sending: exact body and stable id, written
                 before the first attempt so that a retry resends the same bytes
    dead_letters changes the server rejected, with its reasons
    conflicts    conflicts the server reported for this device's changes
    blobs        attachments: kept until uploaded (uploaded = 0), or fetched from the server (1)
    restored     what the device held when the server answered 410 (restored from a backup),
                 until compared with the restored server's state (``_restore.py``)
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import aiosqlite

__all__ = ["LocalDB", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    collection   TEXT NOT NULL,
    id           TEXT NOT NULL,
    ward_id      TEXT NOT NULL,
    seq          INTEGER NOT NULL DEFAULT 0,   -- 0: never pulled (created here, not yet synced)
    deleted      INTEGER NOT NULL DEFAULT 0,
    fields       BLOB,                         -- JSON as last pulled (bytes as received); NULL: never pulled
    stamps       BLOB,                         -- JSON field -> stamp as last pulled, or one stamp for all
    view         BLOB,                         -- JSON fields with pending edits applied
    view_deleted INTEGER,
    PRIMARY KEY (collection, id)
);
CREATE TABLE IF NOT EXISTS outbox (
    n            INTEGER PRIMARY KEY,          -- push order
    collection   TEXT NOT NULL,
    id           TEXT NOT NULL,
    change       BLOB NOT NULL,                -- the record's pending edits, coalesced (JSON)
    top          TEXT NOT NULL,                -- their highest stamp
    changeset_id TEXT                          -- frozen into this change set; NULL: open to more edits
);
CREATE INDEX IF NOT EXISTS outbox_by_record ON outbox (collection, id);
CREATE TABLE IF NOT EXISTS changesets (
    n            INTEGER PRIMARY KEY,
    changeset_id TEXT NOT NULL UNIQUE,
    body         BLOB NOT NULL,
    rows         BLOB NOT NULL,                -- JSON list of the outbox rows it carries
    created_at   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    n            INTEGER PRIMARY KEY,
    collection   TEXT NOT NULL,
    record_id    TEXT NOT NULL,
    change       TEXT NOT NULL,
    errors       TEXT NOT NULL,
    changeset_id TEXT NOT NULL,
    rejected_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS conflicts (
    id           TEXT PRIMARY KEY,
    collection   TEXT NOT NULL,
    record_id    TEXT NOT NULL,
    body         TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS blobs (
    id           TEXT PRIMARY KEY,             -- sha256:<hex>
    data         BLOB NOT NULL,
    uploaded     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS restored (
    collection   TEXT NOT NULL,
    id           TEXT NOT NULL,
    deleted      INTEGER NOT NULL,
    fields       BLOB NOT NULL,                -- as in records: as last pulled before the 410
    stamps       BLOB NOT NULL,
    PRIMARY KEY (collection, id)
);
"""

#: the batch whose transaction is open, as seen by the code running inside it
_current_batch: contextvars.ContextVar[object | None] = contextvars.ContextVar("patrol_sync_batch", default=None)


class LocalDB:
    """The connection, its lock, and the key-value ``meta`` table."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._batch: object | None = None
        self._durable = True  # the connection's synchronous setting: FULL (True) or NORMAL

    async def open(self) -> None:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = FULL")
            await conn.execute("PRAGMA cache_size = -16000")  # 16 MB: a pull into a large store stays in memory
            await conn.executescript(_SCHEMA)
            version = await _one(conn, "SELECT value FROM meta WHERE key = 'schema'")
            if version is None:
                await conn.execute("INSERT INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif int(version) > SCHEMA_VERSION:
                raise RuntimeError(f"{self.path} was written by a newer SDK (store schema {version})")
        except BaseException:
            await conn.close()
            raise
        self._conn = conn

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("the client is not open: use `async with` or call open() first")
        return self._conn

    # -- transactions ------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def transaction(self, durable: bool = True) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction (or, inside a batch, a part of the batch's).

        ``durable=False`` skips the fsync at commit, for what can be had again if a
        power cut loses it: pulled pages (with their cursor) and applied answers (the
        change set stays in flight and its resend gets the same answer). Such a
        transaction is still atomic, and WAL keeps commits in order, so a power cut
        loses at most a suffix of them, never an edit committed after."""
        if self._batch is not None and _current_batch.get() is self._batch:
            yield self.conn
            return
        async with self._lock:
            conn = self.conn
            if durable != self._durable:  # switched only when it changes: a pull's pages run unswitched
                await conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
                self._durable = durable
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")

    async def begin_batch(self) -> object:
        """Open a transaction held across calls; returns its token (see :meth:`bind`)."""
        if self._batch is not None and _current_batch.get() is self._batch:
            raise RuntimeError("batches do not nest")
        await self._lock.acquire()
        try:
            if not self._durable:
                await self.conn.execute("PRAGMA synchronous = FULL")
                self._durable = True
            await self.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise
        self._batch = token = object()
        return token

    @staticmethod
    def bind(token: object | None) -> contextvars.Token[object | None]:
        """Mark the running context as inside batch ``token`` (or outside, with None)."""
        return _current_batch.set(token)

    @staticmethod
    def unbind(marker: contextvars.Token[object | None]) -> None:
        _current_batch.reset(marker)

    def in_batch(self) -> bool:
        return self._batch is not None and _current_batch.get() is self._batch

    async def end_batch(self, token: object, commit: bool) -> None:
        if token is not self._batch:
            raise RuntimeError("not the open batch")
        try:
            await self.conn.execute("COMMIT" if commit else "ROLLBACK")
        finally:
            self._batch = None
            self._lock.release()

    # -- meta ------------------------------------------------------------------------

    async def get_meta(self, conn: aiosqlite.Connection, key: str) -> str | None:
        value = await _one(conn, "SELECT value FROM meta WHERE key = ?", (key,))
        return None if value is None else str(value)

    async def set_meta(self, conn: aiosqlite.Connection, items: dict[str, str | None]) -> None:
        gone = [(k,) for k, v in items.items() if v is None]
        kept = [(k, v) for k, v in items.items() if v is not None]
        if kept:
            await conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", kept
            )
        if gone:
            await conn.executemany("DELETE FROM meta WHERE key = ?", gone)


async def _one(conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    rows = await conn.execute_fetchall(sql, params)
    return next(iter(rows), (None,))[0]


# One round trip to the connection's thread each (a cursor opened, read and closed
# one call at a time would cost three, each waiting for the GIL when busy).


async def fetch_all(conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    return list(await conn.execute_fetchall(sql, params))


async def fetch_one(conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    return next(iter(await conn.execute_fetchall(sql, params)), None)


async def scalar(conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    return await _one(conn, sql, params)


def chunks(items: Sequence[Any], size: int = 900) -> Iterable[Sequence[Any]]:
    """Slices small enough for one ``IN (...)`` list of bound parameters."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def by_collection(keys: Iterable[tuple[str, str]]) -> Iterable[tuple[str, Sequence[str], str]]:
    """(collection, ids, "?,?,...") slices, for ``collection = ? AND id IN (...)``: the
    one form of a key lookup SQLite answers from the primary-key index (a row-value
    ``IN (VALUES ...)`` scans the table)."""
    grouped: dict[str, list[str]] = {}
    for collection, record_id in keys:
        grouped.setdefault(collection, []).append(record_id)
    for collection, ids in grouped.items():
        for part in chunks(list(dict.fromkeys(ids))):
            yield collection, part, ",".join("?" * len(part))
