"""The blob store interface: where attachment bytes live, behind a few async methods.

Blobs are content-addressed (``sha256:<hex>``) and immutable: a blob, once stored,
never changes, so readers need no locks and any number of server workers may store
the same blob at once. The record store keeps the metadata (which blobs are
uploaded, which records name them); a blob store keeps only bytes, so that an
object store can follow the filesystem one (``files.FileBlobStore``) behind the same
few methods:

- ``put`` stores a whole blob from a stream: checked (size, hash) before anyone can
  see it, then published atomically; a stream that fails half-way leaves nothing;
- ``size`` and ``read`` (a byte range) for downloads;
- ``staged``, ``append`` and ``discard`` for resumable uploads: parts staged per
  (blob, owner), appended in order, published atomically when complete. A store
  that cannot stage sets ``resumable = False`` (the HTTP layer then refuses chunks
  and clients send whole blobs);
- ``sweep`` removes what dead uploads left behind, and ``remove`` an expired blob.

Errors are this module's own (backend-neutral); the HTTP layer maps them to problems.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import re
from collections.abc import AsyncIterable, AsyncIterator

from schemas import BLOB_ID_PATTERN

__all__ = [
    "BlobError",
    "BlobMismatch",
    "BlobStore",
    "BlobTooLarge",
    "ChunkTooLong",
    "OffsetMismatch",
    "Stored",
    "UploadBusy",
    "blob_hex",
    "blob_id_of",
]

_BLOB_ID = re.compile(BLOB_ID_PATTERN)


def blob_hex(blob_id: str) -> str:
    """The 64 hex digits of a valid blob id; ValueError for anything else (no other shape
    may ever reach a file name)."""
    if not isinstance(blob_id, str) or _BLOB_ID.fullmatch(blob_id) is None:
        raise ValueError(f"not a blob id: {blob_id[:80]!r}")
    return blob_id[7:]


def blob_id_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class BlobError(Exception):
    """Base of the errors a blob store raises on purpose."""


class BlobMismatch(BlobError):
    """The bytes received do not hash to the blob's id (or not to its declared size)."""


class BlobTooLarge(BlobError):
    """More bytes than the limit."""


class ChunkTooLong(BlobError):
    """A chunk's body is longer than its ``Content-Range`` says."""


class OffsetMismatch(BlobError):
    """A chunk that does not start where the staged part ends (``offset``)."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"the upload continues at byte {offset}")
        self.offset = offset


class UploadBusy(OffsetMismatch):
    """Another request is appending to the same staged part right now."""

    def __init__(self, offset: int) -> None:
        BlobError.__init__(self, f"another request is uploading this part (at byte {offset} now); try again shortly")
        self.offset = offset


@dataclasses.dataclass(frozen=True, slots=True)
class Stored:
    """How far an upload got: ``offset`` bytes held; ``complete`` once the blob is
    stored (``size`` then); ``created`` when this upload stored it (not already there)."""

    offset: int
    complete: bool = False
    created: bool = False


class BlobStore(abc.ABC):
    #: whether ``staged``/``append``/``discard`` work (resumable uploads)
    resumable: bool = True

    async def open(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Prepare the store (create folders, check access)."""

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Release what ``open`` took."""

    @abc.abstractmethod
    async def size(self, blob_id: str) -> int | None:
        """A stored blob's size; None when it is not stored."""

    @abc.abstractmethod
    async def put(self, blob_id: str, chunks: AsyncIterable[bytes], limit: int) -> Stored:
        """Store the bytes of ``chunks`` as ``blob_id``. Nothing is visible before the whole
        blob is checked; then it is published atomically. Already stored: the bytes are
        checked against the id all the same, and nothing is written. Raises BlobTooLarge
        (past ``limit``), BlobMismatch; whatever ``chunks`` raises (a torn upload) leaves
        nothing behind."""

    @abc.abstractmethod
    def read(self, blob_id: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``[start, end)`` of a stored blob, a piece at a time. FileNotFoundError
        when it is not stored."""

    @abc.abstractmethod
    async def staged(self, blob_id: str, owner: str) -> int:
        """How many bytes of ``owner``'s upload of this blob are staged (0: none)."""

    @abc.abstractmethod
    async def append(self, blob_id: str, owner: str, start: int, end: int, total: int, chunks: AsyncIterable[bytes]) -> Stored:
        """Append one chunk, bytes ``[start, end)`` of a ``total``-byte blob, to ``owner``'s
        staged part. ``start`` must be where the part ends (0 starts over), else
        OffsetMismatch; UploadBusy while another request appends to it. Bytes received
        are kept even when ``chunks`` fails half-way (the client resumes from the new
        offset). When the part reaches ``total`` bytes it is checked (BlobMismatch: the
        part is dropped) and published. ChunkTooLong past ``end``."""

    @abc.abstractmethod
    async def discard(self, blob_id: str, owner: str) -> None:
        """Drop ``owner``'s staged part of this blob, if any."""

    @abc.abstractmethod
    async def sweep(self, staged_ttl_s: float, temp_ttl_s: float = 3600.0) -> int:
        """Remove staged parts begun more than ``staged_ttl_s`` ago (however recently
        appended to: PROTOCOL.md section 6b) and temporary files of dead uploads;
        answers how many files went."""

    @abc.abstractmethod
    async def remove(self, blob_id: str) -> None:
        """Remove a stored blob (one no record names, expired); nothing if it is not there."""
