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
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager

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
    User,
    Ward,
)

from ..engine.state import RecordState
from ..principal import Principal

__all__ = [
    "BlobAccess",
    "ConflictRow",
    "EditRow",
    "Key",
    "HealthUpdate",
    "Page",
    "ReadTx",
    "RecordRow",
    "ResolvedConflict",
    "Store",
    "StoredChangeset",
    "TargetRow",
    "WriteTx",
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


class Store(abc.ABC):
    url: str

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect, and create or migrate the schema."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def ping(self) -> bool: ...

    @abc.abstractmethod
    def read(self) -> AbstractAsyncContextManager[ReadTx]:
        """Reads outside any write transaction (their results are checked again in one)."""

    @abc.abstractmethod
    def write(self) -> AbstractAsyncContextManager[WriteTx]: ...

    @abc.abstractmethod
    async def pull(
        self, wards: frozenset[str] | None, cursor: str | None, limit: int, collections: frozenset[str] | None
    ) -> Page:
        """Records changed after ``cursor`` in commit order, each once as it now stands.

        ``wards`` None means every ward. Raises CursorInvalid or CursorExpired.
        """

    # -- identity -------------------------------------------------------------

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
    async def revoke_device(self, device_id: str) -> None:
        """Revoke a device's token at once. Raises NotFound."""

    # -- supervision (PROTOCOL.md sections 6, 6c, 6d) --------------------------------
    # ``wards`` is always a concrete list (the caller's scope or the asked ward);
    # ``start``/``end`` are local days, both inclusive, None for open ends.

    @abc.abstractmethod
    async def summary(self, wards: Sequence[str], start: dt.date | None, end: dt.date | None) -> SummaryReport:
        """Counts over live records (see ``projections``); ``wards``/``from_``/``to`` echo the arguments."""

    @abc.abstractmethod
    async def check_rows(self, wards: Sequence[str], group_by: GroupBy, start: dt.date | None, end: dt.date | None) -> list[CheckRow]:
        """Checks grouped by ``group_by``, ordered by key."""

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
    async def record_health(self, updates: Sequence[HealthUpdate]) -> None: ...

    @abc.abstractmethod
    async def fleet_health(self, wards: Sequence[str] | None) -> list[DeviceHealth]:
        """Devices whose user works in one of ``wards`` (None: every device)."""

    # -- attachments (PROTOCOL.md section 6b) ---------------------------------------------
    # The bytes are in the blob store (``sync_server/blobs``); the record store keeps which
    # blobs are uploaded and which records name which blob, the latter written with each
    # record in the same transaction (``stores/blobrefs.py``).

    @abc.abstractmethod
    async def blob_access(self, blob_id: str, wards: Sequence[str]) -> BlobAccess:
        """Whether a record of ``wards`` names the blob, and its size if it is uploaded."""

    @abc.abstractmethod
    async def blob_stored(self, blob_id: str, size: int) -> None:
        """Note that the blob store now holds this blob (idempotent)."""

    @abc.abstractmethod
    async def missing_blobs(self, wards: Sequence[str], after: str | None, limit: int) -> list[str]:
        """Blob ids named by records of ``wards`` and not uploaded, after ``after``, in id order."""
