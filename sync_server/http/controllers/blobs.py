"""Attachments over HTTP: PROTOCOL.md section 6b, and resumable uploads.

Protocol (``{id}`` is ``sha256:`` and 64 lowercase hex digits; any other id is 404
and never reaches the disk):

- ``PUT /v1/blobs/{id}``, raw bytes: stores a blob. 201 stored now, 200 stored
  already (the bytes are checked all the same, nothing is rewritten); 422 when they
  do not hash to the id; 413 past the limit (``Settings.max_blob_bytes``, 20 MiB);
  415 for a ``Content-Encoding``. Any authenticated device may upload (before the
  push that names the blob). A body cut short leaves nothing visible.
- ``HEAD`` and ``GET /v1/blobs/{id}`` read it, for callers whose wards hold a record
  that names it (otherwise 403, whatever exists elsewhere; 404 when named in scope
  but not uploaded yet): ``Content-Length``, ``Accept-Ranges: bytes``, ``ETag:
  "sha256:..."``, ``Cache-Control: private, immutable``. ``GET`` honours one
  ``Range`` (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``): 206 with ``Content-Range``;
  416 with ``Content-Range: bytes */size`` when none of it exists; other ``Range``
  forms are ignored (200, the whole blob). ``If-None-Match`` with the ETag: 304.
- ``GET /v1/blobs/missing?ward=&after=&limit=``: ids named by records of the
  caller's wards (or ``ward``) and not uploaded, in id order, paged by ``next``.

**Resumable uploads** (an extension a plain client may ignore; tus-like, on the same
URL). A device uploads a blob in chunks, each a ``PUT`` with
``Content-Range: bytes <first>-<last>/<total>`` and that chunk's bytes:

- the server keeps one staged part per (blob, device); a chunk must start where the
  part ends (``first`` = bytes held), or at 0 to start over. Otherwise: 409
  (problem type ``upload-offset``) with ``Upload-Offset: <bytes held>``; the same,
  with ``Retry-After: 1``, while another request of that device appends to it;
- a chunk that does not complete the blob answers 202, a ``BlobReceipt`` with
  ``stored: false`` and ``offset``, and ``Upload-Offset: <bytes held>``;
- the chunk that brings the part to ``total`` bytes makes the server check the
  whole (hash and size: 422 and the part dropped if wrong) and publish it
  atomically: 201, or 200 if the blob was stored meanwhile;
- **bytes of a chunk cut short are kept**: after a lost connection the device asks
  ``HEAD /v1/blobs/{id}``, whose answer (200 if the blob is readable, else 403 or
  404) carries ``Upload-Offset: <bytes held>``, and sends the rest from there;
- ``total`` above the limit: 413 before anything is read; a body longer than its
  ``Content-Range``: 400; a staged part is dropped ``Settings.blob_staging_ttl_s``
  (24 hours) after its upload began, however often it was topped up since;
- blobs no record names count against the uploader's quota (``blob_quota_bytes``):
  past it, 413; they are dropped ``blob_unnamed_ttl_s`` (7 days) after upload.

Blob bytes are streamed to and from the blob store, never held whole in memory,
and never logged (the access line names the route template and the path).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, head, put
from litestar.di import NamedDependency
from litestar.exceptions import InternalServerException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream

from schemas import BLOB_ID_PATTERN, BlobReceipt, MissingBlobs

from ...blobs import BlobService
from ...errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from ...principal import Principal

__all__ = ["BlobsController", "OCTETS"]

OCTETS = "application/octet-stream"


def _headers(blob_id: str) -> dict[str, str]:
    return {
        "Accept-Ranges": "bytes",
        "ETag": f'"{blob_id}"',
        "Cache-Control": "private, max-age=31536000, immutable",
        "X-Content-Type-Options": "nosniff",
    }


def _not_modified(request: Request[Any, Any, Any], blob_id: str) -> bool:
    wanted = request.headers.get("if-none-match")
    return wanted is not None and (wanted.strip() == "*" or f'"{blob_id}"' in wanted)


async def _body(request: Request[Any, Any, Any], limit: int) -> AsyncIterator[bytes]:
    """The request body as it arrives (bounded by the router's ``request_max_body_size``)."""
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except RequestEntityTooLarge:
        raise PayloadTooLarge(f"a blob may have at most {limit} bytes") from None
    except InternalServerException:  # Litestar's word for "the client disconnected mid-body"
        raise BadRequest("the request body was cut short (connection lost)") from None


class BlobsController(Controller):
    """Attachments (see the module docstring). Mounted under a router that sets the
    blob body limit (``create_app``)."""

    path = "/v1/blobs"
    tags = ["blobs"]

    @get("/missing", summary="Blob ids named by records of your wards and not uploaded yet")
    async def missing(
        self,
        request: Request[Principal, None, Any],
        blobs: NamedDependency[BlobService],
        ward: Annotated[str | None, QueryParameter(max_length=64, description="one ward of your scope; all of them if left out")] = None,
        after: Annotated[str | None, QueryParameter(pattern=BLOB_ID_PATTERN, max_length=71, description="the `next` of the previous page")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 1000,
    ) -> MissingBlobs:
        """What handhelds still have to upload, in id order, paged by ``next``."""
        return await blobs.missing(request.user, ward, after, limit)

    @put("/{blob_id:str}", status_code=201, summary="Upload a blob (whole, or one chunk of a resumable upload)")
    async def upload(self, request: Request[Principal, None, Any], blobs: NamedDependency[BlobService], blob_id: FromPath[str]) -> Response[BlobReceipt]:
        blobs.check_id(blob_id)
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise UnsupportedMediaType("blobs are uploaded as they are: no Content-Encoding")
        length = request.headers.get("content-length", "")
        declared = int(length) if length.isascii() and length.isdigit() and len(length) < 19 else None
        receipt, status = await blobs.upload(
            request.user, blob_id, _body(request, blobs.settings.max_blob_bytes), request.headers.get("content-range"), declared
        )
        return Response(receipt, status_code=status, headers={"Upload-Offset": str(receipt.offset)})

    @head("/{blob_id:str}", summary="A blob's size, and how much of your resumable upload of it the server holds")
    async def head(self, request: Request[Principal, None, Any], blobs: NamedDependency[BlobService], blob_id: FromPath[str]) -> Response[None]:
        """Its size when readable; ``Upload-Offset``: where your resumable upload of it resumes."""
        size = await blobs.size(request.user, blob_id)
        headers = {**_headers(blob_id), "Content-Length": str(size), "Content-Type": OCTETS, "Upload-Offset": str(size)}
        return Response(None, status_code=304 if _not_modified(request, blob_id) else 200, headers=headers)

    @get("/{blob_id:str}", summary="Download a blob, or one byte range of it")
    async def download(self, request: Request[Principal, None, Any], blobs: NamedDependency[BlobService], blob_id: FromPath[str]) -> Response[Any]:
        """For callers whose wards hold a record that names it; one ``Range`` honoured."""
        found = await blobs.read(request.user, blob_id, request.headers.get("range"))
        headers = _headers(blob_id)
        if _not_modified(request, blob_id):
            return Response(None, status_code=304, headers=headers)
        headers["Content-Length"] = str(found.end - found.start)
        if found.partial:
            headers["Content-Range"] = f"bytes {found.start}-{found.end - 1}/{found.size}"
        return Stream(found.chunks(), status_code=206 if found.partial else 200, headers=headers, media_type=OCTETS)

