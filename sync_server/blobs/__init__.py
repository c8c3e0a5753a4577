"""Attachments (PROTOCOL.md section 6b): blob storage and the rules around it.

- ``base``: the blob store interface (bytes only, content-addressed, immutable);
- ``files``: the filesystem store, a folder beside the SQLite file by default;
- ``ranges``: ``Range`` and ``Content-Range`` parsing;
- ``service``: scope, uploads (whole or resumable), downloads, the missing list.

The HTTP side is ``controllers/blobs.py``, where the protocol extension for
resumable uploads is written out.
"""

from __future__ import annotations

from pathlib import Path

from ..settings import Settings
from .base import BlobError, BlobMismatch, BlobStore, BlobTooLarge, ChunkTooLong, OffsetMismatch, Stored, UploadBusy, blob_hex, blob_id_of
from .files import FileBlobStore
from .service import BlobRead, BlobService

__all__ = [
    "BlobError",
    "BlobMismatch",
    "BlobRead",
    "BlobService",
    "BlobStore",
    "BlobTooLarge",
    "ChunkTooLong",
    "FileBlobStore",
    "OffsetMismatch",
    "Stored",
    "UploadBusy",
    "blob_dir_for",
    "blob_hex",
    "blob_id_of",
    "blob_store_for",
]


def blob_dir_for(settings: Settings) -> Path | None:
    """``Settings.blob_dir``; by default the folder beside a SQLite file (``x.db`` ->
    ``x.blobs``). None for PostgreSQL without one: its workers may run on several
    hosts, and only the operator knows which volume they share."""
    if settings.blob_dir:
        return Path(settings.blob_dir)
    if settings.db_url.startswith("sqlite:"):
        from ..stores.sqlite import path_from_url

        database = path_from_url(settings.db_url)
        folder = database.with_suffix(".blobs")
        return folder if folder != database else database.with_name(database.name + ".blobs")
    return None


def blob_store_for(settings: Settings) -> BlobStore | None:
    folder = blob_dir_for(settings)
    return FileBlobStore(folder) if folder is not None else None
