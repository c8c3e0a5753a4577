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
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager

from schemas import Device, DeviceToken, Team, User, Ward

from ..engine.state import RecordState
from ..principal import Principal

__all__ = ["ConflictRow", "EditRow", "Page", "ReadTx", "RecordRow", "Store", "StoredChangeset", "WriteTx"]

Key = tuple[str, str]  # (collection, id)


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
