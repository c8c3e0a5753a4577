"""The store interface: everything the server keeps, behind a few async methods.

Each backend (``sqlite``, ``postgresql``) is a module of its own; the sync service
drives them through this interface and never sees SQL.  Pushes are written
in groups (group commit), merged optimistically: the sync service reads what a
group needs outside any transaction (:meth:`Store.read`), merges it in memory
while the previous group commits, then opens a write transaction that checks
nothing it read has changed and writes everything or nothing::

    async with store.read() as snapshot:
        prior = await snapshot.changesets(ids)    # answered before? (idempotency)
        current = await snapshot.records(keys)    # the records the group touches
    ...merge...
    async with store.write() as tx:
        if await tx.changesets(ids) or await tx.seqs(keys) != expected:
            ...merge again, reading through tx...
        first_seq = await tx.next_seqs(n)         # one new version per changed record
        first_conflict = await tx.next_conflict_ids(m)
        await tx.save(records, edits, conflicts, answers)

What the writer relies on (each a test in ``tests/stores/test_contract.py``): a
transaction that fails, in the writer or in the database, leaves nothing; nothing of
it is read or pulled before it commits, and ``read()`` does not wait for it; a write
transaction reads what every transaction before it committed; numbers from
``next_seqs``/``next_conflict_ids`` are above every committed one; ``cursor()`` is
just after the transaction's own writes and moves forward from one commit to the next;
a change set answered meanwhile shows in ``tx.changesets``, a record changed or created
meanwhile in ``tx.seqs``; a conflict is resolved once, with its edit.

A store that numbers versions from one counter it can read back (SQLite, not
PostgreSQL) may also take a group in **one hop** (:class:`OneHopWrites`): the writer
numbers and encodes everything outside the transaction, after the heads it expects,
and the store checks those heads, the change sets and the records' seqs, writes and
commits in one call, or changes nothing and says so; the writer then takes the path
above.  The write lock is held for the SQL alone.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

from schemas import (
    CheckRow,
    Conflict,
    Device,
    DeviceHealth,
    DeviceToken,
    GroupBy,
    Key,
    PremisesHit,
    RecordHistory,
    SummaryReport,
    Team,
    TeamUpdate,
    User,
    UserUpdate,
    Ward,
)

from ..engine.state import RecordState
from ..principal import Principal

__all__ = [
    "BlobAccess",
    "ConflictRow",
    "ConsoleSession",
    "EditRow",
    "EnrolmentRow",
    "Key",
    "HealthUpdate",
    "ListQuery",
    "ListedRow",
    "Page",
    "ReadTx",
    "RecordRow",
    "ResolvedConflict",
    "Store",
    "StoredChangeset",
    "TargetRow",
    "WriteTx",
    "Skip",
]


@dataclasses.dataclass(slots=True)
class RecordRow:
    """A record version to write: its state and both stored encodings."""

    state: RecordState
    doc: bytes
    crdt: bytes


@dataclasses.dataclass(slots=True)
class EditRow:
    """One applied edit, for the append-only edit log (record history)."""

    collection: str
    record_id: str
    ward_id: str
    seq: int
    at: str
    user_id: str
    device_id: str
    changeset_id: str
    diff: bytes


@dataclasses.dataclass(slots=True)
class ConflictRow:
    id: int
    collection: str
    record_id: str
    ward_id: str
    field: str | None
    kind: str
    winner: str
    server: bytes
    client: bytes
    device_id: str
    user_id: str
    changeset_id: str
    created_at: str


@dataclasses.dataclass(slots=True)
class StoredChangeset:
    """A change set's answer, kept so that a retry gets the same one."""

    device_id: str
    changeset_id: str
    body_hash: bytes
    response: bytes


@dataclasses.dataclass(slots=True)
class ResolvedConflict:
    """A supervisor's decision on a conflict, written with the edit that carries it out."""

    conflict_id: int
    resolved_by: str
    resolved_at: str
    resolution: bytes  # JSON: {"choice", "value", "changeset_id"}


@dataclasses.dataclass(slots=True, frozen=True)
class Heads:
    """The highest record version number and conflict id a store holds."""

    seq: int
    conflict: int


@dataclasses.dataclass(slots=True)
class PlannedWrite:
    """A group numbered and encoded outside any transaction (``OneHopWrites``)."""

    #: what the numbers were taken after: the writes go in only if the store still stands here
    heads: Heads
    #: change sets that must still have no stored answer
    fresh: Sequence[tuple[str, str]]
    #: the seq each record was merged from (records that did not exist are absent)
    origin: dict[Key, int]
    #: records merged that did not exist (they must still not)
    created: Sequence[Key]
    records: Sequence[RecordRow]
    edits: Sequence[EditRow]
    conflicts: Sequence[ConflictRow]
    answers: Sequence[StoredChangeset]
    resolved: Sequence[ResolvedConflict]
    #: this planned write's number (from 1, rising, per writer)
    id: int = 0
    #: the planned write it was numbered after, still in flight when it was (0: none; its
    #: heads were read from the store). It goes in only right after that one: equal heads
    #: after a refused write (its group written again otherwise, or another process's
    #: writes) may hide different record versions under the same seqs
    after: int = 0


@dataclasses.dataclass(slots=True)
class TargetRow:
    id: str
    ward_id: str
    metric: str
    period: str
    target: int


@dataclasses.dataclass(slots=True)
class HealthUpdate:
    """What one device's requests told us since the last flush (None: nothing new)."""

    device_id: str
    last_push_at: str | None = None
    last_pull_at: str | None = None
    client: str | None = None
    client_version: str | None = None
    schema: int | None = None
    pending: int | None = None
    clock_offset_ms: int | None = None
    rejected: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class EnrolmentRow:
    """A one-time enrolment code to keep (as its hash only), for one device.

    ``user_id`` registers the device for that user when it does not exist yet, under
    ``placeholder_hash``: the hash of a token nobody was shown, so the device works only
    once the code is exchanged (or its token re-issued)."""

    device_id: str
    user_id: str | None
    code_hash: str
    placeholder_hash: str
    created_at: str
    expires_at: str


@dataclasses.dataclass(frozen=True, slots=True)
class BlobAccess:
    """What the store knows of one blob, for one caller (PROTOCOL.md section 6b)."""

    #: a record of the caller's wards names it (see ``stores/blobrefs.py``)
    named: bool
    #: its size once the blob store holds it (uploaded), else None
    size: int | None


@dataclasses.dataclass(slots=True)
class Page:
    """One pull page: stored record documents, the cursor after them, and whether more wait."""

    docs: list[bytes]
    cursor: str
    more: bool


#: a pull's filter: given a stored record's document and its merge state (``crdt``),
#: True leaves it out of the page (``SyncService.pull``, ``own=skip``)
Skip = Callable[[bytes, bytes], bool]


@dataclasses.dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A signed-in console session (PROTOCOL.md section 9): whose, and its CSRF token."""

    user_id: str
    csrf: str


@dataclasses.dataclass(slots=True)
class ListQuery:
    """One page of a record list (``GET /v1/records/{collection}``), already checked.

    ``sort`` is ``date``/``-date`` (the record's report date) or, for premises,
    ``name``/``-name``; ``after`` is the ``position`` of the last row of the page
    before (a store's own values, carried opaquely by the cursor)."""

    collection: str
    wards: Sequence[str]
    start: dt.date | None = None
    end: dt.date | None = None
    status: str | None = None
    category: str | None = None
    kind: str | None = None
    officer: str | None = None
    sort: str = "-date"
    after: list[object] | None = None
    limit: int = 50


@dataclasses.dataclass(slots=True)
class ListedRow:
    """A live record as stored (the pull document), and its position in the list's order."""

    doc: bytes
    position: list[object]


class ReadTx(abc.ABC):
    """Reads for merging a group of change sets."""

    @abc.abstractmethod
    async def changesets(self, ids: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredChangeset]:
        """The stored answers of those (device id, change set id) that were applied before."""

    @abc.abstractmethod
    async def records(self, keys: Sequence[Key]) -> dict[Key, RecordState]: ...


class WriteTx(ReadTx):
    """One write transaction (see the module docstring)."""

    @abc.abstractmethod
    async def seqs(self, keys: Sequence[Key]) -> dict[Key, int]:
        """The current seq of those records that exist, locked until commit."""

    @abc.abstractmethod
    async def next_seqs(self, count: int) -> int:
        """Reserve ``count`` (maybe 0) consecutive sequence numbers; returns the first."""

    @abc.abstractmethod
    async def next_conflict_ids(self, count: int) -> int:
        """Reserve ``count`` consecutive conflict ids; returns the first."""

    @abc.abstractmethod
    def cursor(self) -> str:
        """The pull position just after this transaction's writes (after ``next_seqs``)."""

    @abc.abstractmethod
    async def resolve_conflicts(self, resolved: Sequence[ResolvedConflict]) -> None:
        """Mark conflicts resolved, with the writes of this transaction."""

    @abc.abstractmethod
    async def save(
        self,
        records: Sequence[RecordRow],
        edits: Sequence[EditRow],
        conflicts: Sequence[ConflictRow],
        answers: Sequence[StoredChangeset],
    ) -> None:
        """Write record versions, edit-log rows, conflicts and change-set answers."""


class SyncStore(Protocol):
    """The sync role: push transactions (the writer's :meth:`read` and :meth:`write`, see
    the module docstring) and pull pages in commit order, behind opaque cursors."""

    @abc.abstractmethod
    def read(self) -> AbstractAsyncContextManager[ReadTx]:
        """Reads outside any write transaction (their results are checked again in one)."""

    @abc.abstractmethod
    def write(self) -> AbstractAsyncContextManager[WriteTx]: ...

    @abc.abstractmethod
    async def pull(
        self,
        wards: frozenset[str] | None,
        cursor: str | None,
        limit: int,
        collections: frozenset[str] | None,
        max_bytes: int | None = None,
        skip: Skip | None = None,
    ) -> Page:
        """Records changed after ``cursor`` in commit order, each once as it now stands.

        ``wards`` None means every ward. A page stops before the record that would take
        its documents past ``max_bytes`` (never fewer than one record; see
        ``_paging.cut_page``); records ``skip`` leaves out are passed over (the cursor
        moves past them, so a page may hold none while ``more`` is true). Raises
        CursorInvalid or CursorExpired.
        """

    @abc.abstractmethod
    async def head(self) -> str:
        """The cursor a client would hold after pulling everything committed now: pulls
        from it see only what commits later (the console's live pages follow it)."""


@runtime_checkable
class OneHopWrites(Protocol):
    """A sync store that can check and write a planned group in one call (module docstring)."""

    @abc.abstractmethod
    async def heads(self) -> Heads:
        """The heads after this process's last commit, or read from the store (not locked)."""

    @abc.abstractmethod
    def encode_cursor(self, position: int) -> str:
        """The pull cursor just after the version numbered ``position``."""

    @abc.abstractmethod
    async def write_planned(self, planned: PlannedWrite) -> bool:
        """One transaction: if the store stands at ``planned.heads``, the last planned write
        it took is ``planned.after`` (when not 0), no ``fresh`` change set has an answer
        and every record is at its ``origin`` seq (``created`` ones absent), write it all
        and commit (True); otherwise change nothing (False)."""


class IdentityStore(Protocol):
    """The identity role: wards, teams, users, devices and their tokens, enrolment codes."""

    @abc.abstractmethod
    async def principal(self, token_hash: str) -> Principal | None:
        """The caller behind a token hash, or None for an unknown or revoked token."""

    @abc.abstractmethod
    async def create(self, entity: Ward | Team | User | DeviceToken, token_hash: str | None = None) -> None:
        """Create a ward, team, user or device. Raises AlreadyExists, UnknownReference."""

    @abc.abstractmethod
    async def entities(self, kind: type[Ward] | type[Team] | type[User] | type[Device]) -> Sequence[Ward | Team | User | Device]:
        """Every ward, team, user or device (never a token)."""

    @abc.abstractmethod
    async def user(self, user_id: str) -> User | None:
        """One user (None: no such user), disabled ones included: one indexed read,
        for a device asking who it acts for (``GET /v1/me``)."""

    @abc.abstractmethod
    async def revoke_device(self, device_id: str) -> None:
        """Revoke a device's token at once, and drop its unused enrolment codes. Raises NotFound."""

    # The lifecycle (PROTOCOL.md sections 2 and 7).
    # Scope is read from these tables on every request (``principal``), so a change here is
    # seen by the next request of every worker: nothing to invalidate.

    @abc.abstractmethod
    async def reissue_token(self, device_id: str, token_hash: str) -> str:
        """Give a device a new token: the old one stops at once, a revoked device is revoked
        no more (its stranded outbox can sync). Answers its user id. Raises NotFound."""

    @abc.abstractmethod
    async def update_user(self, user_id: str, changes: UserUpdate) -> User:
        """Change what ``changes`` sets; answers the user as he now is. Raises NotFound,
        UnknownReference (a team or ward), Refused (it would leave no enabled admin)."""

    @abc.abstractmethod
    async def rename_ward(self, ward_id: str, name: str) -> Ward:
        """Raises NotFound."""

    @abc.abstractmethod
    async def update_team(self, team_id: str, changes: TeamUpdate) -> Team:
        """Rename a team, or move it to another ward while no record (live or deleted) names
        it in its ``team_id``. Raises NotFound, UnknownReference (the ward), Refused."""

    @abc.abstractmethod
    async def add_enrolment(self, enrolment: EnrolmentRow) -> str:
        """Keep a code for a device (replacing its earlier unused ones); registers the device
        when ``user_id`` is given and it does not exist. Answers the device's user id.
        Raises NotFound (no such device, no user id), UnknownReference (no such user),
        Refused (the device belongs to another user)."""

    @abc.abstractmethod
    async def redeem_enrolment(self, code_hash: str, token_hash: str, now: str) -> tuple[str, str] | None:
        """Use a code exactly once, in one conditional update, and give its device the new
        token. Answers (device id, user id), or None when the code is unknown, used or expired
        (of two exchanges at once, one gets None)."""


class SessionStore(Protocol):
    """The console's part of identity: passwords, sessions and failed sign-ins."""

    # The console (PROTOCOL.md section 9): passwords, sessions, failed sign-ins.

    @abc.abstractmethod
    async def set_password(self, user_id: str, password_hash: str | None) -> None:
        """Set (None: clear) a user's console password hash, ending his sessions. Raises NotFound."""

    @abc.abstractmethod
    async def password_of(self, user_id: str) -> tuple[str, str | None] | None:
        """A user's role and console password hash (None: no such user)."""

    @abc.abstractmethod
    async def user_principal(self, user_id: str, device_id: str) -> Principal | None:
        """The scope of a user, as a token's principal would carry it, on ``device_id``."""

    @abc.abstractmethod
    async def create_session(self, id_hash: str, user_id: str, csrf: str, now: float) -> None: ...

    @abc.abstractmethod
    async def session(self, id_hash: str, idle_s: float, now: float) -> ConsoleSession | None:
        """The session, unless idle for ``idle_s`` (then it is ended); notes it as seen."""

    @abc.abstractmethod
    async def end_session(self, id_hash: str) -> None: ...

    @abc.abstractmethod
    async def sign_in_failures(self, keys: Sequence[str], since: float) -> int:
        """The most failed sign-ins any of ``keys`` had since ``since`` (and forgets older ones)."""

    @abc.abstractmethod
    async def note_sign_in(self, keys: Sequence[str], failed: bool, now: float) -> None:
        """Count a failed sign-in against each key, or (``failed`` False) clear the keys."""


class ReportStore(Protocol):
    """The supervision role: reports over the projections, conflicts, record history,
    premises search and record lists (read-only; a resolution is written by a push)."""

    # PROTOCOL.md sections 6, 6c, 6d.
    # ``wards`` is always a concrete list (the caller's scope or the asked ward);
    # ``start``/``end`` are local days, both inclusive, None for open ends.

    @abc.abstractmethod
    async def summary(self, wards: Sequence[str], start: dt.date | None, end: dt.date | None) -> SummaryReport:
        """Counts over live records (see ``projections``); ``wards``/``from_``/``to`` echo the arguments."""

    @abc.abstractmethod
    async def check_rows(self, wards: Sequence[str], group_by: GroupBy, start: dt.date | None, end: dt.date | None) -> list[CheckRow]:
        """Checks grouped by ``group_by``, ordered by key."""

    @abc.abstractmethod
    async def checks_per_day(self, wards: Sequence[str], start: dt.date | None, end: dt.date | None) -> list[tuple[dt.date, int]]:
        """Live checks of each day that has any, oldest first (undated checks left out):
        read from the report counters, so a city's all-time chart does not pass over every check."""

    @abc.abstractmethod
    async def targets(self, wards: Sequence[str], period: str | None) -> list[TargetRow]:
        """Live targets of these wards (of one period, or all)."""

    @abc.abstractmethod
    async def conflicts(
        self, wards: Sequence[str], status: str | None, collection: str | None, after: int | None, limit: int
    ) -> list[Conflict]:
        """Conflicts of these wards, oldest first, after the conflict id ``after``."""

    @abc.abstractmethod
    async def conflict(self, conflict_id: int) -> Conflict | None: ...

    @abc.abstractmethod
    async def history(self, collection: str, record_id: str) -> RecordHistory | None:
        """Every applied edit of a record, oldest first (None: no such record)."""

    @abc.abstractmethod
    async def search_premises(self, wards: Sequence[str], terms: Sequence[str], kind: str | None, limit: int) -> list[PremisesHit]:
        """Live premises whose folded name, address or owner has every term as a word prefix, best first."""

    @abc.abstractmethod
    async def record_list(self, query: ListQuery) -> list[ListedRow]:
        """Live records of one collection in ``query.wards``, filtered, in the query's order,
        after ``query.after``; at most ``query.limit``. Raises CursorInvalid for a foreign position."""


class BlobRefStore(Protocol):
    """The attachments role: which blobs are uploaded, which records name them, quotas."""

    # PROTOCOL.md section 6b.
    # The bytes are in the blob store (``sync_server/blobs``); the record store keeps which
    # blobs are uploaded and which records name which blob, the latter written with each
    # record in the same transaction (``stores/blobrefs.py``).

    @abc.abstractmethod
    async def blob_access(self, blob_id: str, wards: Sequence[str]) -> BlobAccess:
        """Whether a record of ``wards`` names the blob, and its size if it is uploaded."""

    @abc.abstractmethod
    async def blob_stored(self, blob_id: str, size: int, uploader: str | None = None) -> None:
        """Note that the blob store now holds this blob (idempotent: the first uploader stays)."""

    @abc.abstractmethod
    async def unnamed_blob_bytes(self, uploader: str) -> int:
        """The bytes of the blobs ``uploader`` uploaded that no record names (their quota)."""

    @abc.abstractmethod
    async def forget_unnamed_blobs(self, stored_before: str, limit: int) -> list[str]:
        """Forget up to ``limit`` blobs stored before ``stored_before`` (ISO time) that no
        record names, and answer their ids: their bytes are to be removed next. A blob a
        record names meanwhile is kept (one statement decides)."""

    @abc.abstractmethod
    async def missing_blobs(self, wards: Sequence[str], after: str | None, limit: int) -> list[str]:
        """Blob ids named by records of ``wards`` and not uploaded, after ``after``, in id order."""


class FleetStore(Protocol):
    """The fleet-health role: what each device's requests told us, and reading it back."""

    @abc.abstractmethod
    async def record_health(self, updates: Sequence[HealthUpdate]) -> None: ...

    @abc.abstractmethod
    async def fleet_health(self, wards: Sequence[str] | None) -> list[DeviceHealth]:
        """Devices whose user works in one of ``wards`` (None: every device)."""


class Store(SyncStore, IdentityStore, SessionStore, ReportStore, BlobRefStore, FleetStore, Protocol):
    """Every role, and the store's lifecycle: what a backend implements (``sqlite``,
    ``postgresql``) and what the application holds. A service that needs one role is typed
    against that role only."""

    url: str

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect, and create or migrate the schema."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def ping(self) -> bool: ...
