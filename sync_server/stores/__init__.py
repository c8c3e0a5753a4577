"""Stores, chosen by URL scheme: ``sqlite://`` (embedded, default) or ``postgresql://``.

The interface is split by role (``base.py``), each a protocol a service is typed against
when it needs no other; :class:`Store` is their union, what a backend implements:

- :class:`SyncStore`: push transactions (``read``/``write``, the push writer's) and pull
  pages behind opaque cursors (``_paging.py``: one ``pull`` for every backend);
- :class:`IdentityStore`: wards, teams, users, devices, tokens, enrolment codes;
  :class:`SessionStore`: the console's passwords, sessions and failed sign-ins;
- :class:`ReportStore`: reports over the projections, conflicts, history, search, lists;
- :class:`BlobRefStore`: which blobs are uploaded and named, and upload quotas;
- :class:`FleetStore`: each device's health, upserted and read back.

Rows become Structs by column name, the same way for both backends (``_rows.py``). What
every backend promises, the writer's transaction contract included, is checked on each
by one suite: ``tests/stores/test_contract.py``.
"""

from __future__ import annotations

from .base import (
    BlobAccess,
    BlobRefStore,
    ConflictRow,
    ConsoleSession,
    EditRow,
    FleetStore,
    Heads,
    HealthUpdate,
    IdentityStore,
    ListedRow,
    ListQuery,
    OneHopWrites,
    Page,
    PlannedWrite,
    ReadTx,
    RecordRow,
    ReportStore,
    ResolvedConflict,
    SessionStore,
    Store,
    StoredChangeset,
    SyncStore,
    TargetRow,
    WriteTx,
)
from .errors import (
    AlreadyExists,
    CursorExpired,
    CursorInvalid,
    NotFound,
    SchemaTooNew,
    StoreError,
    StoreUnavailable,
    UnknownReference,
)
from .schema import SchemaStatus, schema_status

__all__ = [
    "AlreadyExists",
    "BlobAccess",
    "BlobRefStore",
    "ConflictRow",
    "ConsoleSession",
    "CursorExpired",
    "CursorInvalid",
    "EditRow",
    "FleetStore",
    "HealthUpdate",
    "Heads",
    "IdentityStore",
    "ListQuery",
    "ListedRow",
    "NotFound",
    "OneHopWrites",
    "Page",
    "PlannedWrite",
    "ReadTx",
    "RecordRow",
    "ReportStore",
    "ResolvedConflict",
    "SchemaStatus",
    "SchemaTooNew",
    "SessionStore",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoredChangeset",
    "SyncStore",
    "TargetRow",
    "UnknownReference",
    "WriteTx",
    "schema_status",
    "store_for",
]


def store_for(url: str, *, sqlite_writer: str = "process") -> Store:
    """The store for a database URL (not opened yet); ``sqlite_writer``: ``Settings.sqlite_writer``."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from .sqlite import SqliteStore

        return SqliteStore(url, writer_process=sqlite_writer == "process")
    if scheme in ("postgresql", "postgres"):
        try:
            from .postgres import PostgresStore
        except ImportError as exc:
            raise ValueError(f"PostgreSQL support is not available: {exc}") from None
        return PostgresStore(url)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///file.db or postgresql://...")
