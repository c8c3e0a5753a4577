"""The scale-out store: PostgreSQL through asyncpg, shared by any number of workers.

Each worker process has its own connection pool and its own push writer
(``sync_server/writer.py``); the database is what they share.  The guarantees
of the SQLite store hold across workers:

- **Atomic and durable.**  A group commit is one transaction at READ COMMITTED,
  written by one statement (data-modifying CTEs over ``unnest`` arrays) plus one
  per report projection table, committed with ``synchronous_commit = on`` (set
  on every connection): a 200 means on disk.
- **Sound optimistic merges across workers.**  Inside the write transaction,
  reading change sets or records first takes transaction-scoped advisory locks
  on their keys (sorted, so two transactions never wait for each other in a
  cycle), then reads them ``FOR UPDATE``.  The key locks also cover records and
  change sets that do not exist yet: two workers creating the same record, or
  handed the same change set (a retry racing its original), meet on the lock;
  the second reads after the first commits (READ COMMITTED takes a snapshot per
  statement), finds its work answered or merges onto the new version, and
  nothing is applied twice.  No unique violation, no retry loop.
- **Idempotent.**  Answers are keyed by (device, change set), under the lock above.
- **Never skipped by a pull.**  Sequence order is not commit order with several
  writers; pull positions and the reader's horizon are in ``_cursor``.

``next_seqs`` and ``next_conflict_ids`` take consecutive blocks of two
sequences (``reserve_block`` in the migration), without waiting for any commit.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

import asyncpg

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
from ..base import (
    BlobAccess,
    ConflictRow,
    ConsoleSession,
    EditRow,
    EnrolmentRow,
    HealthUpdate,
    Key,
    ListedRow,
    ListQuery,
    ReadTx,
    RecordRow,
    ResolvedConflict,
    Store,
    StoredChangeset,
    TargetRow,
    WriteTx,
)
from ..errors import StoreUnavailable
from ..schema import SchemaStatus
from . import _blobs, _console, _cursor, _identity, _projections, _schema, _sql, _supervision

log = logging.getLogger("patrol_sync.store")

__all__ = ["PostgresStore", "schema_status"]

T = TypeVar("T")
P = ParamSpec("P")

#: errors that mean "the database is not reachable, restarting or overloaded" (503, retry)
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.OperatorInterventionError,  # admin shutdown, statement timeout
    asyncpg.TransactionRollbackError,  # deadlock or serialization failure: the client's retry is safe
    asyncpg.InvalidCatalogNameError,  # no such database
)

_SERVER_SETTINGS = {
    "application_name": "patrol-sync",
    "synchronous_commit": "on",  # a 200 means on disk, whatever the server's default
    "jit": "off",  # short indexed queries: compiling them costs more than it saves
    "idle_in_transaction_session_timeout": "60000",  # a stuck transaction would hold pulls back
}


def _now() -> str:
    return utc_now()


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except _UNAVAILABLE as exc:
        raise StoreUnavailable(f"the database is unavailable: {type(exc).__name__}: {exc}") from exc


class _Reads(ReadTx):
    """Reads for planning a group, outside any transaction."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def changesets(self, ids: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredChangeset]:
        return await _sql.changesets(self._conn, ids) if ids else {}

    async def records(self, keys: Sequence[Key]) -> dict[Key, RecordState]:
        return await _sql.records(self._conn, keys, for_update=False) if keys else {}


class _Tx(_Reads, WriteTx):
    """One write transaction: every key it reads is locked until it ends."""

    def __init__(self, conn: Any, store: PostgresStore) -> None:
        super().__init__(conn)
        self._store = store
        self._locked: set[int] = set()
        self._xid: int | None = None
        self._blocks: list[tuple[int, int]] = []  # reserved (first seq, count), in order
        self._ranks: list[int] = []  # rank of each block's first seq within this transaction
        self._reserved = 0
        self._cursor_pos: int | None = None

    async def _lock(self, kind: str, pairs: Sequence[tuple[str, str]]) -> None:
        keys = [k for k in _sql.key_locks(kind, pairs) if k not in self._locked]
        await _sql.lock(self._conn, keys)
        self._locked.update(keys)

    async def changesets(self, ids: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredChangeset]:
        if not ids:
            return {}
        await self._lock("changeset", ids)
        return await _sql.changesets(self._conn, ids)

    async def records(self, keys: Sequence[Key]) -> dict[Key, RecordState]:
        if not keys:
            return {}
        await self._lock("record", keys)
        return await _sql.records(self._conn, keys, for_update=True)

    async def seqs(self, keys: Sequence[Key]) -> dict[Key, int]:
        if not keys:
            return {}
        await self._lock("record", keys)
        return await _sql.seqs(self._conn, keys)

    async def next_seqs(self, count: int) -> int:
        if count <= 0:
            row = await self._conn.fetchrow(
                "SELECT coalesce((SELECT max(pos) FROM records), 0), "
                "(SELECT last_value + CASE WHEN is_called THEN 1 ELSE 0 END FROM record_seq)"
            )
            if self._reserved == 0:
                self._cursor_pos = int(row[0])
            return int(row[1])
        row = await self._conn.fetchrow("SELECT reserve_block('record_seq', $1), pg_current_xact_id()::text::bigint", count)
        first, self._xid = int(row[0]), int(row[1])
        self._ranks.append(self._reserved)
        self._blocks.append((first, count))
        self._reserved += count
        self._cursor_pos = self._position(first + count - 1)
        return first

    async def next_conflict_ids(self, count: int) -> int:
        if count <= 0:
            return int(await self._conn.fetchval("SELECT last_value + CASE WHEN is_called THEN 1 ELSE 0 END FROM conflict_id"))
        return int(await self._conn.fetchval("SELECT reserve_block('conflict_id', $1)", count))

    def _position(self, seq: int) -> int:
        """Where the version numbered ``seq`` by this transaction goes in the pull order."""
        i = bisect.bisect_right(self._blocks, (seq, 1 << 62)) - 1
        if self._xid is None or i < 0 or not self._blocks[i][0] <= seq < self._blocks[i][0] + self._blocks[i][1]:
            raise ValueError(f"seq {seq} was not reserved by this transaction")
        return _cursor.position(self._xid, self._store.xid_base, self._ranks[i] + seq - self._blocks[i][0])

    async def resolve_conflicts(self, resolved: Sequence[ResolvedConflict]) -> None:
        if resolved:
            await _supervision.resolve_conflicts(self._conn, resolved)

    def cursor(self) -> str:
        if self._cursor_pos is None:
            raise RuntimeError("cursor() comes after next_seqs()")
        return self._store.encode_cursor(self._cursor_pos)

    async def save(
        self,
        records: Sequence[RecordRow],
        edits: Sequence[EditRow],
        conflicts: Sequence[ConflictRow],
        answers: Sequence[StoredChangeset],
    ) -> None:
        if not (records or edits or conflicts or answers):
            return
        rows = [(r.state, self._position(r.state.seq), r.doc, r.crdt) for r in records]
        await self._conn.execute(_sql.SAVE, *_sql.save_args(rows, edits, conflicts, answers, _now()))
        states = [r.state for r in records]
        await _projections.write(self._conn, self._store.zones, states)
        await _blobs.write_refs(self._conn, states)


async def schema_status(url: str) -> SchemaStatus:
    """Where the database stands against this version's migrations (changes nothing)."""
    with _translated():
        conn = await asyncpg.connect("postgresql" + url[url.index(":") :], timeout=30, server_settings=_SERVER_SETTINGS)
        try:
            todo = await _schema.pending(conn)
            version = 0
            if await conn.fetchval("SELECT to_regclass('schema_migrations')") is not None:
                version = int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))
        finally:
            await conn.close()
    return SchemaStatus(version=version, latest=_schema.latest(), pending=len(todo))


class PostgresStore(Paging, Store):
    def __init__(self, url: str, *, pool_size: int = 10, timeout_s: float = 30.0) -> None:
        self.url = url
        self._pool_size = pool_size
        self._timeout_s = timeout_s
        self._pool: Any = None
        self.epoch = ""
        self.xid_base = 0
        self.zones = _projections.Zones()
        self._folder: asyncio.Task[None] | None = None

    #: how often the report counters' pending deltas are folded into their rows even when
    #: nobody reads a report (a read folds them too), so ``p_tally_delta`` stays short
    FOLD_EVERY_S = 30.0

    # -- lifecycle ------------------------------------------------------------

    async def open(self) -> None:
        dsn = "postgresql" + self.url[self.url.index(":") :]
        try:
            with _translated():
                self._pool = await asyncpg.create_pool(
                    dsn,
                    min_size=1,
                    max_size=self._pool_size,
                    timeout=self._timeout_s,
                    command_timeout=None,
                    server_settings=_SERVER_SETTINGS,
                )
                async with self._pool.acquire() as conn:
                    self.epoch, self.xid_base = await _schema.migrate(conn)
        except BaseException:
            await self.close()
            raise
        self._folder = asyncio.create_task(self._fold_now_and_then(), name="tally-folder")

    async def _fold_now_and_then(self) -> None:
        while True:
            await asyncio.sleep(self.FOLD_EVERY_S)
            try:
                await self._run(_supervision.fold_tally)
            except Exception as exc:  # the database restarts or is busy: one line, and again next round
                log.warning("folding the report counters failed, trying again in %.0f s: %s", self.FOLD_EVERY_S, exc)

    async def close(self) -> None:
        folder, self._folder = self._folder, None
        if folder is not None:
            folder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await folder
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=10)
            except (TimeoutError, Exception):
                pool.terminate()

    async def ping(self) -> bool:
        try:
            async with self._acquire() as conn:
                return bool(await conn.fetchval("SELECT true", timeout=5))
        except StoreUnavailable:
            return False

    @contextlib.asynccontextmanager
    async def _acquire(self) -> AsyncIterator[Any]:
        pool = self._pool
        if pool is None:
            raise StoreUnavailable("the store is closed")
        with _translated():
            async with pool.acquire(timeout=self._timeout_s) as conn:
                yield conn

    async def _run(self, fn: Callable[Concatenate[Any, P], Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(connection, *args)`` on a pooled connection: every method that is one
        function of ``_identity``, ``_supervision``, ``_blobs`` or ``_console``."""
        async with self._acquire() as conn:
            return await fn(conn, *args, **kwargs)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[ReadTx]:
        async with self._acquire() as conn:
            yield _Reads(conn)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[WriteTx]:
        async with self._acquire() as conn:
            # READ COMMITTED whatever the server's default: after waiting for a key lock, the
            # next statement must see what the lock holder committed
            async with conn.transaction(isolation="read_committed"):  # commits at the end, rolls back on any exception
                yield _Tx(conn, self)

    # -- pull -----------------------------------------------------------------

    async def _page_rows(
        self, wards: frozenset[str] | None, after: int, fetch: int, collections: frozenset[str] | None, crdt: bool = False
    ) -> list[PageRow]:
        sql, args = _sql.page(wards, after, self.xid_base, fetch, collections, crdt)
        async with self._acquire() as conn:
            rows = await conn.fetch(sql, *args)
        if crdt:
            return [(row["pos"], row["doc"], row["crdt"]) for row in rows]
        return [(row["pos"], row["doc"]) for row in rows]

    async def _top_position(self) -> int:
        return await self._run(_sql.top_position)

    async def head(self) -> str:
        return self.encode_cursor(await self._run(_sql.head_position, self.xid_base))

    # -- identity -------------------------------------------------------------

    async def principal(self, token_hash: str) -> Principal | None:
        return await self._run(_identity.principal, token_hash)

    async def create(self, entity: Ward | Team | User | DeviceToken, token_hash: str | None = None) -> None:
        await self._run(_identity.create_entity, entity, token_hash, _now())

    async def entities(self, kind: type[Ward] | type[Team] | type[User] | type[Device]) -> Sequence[Ward | Team | User | Device]:
        return await self._run(_identity.entities, kind)

    async def user(self, user_id: str) -> User | None:
        return await self._run(_identity.user, user_id)

    async def revoke_device(self, device_id: str) -> None:
        await self._run(_identity.revoke_device, device_id, _now())

    async def reissue_token(self, device_id: str, token_hash: str) -> str:
        return await self._run(_identity.reissue_token, device_id, token_hash)

    async def update_user(self, user_id: str, changes: UserUpdate) -> User:
        return await self._run(_identity.update_user, user_id, changes, _now())

    async def rename_ward(self, ward_id: str, name: str) -> Ward:
        return await self._run(_identity.rename_ward, ward_id, name)

    async def update_team(self, team_id: str, changes: TeamUpdate) -> Team:
        return await self._run(_identity.update_team, team_id, changes)

    async def add_enrolment(self, enrolment: EnrolmentRow) -> str:
        return await self._run(_identity.add_enrolment, enrolment)

    async def redeem_enrolment(self, code_hash: str, token_hash: str, now: str) -> tuple[str, str] | None:
        return await self._run(_identity.redeem_enrolment, code_hash, token_hash, now)

    # -- supervision ------------------------------------------------------------

    async def summary(self, wards: Sequence[str], start: dt.date | None, end: dt.date | None) -> SummaryReport:
        return await self._run(_supervision.summary, wards, start, end)

    async def check_rows(self, wards: Sequence[str], group_by: GroupBy, start: dt.date | None, end: dt.date | None) -> list[CheckRow]:
        return await self._run(_supervision.check_rows, wards, group_by, start, end)

    async def checks_per_day(self, wards: Sequence[str], start: dt.date | None, end: dt.date | None) -> list[tuple[dt.date, int]]:
        return await self._run(_supervision.checks_per_day, wards, start, end)

    async def targets(self, wards: Sequence[str], period: str | None) -> list[TargetRow]:
        return await self._run(_supervision.targets, wards, period)

    async def conflicts(
        self, wards: Sequence[str], status: str | None, collection: str | None, after: int | None, limit: int
    ) -> list[Conflict]:
        return await self._run(_supervision.conflicts, wards, status, collection, after, limit)

    async def conflict(self, conflict_id: int) -> Conflict | None:
        return await self._run(_supervision.conflict, conflict_id)

    async def history(self, collection: str, record_id: str) -> RecordHistory | None:
        return await self._run(_supervision.history, collection, record_id)

    async def search_premises(self, wards: Sequence[str], terms: Sequence[str], kind: str | None, limit: int) -> list[PremisesHit]:
        return await self._run(_supervision.search_premises, wards, terms, kind, limit)

    async def record_health(self, updates: Sequence[HealthUpdate]) -> None:
        if updates:
            await self._run(_supervision.record_health, updates)

    async def fleet_health(self, wards: Sequence[str] | None) -> list[DeviceHealth]:
        return await self._run(_supervision.fleet_health, wards)

    # -- attachments ------------------------------------------------------------------

    async def blob_access(self, blob_id: str, wards: Sequence[str]) -> BlobAccess:
        return await self._run(_blobs.access, blob_id, wards)

    async def blob_stored(self, blob_id: str, size: int, uploader: str | None = None) -> None:
        await self._run(_blobs.stored, blob_id, size, uploader, _now())

    async def unnamed_blob_bytes(self, uploader: str) -> int:
        return await self._run(_blobs.unnamed_bytes, uploader)

    async def forget_unnamed_blobs(self, stored_before: str, limit: int) -> list[str]:
        return await self._run(_blobs.forget_unnamed, stored_before, limit)

    async def missing_blobs(self, wards: Sequence[str], after: str | None, limit: int) -> list[str]:
        return await self._run(_blobs.missing, wards, after, limit)

    # -- the console ----------------------------------------------------------------

    async def record_list(self, query: ListQuery) -> list[ListedRow]:
        return await self._run(_console.record_list, query)

    async def set_password(self, user_id: str, password_hash: str | None) -> None:
        await self._run(_console.set_password, user_id, password_hash)

    async def password_of(self, user_id: str) -> tuple[str, str | None] | None:
        return await self._run(_console.password_of, user_id)

    async def user_principal(self, user_id: str, device_id: str) -> Principal | None:
        return await self._run(_console.user_principal, user_id, device_id)

    async def create_session(self, id_hash: str, user_id: str, csrf: str, now: float) -> None:
        await self._run(_console.create_session, id_hash, user_id, csrf, _now(), now)

    async def session(self, id_hash: str, idle_s: float, now: float) -> ConsoleSession | None:
        return await self._run(_console.session, id_hash, idle_s, now)

    async def end_session(self, id_hash: str) -> None:
        await self._run(_console.end_session, id_hash)

    async def sign_in_failures(self, keys: Sequence[str], since: float) -> int:
        return await self._run(_console.sign_in_failures, keys, since)

    async def note_sign_in(self, keys: Sequence[str], failed: bool, now: float) -> None:
        await self._run(_console.note_sign_in, keys, failed, now)
