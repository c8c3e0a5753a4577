"""The store interface: everything the server keeps, behind a few async methods.

Each backend (``sqlite``, ``postgresql``) is a module of its own; the sync service
drives them through this interface and never sees SQL.  A push runs inside
:meth:`Store.write`, one transaction that either commits everything or nothing::

    async with store.write() as tx:
        prior = await tx.changeset(device_id, changeset_id)
        current = await tx.records(keys)
        first_seq = await tx.next_seqs(n)
        ids = await tx.save(records, edits, conflicts)
        await tx.remember(device_id, changeset_id, body_hash, answer)
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager

from schemas import Device, DeviceToken, Team, User, Ward

from ..engine.state import RecordState
from ..principal import Principal

__all__ = ["ConflictRow", "EditRow", "Page", "RecordRow", "Store", "StoredChangeset", "WriteTx"]

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
    body_hash: bytes
    response: bytes


@dataclasses.dataclass(slots=True)
class Page:
    """One pull page: stored record documents, the cursor after them, and whether more wait."""

    docs: list[bytes]
    cursor: str
    more: bool


class WriteTx(abc.ABC):
    """One write transaction (see the module docstring)."""

    @abc.abstractmethod
    async def changeset(self, device_id: str, changeset_id: str) -> StoredChangeset | None: ...

    @abc.abstractmethod
    async def records(self, keys: Sequence[Key]) -> dict[Key, RecordState]: ...

    @abc.abstractmethod
    async def next_seqs(self, count: int) -> int:
        """Reserve ``count`` consecutive sequence numbers; returns the first."""

    @abc.abstractmethod
    async def save(self, records: Sequence[RecordRow], edits: Sequence[EditRow], conflicts: Sequence[ConflictRow]) -> list[int]:
        """Write record versions, edit-log rows and conflicts; returns the conflicts' ids."""

    @abc.abstractmethod
    async def remember(self, device_id: str, changeset_id: str, body_hash: bytes, response: bytes) -> None:
        """Keep a change set's answer so that a retry gets the same one."""

    @abc.abstractmethod
    async def cursor(self) -> str:
        """The pull position just after this transaction's writes."""


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
