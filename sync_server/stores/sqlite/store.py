"""The embedded store: one SQLite file in WAL mode, through aiosqlite.

One writer connection (writes are serialised by SQLite anyway; an asyncio lock
keeps this process's transactions from interleaving on it) and a few reader
connections, which WAL lets read while the writer commits.  ``synchronous=FULL``:
an answered push is on disk, not only in the OS cache.

Pull cursors never skip a change: a write transaction takes SQLite's write lock
(``BEGIN IMMEDIATE``) before it reserves sequence numbers, so commits happen in
sequence order, across every process that opens the file.  A reader that has
seen sequence ``n`` has seen everything committed before it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import itertools
import sqlite3
from collections.abc import AsyncIterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from schemas import Device, DeviceToken, Team, User, Ward

from ...engine.state import RecordState, decode_state
from ...principal import Principal
from ..base import ConflictRow, EditRow, Key, Page, RecordRow, Store, StoredChangeset, WriteTx
from ..errors import AlreadyExists, CursorExpired, CursorInvalid, NotFound, StoreUnavailable, UnknownReference

__all__ = ["SqliteStore", "path_from_url"]

_CHUNK = 400  # ids per IN (...) list


def path_from_url(url: str) -> Path:
    """``sqlite:///x.db`` is relative to the working directory, ``sqlite:////x.db`` absolute."""
    if not url.startswith("sqlite://"):
        raise ValueError(f"not a sqlite URL: {url}")
    rest = url[len("sqlite://") :]
    if not rest.startswith("/") or rest == "/":
        raise ValueError(f"a sqlite URL names a file: sqlite:///relative.db or sqlite:////absolute.db, not {url}")
    return Path(rest[1:])


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
    if buffer.strip() and not buffer.strip().startswith("--"):
        out.append(buffer.strip())
    return out


class _Tx(WriteTx):
    def __init__(self, conn: aiosqlite.Connection, store: SqliteStore) -> None:
        self._conn = conn
        self._store = store

    async def changeset(self, device_id: str, changeset_id: str) -> StoredChangeset | None:
        async with self._conn.execute(
            "SELECT body_hash, response FROM changesets WHERE device_id = ? AND changeset_id = ?",
            (device_id, changeset_id),
        ) as cur:
            row = await cur.fetchone()
        return StoredChangeset(bytes(row[0]), bytes(row[1])) if row else None

    async def records(self, keys: Sequence[Key]) -> dict[Key, RecordState]:
        by_collection: dict[str, list[str]] = {}
        for collection, record_id in keys:
            by_collection.setdefault(collection, []).append(record_id)
        found: dict[Key, RecordState] = {}
        for collection, ids in by_collection.items():
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                sql = f"SELECT doc, crdt FROM records WHERE collection = ? AND id IN ({','.join('?' * len(chunk))})"
                for doc, crdt in await self._conn.execute_fetchall(sql, (collection, *chunk)):
                    state = decode_state(doc, crdt)
                    found[(state.collection, state.id)] = state
        return found

    async def next_seqs(self, count: int) -> int:
        async with self._conn.execute("SELECT coalesce(max(seq), 0) FROM records") as cur:
            row = await cur.fetchone()
        assert row is not None
        return int(row[0]) + 1

    async def save(self, records: Sequence[RecordRow], edits: Sequence[EditRow], conflicts: Sequence[ConflictRow]) -> list[int]:
        if records:
            await self._conn.executemany(
                "INSERT INTO records (seq, collection, id, ward_id, deleted, doc, crdt) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (collection, id) DO UPDATE SET seq = excluded.seq, ward_id = excluded.ward_id, "
                "deleted = excluded.deleted, doc = excluded.doc, crdt = excluded.crdt",
                [
                    (r.state.seq, r.state.collection, r.state.id, r.state.ward_id, int(r.state.deleted), r.doc, r.crdt)
                    for r in records
                ],
            )
        if edits:
            await self._conn.executemany(
                "INSERT INTO edits (collection, record_id, ward_id, seq, at, user_id, device_id, changeset_id, diff) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (e.collection, e.record_id, e.ward_id, e.seq, e.at, e.user_id, e.device_id, e.changeset_id, e.diff)
                    for e in edits
                ],
            )
        if not conflicts:
            return []
        async with self._conn.execute("SELECT coalesce(max(id), 0) FROM conflicts") as cur:
            row = await cur.fetchone()
        assert row is not None
        first = int(row[0]) + 1
        ids = list(range(first, first + len(conflicts)))
        await self._conn.executemany(
            "INSERT INTO conflicts (id, collection, record_id, ward_id, field, kind, winner, server, client, "
            "device_id, user_id, changeset_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (i, c.collection, c.record_id, c.ward_id, c.field, c.kind, c.winner, c.server, c.client,
                 c.device_id, c.user_id, c.changeset_id, c.created_at)
                for i, c in zip(ids, conflicts)
            ],
        )
        return ids

    async def remember(self, device_id: str, changeset_id: str, body_hash: bytes, response: bytes) -> None:
        await self._conn.execute(
            "INSERT INTO changesets (device_id, changeset_id, body_hash, response, created_at) VALUES (?, ?, ?, ?, ?)",
            (device_id, changeset_id, body_hash, response, _now()),
        )

    async def cursor(self) -> str:
        async with self._conn.execute("SELECT coalesce(max(seq), 0) FROM records") as cur:
            row = await cur.fetchone()
        assert row is not None
        return self._store.encode_cursor(int(row[0]))


class SqliteStore(Store):
    def __init__(self, url: str, *, readers: int = 3, busy_timeout_ms: int = 30_000) -> None:
        self.url = url
        self.path = path_from_url(url)
        self._reader_count = readers
        self._busy_timeout_ms = busy_timeout_ms
        self._writer: aiosqlite.Connection | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._next_reader = itertools.count()
        self._lock = asyncio.Lock()
        self.epoch = ""

    # -- lifecycle ------------------------------------------------------------

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        for pragma in (
            f"PRAGMA busy_timeout = {self._busy_timeout_ms}",
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = FULL",
            "PRAGMA foreign_keys = ON",
            "PRAGMA temp_store = MEMORY",
            "PRAGMA cache_size = -65536",
        ):
            await conn.execute(pragma)
        return conn

    async def open(self) -> None:
        if self.path.parent != Path(""):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._writer = await self._connect()
            await self._migrate(self._writer)
            self._readers = [await self._connect() for _ in range(self._reader_count)]
        except sqlite3.Error as exc:
            await self.close()
            raise StoreUnavailable(f"cannot open {self.path}: {exc}") from exc
        async with self._writer.execute("SELECT value FROM meta WHERE key = 'epoch'") as cur:
            row = await cur.fetchone()
        assert row is not None
        self.epoch = str(row[0])

    async def _migrate(self, conn: aiosqlite.Connection) -> None:
        """Apply the numbered migrations this file lacks, each in one transaction.

        The write lock is taken before the version is read, so several workers
        starting at once migrate exactly once."""
        for version, script in _migrations():
            await conn.execute("BEGIN IMMEDIATE")
            try:
                async with conn.execute("PRAGMA user_version") as cur:
                    row = await cur.fetchone()
                if row is not None and row[0] >= version:
                    await conn.execute("ROLLBACK")
                    continue
                for statement in _statements(script):
                    await conn.execute(statement)
                if version == 1:
                    await conn.execute("INSERT INTO meta (key, value) VALUES ('epoch', lower(hex(randomblob(8))))")
                await conn.execute(f"PRAGMA user_version = {version}")
                await conn.execute("COMMIT")
            except BaseException:
                await conn.execute("ROLLBACK")
                raise

    async def close(self) -> None:
        for conn in [self._writer, *self._readers]:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
        self._writer, self._readers = None, []

    async def ping(self) -> bool:
        try:
            async with self._reader().execute("SELECT 1") as cur:
                return await cur.fetchone() is not None
        except (sqlite3.Error, ValueError):
            return False

    def _reader(self) -> aiosqlite.Connection:
        if not self._readers:
            raise StoreUnavailable("the store is closed")
        return self._readers[next(self._next_reader) % len(self._readers)]

    @property
    def _w(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise StoreUnavailable("the store is closed")
        return self._writer

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            conn = self._w
            try:
                await conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:  # locked by another process past busy_timeout
                raise StoreUnavailable(f"the store is busy: {exc}") from exc
            try:
                yield conn
            except BaseException:
                await asyncio.shield(conn.execute("ROLLBACK"))
                raise
            else:
                await asyncio.shield(conn.execute("COMMIT"))

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[WriteTx]:
        async with self._transaction() as conn:
            yield _Tx(conn, self)

    # -- pull -----------------------------------------------------------------

    def encode_cursor(self, seq: int) -> str:
        return base64.urlsafe_b64encode(f"{self.epoch}:{seq}".encode()).decode().rstrip("=")

    def _decode_cursor(self, cursor: str) -> int:
        try:
            text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            epoch, seq = text.split(":")
            value = int(seq)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise CursorInvalid(f"unreadable cursor {cursor[:40]!r}") from None
        if value < 0:
            raise CursorInvalid(f"unreadable cursor {cursor[:40]!r}")
        if epoch != self.epoch:
            raise CursorExpired("the cursor is from another epoch of this store; pull again from the start")
        return value

    async def pull(
        self, wards: frozenset[str] | None, cursor: str | None, limit: int, collections: frozenset[str] | None
    ) -> Page:
        after = self._decode_cursor(cursor) if cursor else 0
        conn = self._reader()
        async with conn.execute("SELECT coalesce(max(seq), 0) FROM records") as cur:
            row = await cur.fetchone()
        head = int(row[0]) if row else 0
        if after > head:
            raise CursorExpired("the cursor is ahead of this store (restored from a backup?); pull again from the start")
        if wards is not None and not wards:
            return Page([], self.encode_cursor(after), False)
        where_collection, collection_args = "", ()
        if collections is not None:
            where_collection = f" AND collection IN ({','.join('?' * len(collections))})"
            collection_args = tuple(sorted(collections))
        args: list[Any]
        if wards is None:
            sql = f"SELECT seq, doc FROM records WHERE seq > ?{where_collection} ORDER BY seq LIMIT ?"
            args = [after, *collection_args, limit + 1]
        else:
            # one index range per ward, merged: never scans another ward's rows
            part = f"SELECT * FROM (SELECT seq, doc FROM records WHERE ward_id = ? AND seq > ?{where_collection} ORDER BY seq LIMIT ?)"
            sql = " UNION ALL ".join([part] * len(wards)) + " ORDER BY seq LIMIT ?"
            args = []
            for ward in sorted(wards):
                args += [ward, after, *collection_args, limit + 1]
            args.append(limit + 1)
        rows = await conn.execute_fetchall(sql, args)
        more = len(rows) > limit
        rows = list(rows)[:limit]
        last = rows[-1][0] if rows else after
        return Page([bytes(r[1]) for r in rows], self.encode_cursor(last), more)

    # -- identity -------------------------------------------------------------

    async def principal(self, token_hash: str) -> Principal | None:
        sql = """
            SELECT d.device_id, u.id, u.role,
                   CASE WHEN u.role = 'admin' THEN (SELECT group_concat(id) FROM wards)
                   ELSE (SELECT group_concat(w) FROM (
                            SELECT t.ward_id AS w FROM user_teams ut JOIN teams t ON t.id = ut.team_id
                             WHERE ut.user_id = u.id
                            UNION SELECT ward_id FROM user_wards WHERE user_id = u.id)) END
              FROM devices d JOIN users u ON u.id = d.user_id
             WHERE d.token_hash = ? AND d.revoked_at IS NULL"""
        async with self._reader().execute(sql, (token_hash,)) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        wards = frozenset(row[3].split(",")) if row[3] else frozenset()
        return Principal(user_id=row[1], device_id=row[0], role=row[2], wards=wards)

    async def _exists(self, conn: aiosqlite.Connection, table: str, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        sql = f"SELECT id FROM {table} WHERE id IN ({','.join('?' * len(ids))})"
        return {row[0] for row in await conn.execute_fetchall(sql, tuple(ids))}

    async def _require(self, conn: aiosqlite.Connection, table: str, ids: Sequence[str], what: str) -> None:
        missing = sorted(set(ids) - await self._exists(conn, table, ids))
        if missing:
            raise UnknownReference(f"no {what} {', '.join(missing)}")

    async def create(self, entity: Ward | Team | User | DeviceToken, token_hash: str | None = None) -> None:
        now = _now()
        async with self._transaction() as conn:
            try:
                match entity:
                    case Ward():
                        await conn.execute(
                            "INSERT INTO wards (id, name, timezone, created_at) VALUES (?, ?, ?, ?)",
                            (entity.id, entity.name, entity.timezone, now),
                        )
                    case Team():
                        await self._require(conn, "wards", [entity.ward_id], "ward")
                        await conn.execute(
                            "INSERT INTO teams (id, ward_id, name, created_at) VALUES (?, ?, ?, ?)",
                            (entity.id, entity.ward_id, entity.name, now),
                        )
                    case User():
                        await self._require(conn, "teams", entity.team_ids, "team")
                        await self._require(conn, "wards", entity.ward_ids, "ward")
                        await conn.execute(
                            "INSERT INTO users (id, name, role, created_at) VALUES (?, ?, ?, ?)",
                            (entity.id, entity.name, entity.role, now),
                        )
                        await conn.executemany(
                            "INSERT INTO user_teams (user_id, team_id) VALUES (?, ?)",
                            [(entity.id, t) for t in sorted(set(entity.team_ids))],
                        )
                        await conn.executemany(
                            "INSERT INTO user_wards (user_id, ward_id) VALUES (?, ?)",
                            [(entity.id, w) for w in sorted(set(entity.ward_ids))],
                        )
                    case DeviceToken():
                        assert token_hash is not None
                        await self._require(conn, "users", [entity.user_id], "user")
                        await conn.execute(
                            "INSERT INTO devices (device_id, user_id, token_hash, created_at) VALUES (?, ?, ?, ?)",
                            (entity.device_id, entity.user_id, token_hash, now),
                        )
            except sqlite3.IntegrityError as exc:
                raise AlreadyExists(f"{type(entity).__name__.lower()} exists already") from exc

    async def entities(self, kind: type[Ward] | type[Team] | type[User] | type[Device]) -> Sequence[Ward | Team | User | Device]:
        conn = self._reader()
        if kind is Ward:
            rows = await conn.execute_fetchall("SELECT id, name, timezone FROM wards ORDER BY id")
            return [Ward(id=r[0], name=r[1], timezone=r[2]) for r in rows]
        if kind is Team:
            rows = await conn.execute_fetchall("SELECT id, ward_id, name FROM teams ORDER BY id")
            return [Team(id=r[0], ward_id=r[1], name=r[2]) for r in rows]
        if kind is User:
            rows = await conn.execute_fetchall(
                "SELECT u.id, u.name, u.role, "
                "(SELECT group_concat(team_id) FROM (SELECT team_id FROM user_teams WHERE user_id = u.id ORDER BY team_id)), "
                "(SELECT group_concat(ward_id) FROM (SELECT ward_id FROM user_wards WHERE user_id = u.id ORDER BY ward_id)) "
                "FROM users u ORDER BY u.id"
            )
            return [
                User(id=r[0], name=r[1], role=r[2], team_ids=r[3].split(",") if r[3] else [], ward_ids=r[4].split(",") if r[4] else [])
                for r in rows
            ]
        rows = await conn.execute_fetchall("SELECT device_id, user_id, created_at, revoked_at FROM devices ORDER BY device_id")
        return [Device(device_id=r[0], user_id=r[1], created_at=r[2], revoked_at=r[3]) for r in rows]

    async def revoke_device(self, device_id: str) -> None:
        async with self._transaction() as conn:
            async with conn.execute("SELECT revoked_at FROM devices WHERE device_id = ?", (device_id,)) as cur:
                row = await cur.fetchone()
            if row is None:
                raise NotFound(f"no device {device_id}")
            if row[0] is None:
                await conn.execute("UPDATE devices SET revoked_at = ? WHERE device_id = ?", (_now(), device_id))
