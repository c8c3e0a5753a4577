"""Attachments on the device, and their way to and from the server (PROTOCOL.md 6b).

A photo is kept in the device's store (table ``blobs``) under its id, ``sha256:``
and the hex digest of its bytes, from the moment the app hands it over
(``put_blob``): a record names it in a ``photos`` field, offline, and ``sync()``
uploads every blob that a pending edit or a record on the device names, *after* the
records have gone (a photo never holds records back; the server lists it as missing
meanwhile). Chunks are sized from the link as measured: about ten seconds of it each
(16 KiB to ``chunk_bytes``), so a cut costs at most one chunk and no request has to
outlast a timeout. Three ways up:

- a blob no larger than the current chunk goes in one ``PUT``. Content addressing
  makes the request idempotent, so it is retried like a push: after a lost answer
  the server finds the blob stored and answers 200 again;
- a larger one goes in chunks (the server's resumable-upload extension,
  ``Content-Range: bytes a-b/total``). A chunk is sent once; after a cut the SDK
  first asks (``HEAD``, ``Upload-Offset``) how much the server kept, and goes on from
  there, with smaller chunks. A sync whose link gives out keeps its records pushed
  and pulled, warns ``blob_pending``, and the next one resumes the same way;
- a server whose blob store takes whole uploads only (400 to a chunk) gets the
  whole blob.

A blob the server refuses (422: its bytes do not hash to its id, i.e. the device's
copy is damaged; 413: over the server's limit) never blocks the outbox: the sync
reports it as a warning (``blob_refused``) and pushes the edits; the server lists
the blob as missing, for a supervisor to chase.

Downloads (``get_blob``) read the device's copy first; otherwise the blob is fetched
in ranges of ``chunk_bytes`` (each retried on its own, so a flaky link never starts
a large photo over), checked against its id, and kept on the device.

Memory stays bounded by one chunk on the way up (chunks are read from the store
with ``substr``) and by one blob on the way down.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from schemas import BLOB_ID_PATTERN, BlobReceipt, MissingBlobs, Warning

from ._http import Http, Reply, decode
from ._localdb import LocalDB, fetch_all, scalar
from ._values import decode_pending
from .errors import InvalidEdit, InvalidRequestError, ProtocolError, RecordNotFound, TransportError, UnavailableError

__all__ = ["Blobs"]

MiB = 1024 * 1024
_BLOB_ID = re.compile(BLOB_ID_PATTERN)
_OCTETS = {"Content-Type": "application/octet-stream"}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
#: 409s in a row (another request of this device holds the staged part) before giving up
_BUSY_ROUNDS = 20
#: upload chunks: about this many seconds of the link each, within these bounds
_CHUNK_SECONDS = 10.0
_MIN_CHUNK = 16 * 1024
_FIRST_CHUNK = 64 * 1024
_NAMED = re.compile(r"sha256:[0-9a-f]{64}")


def blob_id_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _check_id(blob_id: str) -> str:
    if not isinstance(blob_id, str) or _BLOB_ID.fullmatch(blob_id) is None:
        raise InvalidEdit(f"not a blob id: {str(blob_id)[:80]!r} (sha256: and 64 lowercase hex digits)")
    return blob_id


class Blobs:
    def __init__(self, db: LocalDB, http: Http, *, chunk_bytes: int = 4 * MiB) -> None:
        if chunk_bytes < 64 * 1024:
            raise ValueError("chunk_bytes must be at least 64 KiB")
        self.db = db
        self.http = http
        self.chunk_bytes = chunk_bytes
        #: the next upload chunk: about ``_CHUNK_SECONDS`` of the link as last measured
        self.chunk = min(chunk_bytes, _FIRST_CHUNK)

    def _measured(self, sent: int, seconds: float) -> None:
        """Size the next chunk from the last one's speed (PUT sent to answer read)."""
        if sent >= _MIN_CHUNK and seconds > 0:
            self.chunk = int(min(self.chunk_bytes, max(_MIN_CHUNK, sent / seconds * _CHUNK_SECONDS)))

    # -- on the device ----------------------------------------------------------------

    async def put(self, data: bytes | bytearray | memoryview) -> str:
        data = bytes(data)
        blob_id = blob_id_of(data)
        async with self.db.transaction() as conn:
            await conn.execute("INSERT OR IGNORE INTO blobs (id, data) VALUES (?, ?)", (blob_id, data))
        return blob_id

    async def put_file(self, path: str | os.PathLike[str]) -> str:
        return await self.put(await asyncio.to_thread(Path(path).read_bytes))

    async def local(self, blob_id: str) -> bytes | None:
        async with self.db.transaction() as conn:
            data = await scalar(conn, "SELECT data FROM blobs WHERE id = ?", (_check_id(blob_id),))
        return None if data is None else bytes(data)

    async def not_uploaded(self) -> list[str]:
        """Blobs kept on the device that the server has not confirmed (named or not)."""
        async with self.db.transaction() as conn:
            return [row[0] for row in await fetch_all(conn, "SELECT id FROM blobs WHERE uploaded = 0 ORDER BY id")]

    # -- up -------------------------------------------------------------------------

    async def upload_named(self, warnings: list[Warning], progress: Callable[[int], None] | None = None) -> int:
        """Upload the blobs that pending edits name; answers how many went up."""
        async with self.db.transaction() as conn:
            waiting = {row[0] for row in await fetch_all(conn, "SELECT id FROM blobs WHERE uploaded = 0")}
            named: set[str] = set()
            if waiting:
                for (change,) in await fetch_all(conn, "SELECT change FROM outbox"):
                    pending = decode_pending(change)
                    named |= {e for s in pending.sets.values() for e, (present, _) in s.elements.items() if present}
                # records pushed already (photos go up after their records)
                for (fields,) in await fetch_all(conn, "SELECT fields FROM records WHERE instr(fields, CAST('sha256:' AS BLOB)) > 0"):
                    named |= {m.group(0) for m in _NAMED.finditer(bytes(fields).decode("utf-8", "replace"))}
        done = 0
        for blob_id in sorted(waiting & named):
            try:
                await self.upload(blob_id)
            except InvalidRequestError as exc:  # 413 or 422: this copy will never be taken; the edits go on
                warnings.append(Warning(code="blob_refused", detail=f"{blob_id}: {exc.problem.detail or exc.problem.title}"))
                continue
            except (TransportError, UnavailableError) as exc:  # the link gave out: the next sync resumes it
                warnings.append(Warning(code="blob_pending", detail=f"{blob_id}: not uploaded yet ({exc}); the next sync resumes it"))
                break
            done += 1
            if progress is not None:
                progress(done)
        return done

    async def upload(self, blob_id: str) -> None:
        """Send one kept blob to the server (whole, or in chunks when large), then mark it."""
        async with self.db.transaction() as conn:
            size = await scalar(conn, "SELECT length(data) FROM blobs WHERE id = ?", (_check_id(blob_id),))
        if size is None:
            raise RecordNotFound(f"no blob {blob_id} on this device")
        if size <= self.chunk or not await self._upload_in_chunks(blob_id, int(size)):
            await self._upload_whole(blob_id)
        async with self.db.transaction() as conn:
            await conn.execute("UPDATE blobs SET uploaded = 1 WHERE id = ?", (blob_id,))

    async def _upload_whole(self, blob_id: str) -> None:
        data = await self.local(blob_id)
        assert data is not None
        started = time.monotonic()
        reply = await self.http.send("PUT", f"/v1/blobs/{blob_id}", content=data, headers=_OCTETS, safe=True)
        self._measured(len(data), time.monotonic() - started)
        self._check_receipt(decode(reply, BlobReceipt), blob_id, len(data))

    async def _upload_in_chunks(self, blob_id: str, size: int) -> bool:
        """The resumable way; False when the server takes whole uploads only."""
        path = f"/v1/blobs/{blob_id}"
        head = await self.http.send("HEAD", path, safe=True, expect=frozenset({403, 404}))
        if head.status_code == 200:  # stored already, and readable by this device
            return True
        offset = _offset(head)
        busy = 0
        cuts = 0
        while True:
            if offset >= size:  # a full part the server did not publish (cannot happen): start over
                offset = 0
            end = min(size, offset + self.chunk)
            async with self.db.transaction() as conn:
                chunk = await scalar(conn, "SELECT substr(data, ?, ?) FROM blobs WHERE id = ?", (offset + 1, end - offset, blob_id))
            headers = {**_OCTETS, "Content-Range": f"bytes {offset}-{end - 1}/{size}"}
            started = time.monotonic()
            try:
                # one attempt: after a cut, the server may hold part of this chunk, so ask
                # where its part ends before sending anything again
                reply = await self.http.send("PUT", path, content=bytes(chunk), headers=headers, safe=True, expect=frozenset({409}), attempts=1)
            except InvalidRequestError as exc:
                if exc.problem.status == 400 and offset == 0 and "whole uploads" in (exc.problem.detail or ""):
                    return False
                raise
            except (TransportError, UnavailableError):
                cuts += 1
                if cuts >= max(1, self.http.retry.attempts):
                    raise
                self.chunk = max(_MIN_CHUNK, self.chunk // 2)  # a link that cuts: smaller chunks lose less
                await self.http.sleep(self.http.retry.delay(cuts - 1, self.http.rng))
                head = await self.http.send("HEAD", path, safe=True, expect=frozenset({403, 404}))
                if head.status_code == 200:
                    return True
                offset = _offset(head)
                continue
            self._measured(end - offset, time.monotonic() - started)
            if reply.status_code == 409:  # not where the server's part ends (a resend after a cut), or busy
                busy += 1
                if busy > _BUSY_ROUNDS:
                    raise ProtocolError(f"PUT {path}: the server keeps refusing the chunk at byte {offset}")
                if "retry-after" in reply.headers:
                    await self.http.sleep(min(5.0, float(reply.headers.get("retry-after") or 1)))
                offset = _offset(reply)
                continue
            receipt = decode(reply, BlobReceipt)
            if receipt.stored:
                self._check_receipt(receipt, blob_id, size)
                return True
            busy = cuts = 0
            offset = receipt.offset

    @staticmethod
    def _check_receipt(receipt: BlobReceipt, blob_id: str, size: int) -> None:
        if not receipt.stored or receipt.id != blob_id or receipt.size != size:
            raise ProtocolError(f"PUT /v1/blobs/{blob_id}: the receipt does not confirm the blob ({receipt})")

    # -- down -----------------------------------------------------------------------

    async def get(self, blob_id: str, *, fetch: bool = True) -> bytes:
        """The blob's bytes: the device's copy, or (``fetch``) the server's, kept from then on."""
        data = await self.local(blob_id)
        if data is not None:
            return data
        if not fetch:
            raise RecordNotFound(f"no blob {blob_id} on this device")
        data = await self._download(blob_id)
        async with self.db.transaction() as conn:
            await conn.execute("INSERT OR IGNORE INTO blobs (id, data, uploaded) VALUES (?, ?, 1)", (blob_id, data))
        return data

    async def _download(self, blob_id: str) -> bytes:
        path = f"/v1/blobs/{blob_id}"
        received = bytearray()
        total: int | None = None
        while total is None or len(received) < total:
            last = len(received) + self.chunk_bytes - 1
            reply = await self.http.send("GET", path, headers={"Range": f"bytes={len(received)}-{last}"}, safe=True, expect=frozenset({416}))
            if reply.status_code == 416:  # an empty blob has no byte to range over
                total = 0
                break
            if reply.status_code == 200:  # the whole blob (a server that ignores ranges)
                received = bytearray(reply.content)
                break
            match = _CONTENT_RANGE.fullmatch(reply.headers.get("content-range", ""))
            if reply.status_code != 206 or match is None or int(match.group(1)) != len(received) or not reply.content:
                raise ProtocolError(f"GET {path}: an answer that is not the range asked for")
            received += reply.content
            total = int(match.group(3))
        data = bytes(received)
        if blob_id_of(data) != blob_id:
            raise ProtocolError(f"GET {path}: the {len(data)} bytes received do not hash to the blob's id; nothing kept")
        return data

    async def missing(self, ward: str | None = None) -> list[str]:
        """Every blob id the server's records of the caller's wards name and nobody uploaded."""
        ids: list[str] = []
        after: str | None = None
        while True:
            page = await self.http.get("/v1/blobs/missing", MissingBlobs, {"ward": ward, "after": after})
            ids.extend(page.ids)
            if page.next is None:
                return ids
            after = page.next


def _offset(reply: Reply) -> int:
    """``Upload-Offset``: the bytes of this device's upload the server holds (0: none)."""
    try:
        return max(0, int(reply.headers.get("upload-offset", "0")))
    except ValueError:
        raise ProtocolError("an Upload-Offset that is not a number") from None

