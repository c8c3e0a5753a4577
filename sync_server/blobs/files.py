"""The filesystem blob store: one folder, by default beside the SQLite file
(``patrol-sync.db`` -> ``patrol-sync.blobs/``), or a shared volume for many workers.

Layout::

    <root>/sha256/ab/cd/abcd...           stored blobs, named by their 64 hex digits,
                                          sharded by the first four (65,536 folders at most)
    <root>/tmp/<hex>.<random>.tmp         whole uploads being received
    <root>/staging/<hex>.<owner>.part     resumable uploads: one part per (blob, owner)

File names come from the validated hex digits only (``base.blob_hex``), never from a
client's string; an owner (a device id) is hashed into its name.

**Nobody sees a partial blob.** An upload is written to a file of its own in
``tmp/`` (or its staged part), hashed as it arrives, checked, ``fsync``-ed, then
renamed to its final name (``rename`` is atomic within one filesystem, hence the
temporary folders inside the root), and the folder ``fsync``-ed so the name survives
a power cut. A reader opens either nothing or the whole blob.

**Several workers, one volume.** Each upload writes its own temporary file, so two
workers receiving the same blob never write the same file; both rename theirs to
the same name, with the same bytes (content addressing), and a reader holding the
first one open keeps reading it. A blob already stored is never written again: its
upload is hashed and dropped. Appends to a staged part take an exclusive ``flock``
on it (without waiting: a second request gets ``UploadBusy``), so two requests of one
device never interleave their bytes; different devices stage different parts. The
volume must support ``rename`` and ``flock`` across its clients (local disks; NFSv4).

**Blocking work runs on threads,** 1 MiB at a time (hashing and writing release the
GIL), never on the event loop; and it is never abandoned half-way: a request
cancelled mid-upload waits for the thread's last write before it closes the file
(a closed descriptor's number may be reused at once by another open, and a late
write would land there).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import os
import re
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from schemas import BLOB_ID_PATTERN

from .base import BlobMismatch, BlobStore, BlobTooLarge, ChunkTooLong, OffsetMismatch, Stored, UploadBusy, blob_hex

__all__ = ["FileBlobStore", "fsync_path"]

T = TypeVar("T")
_BLOB_ID = re.compile(BLOB_ID_PATTERN)
_STEP = 1024 * 1024  # bytes handed to a thread at a time
_READ = 256 * 1024  # bytes read at a time for a download


class _Offload:
    """Blocking calls on threads, one at a time, each finished even if the caller is cancelled."""

    def __init__(self) -> None:
        self._last: asyncio.Future[Any] | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        await self.settle()
        future: asyncio.Future[T] = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        self._last = future
        return await asyncio.shield(future)

    async def settle(self) -> None:
        """Wait for the last call to end (its outcome is its caller's business)."""
        last = self._last
        if last is not None and not last.done():
            await asyncio.wait([last])


class _Sink:
    """Counts, hashes (optionally) and writes a body as it arrives (to ``fd``, or nowhere)."""

    def __init__(self, offload: _Offload, fd: int | None, *, start: int, limit: int, too_much: type[Exception], hashed: bool = True) -> None:
        self.offload = offload
        self.fd = fd
        self.size = start  # bytes written so far (from the start of the file)
        self.limit = limit
        self.too_much = too_much
        self.hash = hashlib.sha256() if hashed else None
        self._buffer = bytearray()

    async def feed(self, chunk: bytes) -> None:
        if self.size + len(self._buffer) + len(chunk) > self.limit:
            raise self.too_much(f"more than {self.limit} bytes")
        self._buffer += chunk
        if len(self._buffer) >= _STEP:
            await self.flush()

    async def flush(self) -> None:
        if self._buffer:
            data = bytes(self._buffer)
            self._buffer.clear()
            self.size += len(data)  # written even if this caller is cancelled meanwhile (_Offload)
            await self.offload.run(self._write, data)

    def _write(self, data: bytes) -> None:
        if self.hash is not None:
            self.hash.update(data)
        if self.fd is not None:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]

    def hexdigest(self) -> str:
        assert self.hash is not None
        return self.hash.hexdigest()

    async def drain(self, chunks: AsyncIterable[bytes], blob_id: str) -> None:
        """Take the whole body, then check that it hashes to ``blob_id`` (BlobMismatch)."""
        async for chunk in chunks:
            await self.feed(chunk)
        await self.flush()
        if self.hexdigest() != blob_hex(blob_id):
            raise BlobMismatch(f"the {self.size} bytes received hash to sha256:{self.hexdigest()}, not {blob_id}")


def fsync_path(path: Path) -> None:
    """fsync a file or a folder by name (a folder: so that the names in it survive a power cut)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _hash_fd(fd: int) -> str:
    digest = hashlib.sha256()
    os.lseek(fd, 0, os.SEEK_SET)
    while data := os.read(fd, _STEP):
        digest.update(data)
    return digest.hexdigest()


class FileBlobStore(BlobStore):
    """Blobs as files under ``root`` (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._blobs = self.root / "sha256"
        self._tmp = self.root / "tmp"
        self._staging = self.root / "staging"

    async def open(self) -> None:
        await asyncio.to_thread(self._make_folders)

    def _make_folders(self) -> None:
        for folder in (self.root, self._blobs, self._tmp, self._staging):
            self._ensure_dir(folder)

    def _ensure_dir(self, folder: Path) -> None:
        """Create a folder (and its parents), each new name made durable in its parent."""
        if folder.is_dir():
            return
        self._ensure_dir(folder.parent)
        with contextlib.suppress(FileExistsError):
            folder.mkdir()
            fsync_path(folder.parent)

    def path(self, blob_id: str) -> Path:
        hex_ = blob_hex(blob_id)
        return self._blobs / hex_[:2] / hex_[2:4] / hex_

    def stored(self) -> Iterator[tuple[str, Path]]:
        """Every stored blob's id and file, in id order (blocking: for tools, not requests)."""
        for path in sorted(self._blobs.glob("??/??/*")):
            blob_id = f"sha256:{path.name}"
            if path.is_file() and _BLOB_ID.fullmatch(blob_id) and path == self.path(blob_id):
                yield blob_id, path

    def _part(self, blob_id: str, owner: str) -> Path:
        owner_key = hashlib.sha256(owner.encode("utf-8", "surrogatepass")).hexdigest()[:24]
        return self._staging / f"{blob_hex(blob_id)}.{owner_key}.part"

    # -- reads ------------------------------------------------------------------------

    async def size(self, blob_id: str) -> int | None:
        path = self.path(blob_id)
        try:
            return (await asyncio.to_thread(os.stat, path)).st_size
        except FileNotFoundError:
            return None

    async def read(self, blob_id: str, start: int, end: int) -> AsyncIterator[bytes]:
        path = self.path(blob_id)
        offload = _Offload()
        fd = await offload.run(os.open, path, os.O_RDONLY)
        try:
            position = start
            while position < end:
                data = await offload.run(os.pread, fd, min(_READ, end - position), position)
                if not data:
                    break
                position += len(data)
                yield data
        finally:
            await offload.settle()
            os.close(fd)

    # -- whole uploads ------------------------------------------------------------------

    async def put(self, blob_id: str, chunks: AsyncIterable[bytes], limit: int) -> Stored:
        hex_ = blob_hex(blob_id)
        final = self.path(blob_id)
        offload = _Offload()
        if await offload.run(final.exists):  # stored already: check the bytes, write nothing
            sink = _Sink(offload, None, start=0, limit=limit, too_much=BlobTooLarge)
            await sink.drain(chunks, blob_id)
            return Stored(sink.size, complete=True, created=False)
        temp = self._tmp / f"{hex_}.{uuid.uuid4().hex}.tmp"
        fd = await offload.run(os.open, temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        published = False
        try:
            sink = _Sink(offload, fd, start=0, limit=limit, too_much=BlobTooLarge)
            await sink.drain(chunks, blob_id)
            await offload.run(os.fsync, fd)
            created = await offload.run(self._publish, temp, final)
            published = True
            return Stored(sink.size, complete=True, created=created)
        finally:
            await offload.settle()
            os.close(fd)
            if not published:
                with contextlib.suppress(FileNotFoundError):
                    temp.unlink()

    def _publish(self, source: Path, final: Path) -> bool:
        """Give a checked, fsync-ed file its final name (False: another upload got there first)."""
        if final.exists():
            source.unlink(missing_ok=True)
            return False
        self._ensure_dir(final.parent)
        os.replace(source, final)
        fsync_path(final.parent)
        return True

    # -- resumable uploads ------------------------------------------------------------------

    async def staged(self, blob_id: str, owner: str) -> int:
        try:
            return (await asyncio.to_thread(os.stat, self._part(blob_id, owner))).st_size
        except FileNotFoundError:
            return 0

    def _open_part(self, part: Path) -> int:
        """Open and lock a staged part (made if need be); UploadBusy if another request holds it."""
        for _ in range(5):
            fd = os.open(part, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                offset = os.fstat(fd).st_size
                os.close(fd)
                raise UploadBusy(offset) from None
            try:  # published or swept between our open and our lock: open the name again
                if os.stat(part).st_ino == os.fstat(fd).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)
        raise UploadBusy(0)

    async def append(self, blob_id: str, owner: str, start: int, end: int, total: int, chunks: AsyncIterable[bytes]) -> Stored:
        hex_ = blob_hex(blob_id)
        part = self._part(blob_id, owner)
        offload = _Offload()
        fd = await offload.run(self._open_part, part)
        try:
            info = os.fstat(fd)
            held = info.st_size
            if start == 0 and held:
                await offload.run(os.ftruncate, fd, 0)
                held = 0
            if start != held:
                raise OffsetMismatch(held)
            # the part's mtime is when its upload began, kept so across appends: the
            # sweep drops it that long after, however often it is topped up
            began = info.st_mtime if held else time.time()
            os.lseek(fd, held, os.SEEK_SET)
            sink = _Sink(offload, fd, start=held, limit=end, too_much=ChunkTooLong, hashed=False)
            try:
                async for chunk in chunks:
                    await sink.feed(chunk)
            finally:  # keep what arrived, durably: the client resumes from there
                await sink.flush()
                await offload.run(os.utime, fd, (time.time(), began))
                await offload.run(os.fsync, fd)
            if sink.size < total:
                return Stored(sink.size)
            digest = await offload.run(_hash_fd, fd)
            if digest != hex_ or sink.size != total:
                await offload.run(part.unlink)
                raise BlobMismatch(f"the {sink.size} bytes uploaded hash to sha256:{digest}, not {blob_id}; the upload starts over")
            created = await offload.run(self._publish, part, self.path(blob_id))
            return Stored(sink.size, complete=True, created=created)
        finally:
            await offload.settle()
            os.close(fd)

    async def discard(self, blob_id: str, owner: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self._part(blob_id, owner).unlink)

    # -- housekeeping ------------------------------------------------------------------

    async def remove(self, blob_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self.path(blob_id).unlink)

    async def sweep(self, staged_ttl_s: float, temp_ttl_s: float = 3600.0) -> int:
        return await asyncio.to_thread(self._sweep, staged_ttl_s, temp_ttl_s)

    def _sweep(self, staged_ttl_s: float, temp_ttl_s: float) -> int:
        now = time.time()
        gone = 0
        for folder, ttl in ((self._tmp, temp_ttl_s), (self._staging, staged_ttl_s)):
            try:
                entries = list(os.scandir(folder))
            except FileNotFoundError:
                continue
            for entry in entries:
                try:
                    if not entry.is_file(follow_symlinks=False) or now - entry.stat().st_mtime < ttl:
                        continue
                    fd = os.open(entry.path, os.O_RDONLY)
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # not a part being appended to
                        os.unlink(entry.path)
                        gone += 1
                    finally:
                        os.close(fd)
                except OSError as exc:
                    if exc.errno not in (errno.ENOENT, errno.EWOULDBLOCK, errno.EAGAIN):
                        raise
        return gone
