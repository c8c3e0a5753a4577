"""Attachments: who may read which blob, uploads, the missing list. No HTTP, no SQL.

**Scope.** A caller may read (``HEAD``, ``GET``) a blob when a record of his wards
names it (``stores/blobrefs.py``: a present element of its ``photos``, tombstoned
records included). Otherwise the answer is 403, whether the blob is stored, named
by another ward's record, or unknown to everybody: the answer does not depend on
anything outside the caller's scope, so probing ids learns nothing (a 404 for
"nobody has it" would tell a caller which hashes other wards hold). A blob named in
scope but not uploaded yet is 404 (it is then in the missing list).

**Uploads** are open to any authenticated device, bounded by size
(``Settings.max_blob_bytes``): the SDK uploads a blob before the push that names it,
when no record names it yet. What no record names is bounded too: it counts against
its uploader's quota (``blob_quota_bytes``, 413 past it) and is removed
``blob_unnamed_ttl_s`` after its upload; an unfinished resumable upload is removed
``blob_staging_ttl_s`` after it began, however often it is topped up. An upload of a blob the server holds already is checked
(its bytes must hash to the id) and answers 200 without writing anything: knowing
that the server holds a photo takes having the photo.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterable, AsyncIterator
from typing import Literal

from schemas import BlobReceipt, MissingBlobs

from ..errors import (
    BadRequest,
    Forbidden,
    HashMismatch,
    NotFound,
    PayloadTooLarge,
    RangeNotSatisfiable,
    Unavailable,
    UploadOffsetMismatch,
)
from ..principal import Principal
from ..services.supervision import SupervisionService
from ..settings import Settings
from ..stores import BlobRefStore, StoreError
from .base import BlobMismatch, BlobStore, BlobTooLarge, ChunkTooLong, OffsetMismatch, Stored, UploadBusy, blob_hex
from .ranges import Unsatisfiable, parse_chunk_range, parse_range

__all__ = ["BlobRead", "BlobService"]

log = logging.getLogger("patrol_sync.blobs")


class BlobRead:
    """One download: the blob's size, the bytes ``[start, end)`` to send, and whether
    that is a part (206) or the whole (200)."""

    def __init__(self, store: BlobStore, blob_id: str, size: int, span: tuple[int, int] | None) -> None:
        self.blob_id = blob_id
        self.size = size
        self.partial = span is not None
        self.start, self.end = span if span is not None else (0, size)
        self._store = store

    def chunks(self) -> AsyncIterator[bytes]:
        return self._store.read(self.blob_id, self.start, self.end)


class BlobService:
    def __init__(self, store: BlobRefStore, blobs: BlobStore | None, settings: Settings) -> None:
        self.store = store
        self.blobs = blobs
        self.settings = settings
        self._sweeper: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        if self.blobs is None:
            log.warning("no blob storage: blob uploads and downloads answer 503 (set PATROL_SYNC_BLOB_DIR)")
            return
        await self.blobs.open()
        self._sweeper = asyncio.create_task(self._sweep_loop())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self.blobs is not None:
            await self.blobs.close()

    async def _sweep_loop(self) -> None:
        """Drop what dead uploads left, and blobs no record named in time: at start-up,
        then every hour (or sooner for short TTLs)."""
        assert self.blobs is not None
        ttl = self.settings.blob_staging_ttl_s
        unnamed_ttl = self.settings.blob_unnamed_ttl_s
        while True:
            try:
                gone = await self.blobs.sweep(ttl)
                if gone:
                    log.info("blob store: removed %d stale upload files", gone)
                expired = await self.sweep_unnamed()
                if expired:
                    log.info("blob store: removed %d blobs no record named within %g s", expired, unnamed_ttl)
            except (OSError, StoreError) as exc:
                log.warning("blob store sweep failed: %s", exc)
            await asyncio.sleep(max(1.0, min(3600.0, min(ttl, unnamed_ttl) / 2)))

    async def sweep_unnamed(self) -> int:
        """Remove the blobs no record names, uploaded over ``blob_unnamed_ttl_s`` ago."""
        assert self.blobs is not None
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.settings.blob_unnamed_ttl_s)
        stored_before = cutoff.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        removed = 0
        while ids := await self.store.forget_unnamed_blobs(stored_before, 500):
            for blob_id in ids:
                await self.blobs.remove(blob_id)
            removed += len(ids)
        return removed

    def _store(self) -> BlobStore:
        if self.blobs is None:
            raise Unavailable("this server has no blob storage configured (PATROL_SYNC_BLOB_DIR; required with PostgreSQL)")
        return self.blobs

    @staticmethod
    def check_id(blob_id: str) -> None:
        """404 for anything that is not ``sha256:`` and 64 lowercase hex digits: no such
        blob can exist, and nothing of it reaches the disk."""
        try:
            blob_hex(blob_id)
        except ValueError:
            raise NotFound("no such blob: a blob id is sha256: and 64 lowercase hex digits") from None

    # -- reads ------------------------------------------------------------------------

    async def _offset_header(self, principal: Principal, blob_id: str) -> dict[str, str]:
        """``Upload-Offset``: how much of this caller's resumable upload the server holds."""
        if self.blobs is None or not self.blobs.resumable:
            return {}
        return {"Upload-Offset": str(await self.blobs.staged(blob_id, principal.device_id))}

    async def size(self, principal: Principal, blob_id: str) -> int:
        """The size of a blob the caller may read; Forbidden or NotFound (with ``Upload-Offset``)."""
        self.check_id(blob_id)
        access = await self.store.blob_access(blob_id, sorted(principal.wards))
        if not access.named:
            headers = await self._offset_header(principal, blob_id)
            raise Forbidden("no record of your wards names this blob", headers=headers)
        size = await self._store().size(blob_id)
        if size is None:
            if access.size is not None:
                log.error("blob %s is recorded as stored but its bytes are missing from the blob store", blob_id)
            raise NotFound("this blob has not been uploaded yet", headers=await self._offset_header(principal, blob_id))
        if access.size is None:  # stored, but the note of it was lost (a crash between the two): note it now
            await self.store.blob_stored(blob_id, size)
        return size

    async def read(self, principal: Principal, blob_id: str, range_header: str | None) -> BlobRead:
        size = await self.size(principal, blob_id)
        try:
            span = parse_range(range_header, size)
        except Unsatisfiable:
            raise RangeNotSatisfiable(f"the blob has {size} bytes", headers={"Content-Range": f"bytes */{size}"}) from None
        return BlobRead(self._store(), blob_id, size, span)

    # -- uploads ----------------------------------------------------------------------

    async def upload(
        self, principal: Principal, blob_id: str, body: AsyncIterable[bytes], content_range: str | None, declared: int | None = None
    ) -> tuple[BlobReceipt, Literal[200, 201, 202]]:
        """A whole blob (``declared``: its Content-Length, if sent), or one chunk of a
        resumable upload (``Content-Range``)."""
        self.check_id(blob_id)
        blobs = self._store()
        limit = self.settings.max_blob_bytes
        try:
            if content_range is None:
                await self._within_quota(principal, blob_id, declared or 0)
                stored = await blobs.put(blob_id, body, limit)
                total = stored.offset
            else:
                try:
                    chunk = parse_chunk_range(content_range)
                except ValueError as exc:
                    raise BadRequest(str(exc)) from None
                if chunk.total > limit:
                    raise PayloadTooLarge(f"a blob may have at most {limit} bytes, not {chunk.total}")
                if not blobs.resumable:
                    raise BadRequest("this server's blob store takes whole uploads only: send the blob without Content-Range")
                total = chunk.total
                await self._within_quota(principal, blob_id, total)
                stored = await blobs.append(blob_id, principal.device_id, chunk.start, chunk.end, chunk.total, body)
        except BlobMismatch as exc:
            raise HashMismatch(str(exc)) from None
        except BlobTooLarge:
            raise PayloadTooLarge(f"a blob may have at most {limit} bytes") from None
        except ChunkTooLong:
            raise BadRequest("the body is longer than its Content-Range says") from None
        except OffsetMismatch as exc:
            headers = {"Upload-Offset": str(exc.offset)}
            if isinstance(exc, UploadBusy):
                headers["Retry-After"] = "1"
            raise UploadOffsetMismatch(str(exc), headers=headers) from None
        return await self._receipt(principal, blob_id, total, stored)

    async def _within_quota(self, principal: Principal, blob_id: str, size: int) -> None:
        """413 when this upload would take the caller's blobs no record names past his quota
        (a blob stored already, or one a record of his wards names, costs nothing)."""
        quota = self.settings.blob_quota_bytes
        access = await self.store.blob_access(blob_id, sorted(principal.wards))
        if access.named or access.size is not None:
            return
        used = await self.store.unnamed_blob_bytes(principal.user_id)
        if used + size > quota or used >= quota:
            raise PayloadTooLarge(
                f"your uploads no record names hold {used} bytes; with this one they would pass your quota of {quota} bytes. "
                "Push the records that name them, or wait for them to expire"
            )

    async def _receipt(self, principal: Principal, blob_id: str, total: int, stored: Stored) -> tuple[BlobReceipt, Literal[200, 201, 202]]:
        if not stored.complete:
            return BlobReceipt(id=blob_id, size=total, offset=stored.offset, stored=False), 202
        await self.store.blob_stored(blob_id, stored.offset, principal.user_id)  # also when it was there: heals a lost note
        return BlobReceipt(id=blob_id, size=stored.offset, offset=stored.offset, stored=True), 201 if stored.created else 200

    # -- the missing list -------------------------------------------------------------------

    async def missing(self, principal: Principal, ward: str | None, after: str | None, limit: int) -> MissingBlobs:
        wards = SupervisionService.wards(principal, ward)
        ids = await self.store.missing_blobs(wards, after, limit + 1)
        more = len(ids) > limit
        ids = ids[:limit]
        return MissingBlobs(ids=ids, next=ids[-1] if more and ids else None)
