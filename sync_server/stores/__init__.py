"""Stores, chosen by URL scheme: ``sqlite://`` (embedded, default) or ``postgresql://``."""

from __future__ import annotations

from .base import (
    BlobAccess,
    ConflictRow,
    ConsoleSession,
    EditRow,
    HealthUpdate,
    ListedRow,
    ListQuery,
    Page,
    ReadTx,
    RecordRow,
    ResolvedConflict,
    Store,
    StoredChangeset,
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
    "ConflictRow",
    "ConsoleSession",
    "CursorExpired",
    "CursorInvalid",
    "EditRow",
    "HealthUpdate",
    "ListQuery",
    "ListedRow",
    "NotFound",
    "Page",
    "ReadTx",
    "RecordRow",
    "ResolvedConflict",
    "SchemaStatus",
    "SchemaTooNew",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoredChangeset",
    "TargetRow",
    "UnknownReference",
    "WriteTx",
    "schema_status",
    "store_for",
]


def store_for(url: str) -> Store:
    """The store for a database URL (not opened yet)."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from .sqlite import SqliteStore

        return SqliteStore(url)
    if scheme in ("postgresql", "postgres"):
        try:
            from .postgres import PostgresStore
        except ImportError as exc:
            raise ValueError(f"PostgreSQL support is not available: {exc}") from None
        return PostgresStore(url)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///file.db or postgresql://...")
