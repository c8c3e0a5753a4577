"""Attachments (PROTOCOL.md section 6b): what the blob endpoints answer in JSON.

A blob's bytes travel raw (``application/octet-stream``); its id is the SHA-256 of
those bytes (:data:`~schemas.BlobId`). Only the answers to an upload and the
missing list are JSON, and they are these Structs."""

from __future__ import annotations

from msgspec import Struct

from ._constraints import BlobId, NonNegInt

__all__ = ["BlobReceipt", "MissingBlobs"]


class BlobReceipt(Struct, kw_only=True):
    """The answer to ``PUT /v1/blobs/{id}``.

    ``stored``: the server holds the whole blob (200 when it had it already, 201 when
    this upload stored it); ``offset`` is then ``size``. For one chunk of a resumable
    upload (202), ``offset`` is how many bytes of it the server holds so far."""

    id: BlobId
    size: NonNegInt
    offset: NonNegInt
    stored: bool


class MissingBlobs(Struct, kw_only=True):
    """``GET /v1/blobs/missing``: blob ids named by records of the caller's wards (or of
    ``ward``) that nobody has uploaded yet, in id order; ``next``, when set, is the
    ``after`` of the next page."""

    ids: list[BlobId]
    next: BlobId | None = None
