"""The embedded store: one SQLite file in WAL mode.

Connections: one writer (a plain sqlite3 connection on a thread of its own, so
that a whole group commit runs as one function there), one planner (reads for
the sync writer's optimistic merges, apart from pulls) and a few aiosqlite
readers for pulls and token lookups, which WAL lets read while the writer
commits.  ``synchronous=FULL``: an answered push is on disk, not only in the OS
cache.  WAL checkpoints run in the background on a connection of their own, so a
commit never waits for one.

Pull cursors never skip a change: a write transaction takes SQLite's write lock
(``BEGIN IMMEDIATE``) before it numbers new versions, so commits happen in
sequence order, across every process that opens the file.  A reader that has
seen sequence ``n`` has seen everything committed before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import aiosqlite

from schemas import (
    CheckRow,
    Conflict,
    Device,
    DeviceHealth,
    DeviceToken,
    GroupBy,
    PremisesHit,
    RecordHistory,
    SummaryReport,
    Team,
    TeamUpdate,
    User,
    UserUpdate,
    Ward,
)
from schemas.stamps import utc_now

from ...engine.state import RecordState
from ...principal import Principal
from .._paging import PageRow, Paging
from .._rows import ENTITY_QUERIES, entity_from_row, principal_from_row
from ..base import (
    BlobAccess,
    ConflictRow,
    ConsoleSession,
    EditRow,
    EnrolmentRow,
    Heads,
    HealthUpdate,
    Key,
    ListedRow,
    ListQuery,
    OneHopWrites,
    PlannedWrite,
    ReadTx,
    RecordRow,
    ResolvedConflict,
    Store,
    StoredChangeset,
    TargetRow,
    WriteTx,
)
from ..errors import StoreError, StoreUnavailable
from ..schema import SchemaStatus
from . import _blobs, _console, _identity, _migrate, _sql, _supervision
from ._process import WriterProcess
from ._writer import PRAGMAS, ThreadConnection

__all__ = ["SqliteStore", "path_from_url", "schema_status"]

log = logging.getLogger("patrol_sync.store")

T = TypeVar("T")
P = ParamSpec("P")


def path_from_url(url: str) -> Path:
    """``sqlite:///x.db`` is relative to the working directory, ``sqlite:////x.db`` absolute."""
    if not url.startswith("sqlite://"):
        raise ValueError(f"not a sqlite URL: {url}")
    rest = url[len("sqlite://") :]
    if not rest.startswith("/") or rest == "/":
        raise ValueError(f"a sqlite URL names a file: sqlite:///relative.db or sqlite:////absolute.db, not {url}")
    return Path(rest[1:])


def schema_status(url: str) -> SchemaStatus:
    """Where an existing store stands against this version's migrations (changes nothing)."""
    path = path_from_url(url)
    if not path.is_file():
        raise StoreUnavailable(f"no store at {path}")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            todo = _migrate.pending(conn, str(path))
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"cannot read {path}: {exc}") from exc
    return SchemaStatus(version=version, latest=_migrate.latest(), pending=len(todo))


def _now() -> str:
    return utc_now()


def _page_query(
    wards: frozenset[str] | None, after: int, fetch: int, collections: frozenset[str] | None, crdt: bool = False
) -> tuple[str, list[Any]]:
    """Up to ``fetch`` records after ``after``, in seq order; with ``crdt``, each
    row's merge state too (for a pull's ``skip``)."""
    columns = "seq, doc, crdt" if crdt else "seq, doc"
    where_collection = ""
    collection_args: list[str] = []
    if collections is not None:
        where_collection = f" AND collection IN ({','.join('?' * len(collections))})"
        collection_args = sorted(collections)
    if wards is None:
        return f"SELECT {columns} FROM records WHERE seq > ?{where_collection} ORDER BY seq LIMIT ?", [after, *collection_args, fetch]
    if len(wards) == 1:
        sql = f"SELECT {columns} FROM records WHERE ward_id = ? AND seq > ?{where_collection} ORDER BY seq LIMIT ?"
        return sql, [next(iter(wards)), after, *collection_args, fetch]
    # one index range per ward, merged: never scans another ward's rows
    part = f"SELECT * FROM (SELECT {columns} FROM records WHERE ward_id = ? AND seq > ?{where_collection} ORDER BY seq LIMIT ?)"
    args: list[Any] = []
    for ward in sorted(wards):
        args += [ward, after, *collection_args, fetch]
    return " UNION ALL ".join([part] * len(wards)) + " ORDER BY seq LIMIT ?", [*args, fetch]


class _Reads(ReadTx):
    def __init__(self, conn: ThreadConnection) -> None:
        self._conn = conn

    async def changesets(self, ids: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredChangeset]:
        return await self._conn.run(_sql.changesets, ids) if ids else {}

    async def records(self, keys: Sequence[Key]) -> dict[Key, RecordState]:
        return await self._conn.run(_sql.records, keys) if keys else {}


class _Tx(_Reads, WriteTx):
    """Holds SQLite's write lock; numbers come from memory, the writes go in with the commit."""

    def __init__(self, conn: ThreadConnection, store: SqliteStore, heads: tuple[int, int]) -> None:
        super().__init__(conn)
        self._store = store
        self._seq_head, self._conflict_head = heads
        self.pending: tuple[Sequence[RecordRow], Sequence[EditRow], Sequence[ConflictRow], Sequence[StoredChangeset]] | None = None
        self.resolved: list[ResolvedConflict] = []

    async def seqs(self, keys: Sequence[Key]) -> dict[Key, int]:
        return await self._conn.run(_sql.seqs, keys) if keys else {}

    async def next_seqs(self, count: int) -> int:
        first = self._seq_head + 1
        self._seq_head += count
        return first

    async def next_conflict_ids(self, count: int) -> int:
        first = self._conflict_head + 1
        self._conflict_head += count
        return first

    def cursor(self) -> str:
        return self._store.encode_cursor(self._seq_head)

    @property
    def heads(self) -> Heads:
        """The heads once this transaction commits."""
        return Heads(self._seq_head, self._conflict_head)

    async def resolve_conflicts(self, resolved: Sequence[ResolvedConflict]) -> None:
        self.resolved.extend(resolved)

    async def save(
        self,
        records: Sequence[RecordRow],
        edits: Sequence[EditRow],
        conflicts: Sequence[ConflictRow],
        answers: Sequence[StoredChangeset],
    ) -> None:
        self.pending = (records, edits, conflicts, answers)


class SqliteStore(Paging, Store, OneHopWrites):
    def __init__(self, url: str, *, readers: int = 3, busy_timeout_ms: int = 30_000, writer_process: bool = True) -> None:
        self.url = url
        self.path = path_from_url(url)
        self._reader_count = readers
        self._busy_timeout_ms = busy_timeout_ms
        self._writer = ThreadConnection(self.path, busy_timeout_ms, "writer", lock=writer_process)
        self._planner = ThreadConnection(self.path, busy_timeout_ms, "planner")
        self._queries = [ThreadConnection(self.path, busy_timeout_ms, f"query{i}") for i in range(2)]
        self._next_query = itertools.count()
        self._readers: list[aiosqlite.Connection] = []
        self._checkpoint_conn: aiosqlite.Connection | None = None
        self._next_reader = itertools.count()
        self._lock = asyncio.Lock()
        self._checkpointer: asyncio.Task[None] | None = None
        self._opened = False
        self.epoch = ""
        #: the heads after this process's last push commit (None: read them)
        self._heads: Heads | None = None
        #: one-hop writes go to a process of their own (``_process.py``), started on the first
        self._use_writer_process = writer_process
        self._writer_process: WriterProcess | None = None
        #: the last planned write this process's writer thread took (``PlannedWrite.after``)
        self._last_planned = 0

    # -- lifecycle ------------------------------------------------------------

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        for pragma in PRAGMAS(self._busy_timeout_ms):
            await conn.execute(pragma)
        return conn

    async def open(self) -> None:
        """Open the file, creating it only inside a folder that exists (a typo in the
        folder must not become a second, empty store)."""
        if not self.path.parent.is_dir():
            raise StoreUnavailable(f"no folder {self.path.parent} for the store {self.path.name}")
        try:
            await self._writer.open()
            await self._writer.run(_sql.migrate, str(self.path))
            await self._planner.open()
            for thread in self._queries:
                await thread.open()
            self._readers = [await self._connect() for _ in range(self._reader_count)]
            self.epoch = await self._writer.run(lambda conn: str(conn.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()[0]))
        except (sqlite3.Error, OSError) as exc:
            await self.close()
            raise StoreUnavailable(f"cannot open {self.path}: {exc}") from exc
        except StoreError:
            await self.close()
            raise
        # kept here, not only in the task: a store closed before the task first runs
        # (``migrate``, ``serve``'s check) must still close the connection
        self._checkpoint_conn = await self._connect()
        self._checkpointer = asyncio.create_task(self._checkpoint_loop(self._checkpoint_conn))
        self._opened = True

    async def _checkpoint_loop(self, conn: aiosqlite.Connection, every_s: float = 0.5) -> None:
        """Copy the write-ahead log into the database, off the commit path."""
        while True:
            await asyncio.sleep(every_s)
            with contextlib.suppress(sqlite3.Error):
                await conn.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")

    async def close(self) -> None:
        self._opened = False
        if self._writer_process is not None:
            process, self._writer_process = self._writer_process, None
            with contextlib.suppress(Exception):
                await process.close()
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
            self._checkpointer = None
        if self._checkpoint_conn is not None:
            with contextlib.suppress(Exception):
                await self._checkpoint_conn.close()
            self._checkpoint_conn = None
        for conn in self._readers:
            with contextlib.suppress(Exception):
                await conn.close()
        self._readers = []
        for thread in (self._writer, self._planner, *self._queries):
            with contextlib.suppress(Exception):
                await thread.close()

    async def ping(self) -> bool:
        try:
            return bool(await self._reader().execute_fetchall("SELECT 1"))
        except (sqlite3.Error, ValueError, StoreUnavailable):
            return False

    def _reader(self) -> aiosqlite.Connection:
        """One of the shared reader connections, round robin.

        Every read on them is one ``execute_fetchall``: the statement runs to its end in
        one hop on the connection's thread.  A cursor held open across an ``await`` would
        keep a read transaction open on a connection other requests share, and they would
        read that old snapshot: a pull would then see its own cursor ahead of the store
        and answer 410 as if the store had been restored.
        """
        if not self._readers:
            raise StoreUnavailable("the store is closed")
        return self._readers[next(self._next_reader) % len(self._readers)]

    async def _on_writer(self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a write function on the writer thread, one at a time in this process."""
        async with self._lock:
            try:
                return await asyncio.shield(self._writer.run(fn, *args, **kwargs))
            except sqlite3.OperationalError as exc:  # e.g. locked by another process past busy_timeout
                raise StoreUnavailable(f"the store is busy or failing: {exc}") from exc

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[ReadTx]:
        if not self._opened:
            raise StoreUnavailable("the store is closed")
        yield _Reads(self._planner)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[WriteTx]:
        async with self._lock:
            try:
                heads = await asyncio.shield(self._writer.run(_sql.begin))
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(f"the store is busy: {exc}") from exc
            tx = _Tx(self._writer, self, heads)
            try:
                yield tx
            except BaseException:
                await asyncio.shield(self._writer.run(_sql.rollback))
                raise
            rows, edits, conflicts, answers = tx.pending or ((), (), (), ())
            self._heads = None  # (unknown if the commit fails)
            await asyncio.shield(self._writer.run(_sql.save_and_commit, rows, edits, conflicts, answers, tx.resolved, _now()))
            self._heads = tx.heads

    async def heads(self) -> Heads:
        if self._heads is None:
            seq, conflict = await self._planner.run(_sql.heads)
            self._heads = Heads(seq, conflict)
        return self._heads

    async def write_planned(self, planned: PlannedWrite) -> bool:
        self._heads = None  # (unknown until the answer)
        if self._writer_process is None and self._use_writer_process and self._opened:
            try:
                self._writer_process = WriterProcess(self.path, self._busy_timeout_ms)
            except Exception as exc:  # no process to be had (limits, a platform without it): this thread writes
                log.warning("cannot start the store's writer process (%s); writing in the server", exc)
                self._use_writer_process = False
        try:
            if self._writer_process is not None and self._writer_process.alive:
                written, (seq, conflict) = await self._writer_process.submit(planned, _now())
            else:
                async with self._lock:
                    written, (seq, conflict) = await asyncio.shield(self._writer.run(_sql.write_planned, planned, _now(), self._last_planned))
                    if written:
                        self._last_planned = planned.id
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"the store is busy: {exc}") from exc
        if seq >= 0:
            self._heads = Heads(seq, conflict)
        return written

    # -- pull -----------------------------------------------------------------

    async def _page_rows(
        self, wards: frozenset[str] | None, after: int, fetch: int, collections: frozenset[str] | None, crdt: bool = False
    ) -> list[PageRow]:
        sql, args = _page_query(wards, after, fetch, collections, crdt)
        rows = await self._reader().execute_fetchall(sql, args)
        if crdt:
            return [(row["seq"], row["doc"], row["crdt"]) for row in rows]
        return [(row["seq"], row["doc"]) for row in rows]

    async def _top_position(self) -> int:
        rows = await self._reader().execute_fetchall("SELECT coalesce(max(seq), 0) AS top FROM records")
        return int(next(iter(rows))["top"])

    async def head(self) -> str:
        return self.encode_cursor(await self._top_position())

    # -- identity -------------------------------------------------------------

    async def principal(self, token_hash: str) -> Principal | None:
        sql = """
            SELECT d.device_id, u.id AS user_id, u.role,
                   CASE WHEN u.role = 'admin' THEN (SELECT group_concat(id) FROM wards)
                   ELSE (SELECT group_concat(w) FROM (
                            SELECT t.ward_id AS w FROM user_teams ut JOIN teams t ON t.id = ut.team_id
                             WHERE ut.user_id = u.id
                            UNION SELECT ward_id FROM user_wards WHERE user_id = u.id)) END AS wards,
                   d.created_at
              FROM devices d JOIN users u ON u.id = d.user_id
             WHERE d.token_hash = ? AND d.revoked_at IS NULL AND u.disabled_at IS NULL"""
        rows = list(await self._reader().execute_fetchall(sql, (token_hash,)))
        if not rows:
            return None
        row = rows[0]
        wards = frozenset(row["wards"].split(",")) if row["wards"] else frozenset()
        return principal_from_row(row, wards)

    async def create(self, entity: Ward | Team | User | DeviceToken, token_hash: str | None = None) -> None:
        await self._on_writer(_sql.create_entity, entity, token_hash, _now())

    async def entities(self, kind: type[Ward] | type[Team] | type[User] | type[Device]) -> Sequence[Ward | Team | User | Device]:
        conn = self._reader()
        if kind is User:
            rows = await conn.execute_fetchall(f"SELECT {_identity.USER_COLUMNS} FROM users u ORDER BY u.id")
            return [_identity.user_from_row(r) for r in rows]
        return [entity_from_row(kind, r) for r in await conn.execute_fetchall(ENTITY_QUERIES[kind])]

    async def user(self, user_id: str) -> User | None:
        rows = await self._reader().execute_fetchall(f"SELECT {_identity.USER_COLUMNS} FROM users u WHERE u.id = ?", (user_id,))
        return next((_identity.user_from_row(r) for r in rows), None)

    async def revoke_device(self, device_id: str) -> None:
        await self._on_writer(_sql.revoke_device, device_id, _now())

    async def reissue_token(self, device_id: str, token_hash: str) -> str:
        return await self._on_writer(_identity.reissue_token, device_id, token_hash)

    async def update_user(self, user_id: str, changes: UserUpdate) -> User:
        return await self._on_writer(_identity.update_user, user_id, changes, _now())

    async def rename_ward(self, ward_id: str, name: str) -> Ward:
        return await self._on_writer(_identity.rename_ward, ward_id, name)

    async def update_team(self, team_id: str, changes: TeamUpdate) -> Team:
        return await self._on_writer(_identity.update_team, team_id, changes)

    async def add_enrolment(self, enrolment: EnrolmentRow) -> str:
        return await self._on_writer(_identity.add_enrolment, enrolment)

    async def redeem_enrolment(self, code_hash: str, token_hash: str, now: str) -> tuple[str, str] | None:
        return await self._on_writer(_identity.redeem_enrolment, code_hash, token_hash, now)

    # -- supervision ------------------------------------------------------------

    async def _query(self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a report query on one of the query threads (reports never wait for pulls)."""
        if not self._opened:
            raise StoreUnavailable("the store is closed")
        return await self._queries[next(self._next_query) % len(self._queries)].run(fn, *args, **kwargs)

    async def summary(self, wards: Sequence[str], start: dt.date | None, end: dt.date | None) -> SummaryReport:
        return await self._query(_supervision.summary, wards, start, end)

    async def check_rows(self, wards: Sequence[str], group_by: GroupBy, start: dt.date | None, end: dt.date | None) -> list[CheckRow]:
        return await self._query(_supervision.check_rows, wards, group_by, start, end)

    async def checks_per_day(self, wards: Sequence[str], start: dt.date | None, end: dt.date | None) -> list[tuple[dt.date, int]]:
        return await self._query(_supervision.checks_per_day, wards, start, end)

    async def targets(self, wards: Sequence[str], period: str | None) -> list[TargetRow]:
        return await self._query(_supervision.targets, wards, period)

    async def conflicts(
        self, wards: Sequence[str], status: str | None, collection: str | None, after: int | None, limit: int
    ) -> list[Conflict]:
        return await self._query(_supervision.conflicts, wards, status, collection, after, limit)

    async def conflict(self, conflict_id: int) -> Conflict | None:
        return await self._query(_supervision.conflict, conflict_id)

    async def history(self, collection: str, record_id: str) -> RecordHistory | None:
        return await self._query(_supervision.history, collection, record_id)

    async def search_premises(self, wards: Sequence[str], terms: Sequence[str], kind: str | None, limit: int) -> list[PremisesHit]:
        return await self._query(_supervision.search_premises, wards, terms, kind, limit)

    async def record_health(self, updates: Sequence[HealthUpdate]) -> None:
        if updates:
            await self._on_writer(_supervision.record_health, updates)

    async def fleet_health(self, wards: Sequence[str] | None) -> list[DeviceHealth]:
        return await self._query(_supervision.fleet_health, wards)

    # -- attachments ------------------------------------------------------------------

    async def blob_access(self, blob_id: str, wards: Sequence[str]) -> BlobAccess:
        return await self._query(_blobs.access, blob_id, wards)

    async def blob_stored(self, blob_id: str, size: int, uploader: str | None = None) -> None:
        await self._on_writer(_blobs.stored, blob_id, size, uploader, _now())

    async def unnamed_blob_bytes(self, uploader: str) -> int:
        return await self._query(_blobs.unnamed_bytes, uploader)

    async def forget_unnamed_blobs(self, stored_before: str, limit: int) -> list[str]:
        return await self._on_writer(_blobs.forget_unnamed, stored_before, limit)

    async def missing_blobs(self, wards: Sequence[str], after: str | None, limit: int) -> list[str]:
        return await self._query(_blobs.missing, wards, after, limit)

    # -- the console ----------------------------------------------------------------

    async def record_list(self, query: ListQuery) -> list[ListedRow]:
        return await self._query(_console.record_list, query)

    async def set_password(self, user_id: str, password_hash: str | None) -> None:
        await self._on_writer(_console.set_password, user_id, password_hash)

    async def password_of(self, user_id: str) -> tuple[str, str | None] | None:
        return await self._query(_console.password_of, user_id)

    async def user_principal(self, user_id: str, device_id: str) -> Principal | None:
        return await self._query(_console.user_principal, user_id, device_id)

    async def create_session(self, id_hash: str, user_id: str, csrf: str, now: float) -> None:
        await self._on_writer(_console.create_session, id_hash, user_id, csrf, _now(), now)

    async def session(self, id_hash: str, idle_s: float, now: float) -> ConsoleSession | None:
        found = await self._query(_console.session_row, id_hash)
        if found is None:
            return None
        session, seen_at = found
        if seen_at < now - idle_s:
            await self._on_writer(_console.end_session, id_hash)
            return None
        if seen_at < now - min(60.0, idle_s / 10):  # one write a minute at most, not one per page
            await self._on_writer(_console.touch_session, id_hash, now)
        return session

    async def end_session(self, id_hash: str) -> None:
        await self._on_writer(_console.end_session, id_hash)

    async def sign_in_failures(self, keys: Sequence[str], since: float) -> int:
        return await self._query(_console.sign_in_failures, keys, since)

    async def note_sign_in(self, keys: Sequence[str], failed: bool, now: float) -> None:
        await self._on_writer(_console.note_sign_in, keys, failed, now)
