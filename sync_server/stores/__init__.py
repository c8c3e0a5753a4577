"""Stores, chosen by URL scheme: ``sqlite://`` (embedded, default) or ``postgresql://``."""

from __future__ import annotations

from .base import ConflictRow, EditRow, Page, ReadTx, RecordRow, Store, StoredChangeset, WriteTx
from .errors import AlreadyExists, CursorExpired, CursorInvalid, NotFound, StoreError, StoreUnavailable, UnknownReference

__all__ = [
    "AlreadyExists",
    "ConflictRow",
    "CursorExpired",
    "CursorInvalid",
    "EditRow",
    "NotFound",
    "Page",
    "ReadTx",
    "RecordRow",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoredChangeset",
    "UnknownReference",
    "WriteTx",
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
            from .postgres import PostgresStore  # type: ignore[import-not-found]
        except ImportError as exc:
            raise ValueError(f"PostgreSQL support is not available: {exc}") from None
        return PostgresStore(url)  # type: ignore[no-any-return]
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///file.db or postgresql://...")
