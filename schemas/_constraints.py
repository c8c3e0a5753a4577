"""Named constraint aliases: validation lives in the types, declared once."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from msgspec import Meta

__all__ = [
    "BLOB_ID_PATTERN",
    "BlobId",
    "ChangesetId",
    "Day",
    "DeviceId",
    "Element",
    "Id",
    "Latitude",
    "Longitude",
    "LongText",
    "Name",
    "NonNegInt",
    "Phone",
    "PositiveInt",
    "ShortText",
    "Stamp",
    "Timestamp",
    "Key",
    "MAX_CHANGES",
    "MAX_SAFE_INT",
    "PERIOD_PATTERN",
    "STAMP_PATTERN",
]

#: A synced record's identity: ``(collection, id)``.
Key = tuple[str, str]

#: The most changes one change set may carry (PROTOCOL.md section 1); the server's
#: default limit and the SDK's ceiling for its batches.
MAX_CHANGES = 5_000

#: A target's period: a year (``2023``) or a month (``2023-06``).
PERIOD_PATTERN = r"^[0-9]{4}(-(0[1-9]|1[0-2]))?$"

#: Numbers travel through JavaScript clients too: keep integers exact there.
MAX_SAFE_INT = 2**53 - 1

#: Patterns match whole (PROTOCOL.md section 1): msgspec searches with Python's ``re``, whose
#: ``$`` also matches before a final newline, so each ends ``$(?!\n)`` (``\Z`` is not ECMA-262,
#: and JSON Schema and browsers read these patterns too; there the look-ahead is a no-op).

#: A hybrid logical clock value: 13-digit ms, 4 hex counter digits, node id.
STAMP_PATTERN = r"^[0-9]{13}-[0-9a-f]{4}-[A-Za-z0-9_-]{1,64}$(?!\n)"

Id = Annotated[
    str,
    Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$(?!\n)", description="1-64 of [A-Za-z0-9_-]"),
]
DeviceId = Id
ChangesetId = Annotated[
    str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$(?!\n)", description="client-made, stable across retries")
]
Stamp = Annotated[str, Meta(pattern=STAMP_PATTERN, description='HLC "<ms>-<counter>-<node>"')]

NonNegInt = Annotated[int, Meta(ge=0, le=MAX_SAFE_INT)]
PositiveInt = Annotated[int, Meta(ge=1, le=MAX_SAFE_INT)]
Latitude = Annotated[float, Meta(ge=-90, le=90)]
Longitude = Annotated[float, Meta(ge=-180, le=180)]

# Text limits count characters here; the 64 KiB UTF-8 byte limit of field values
# is a server setting checked after decoding (the engine's `too_large`).
#: Text never holds NUL: no store keeps it the same (PostgreSQL refuses it), and no person types it.
_NO_NUL = r"^[^\x00]*$"
Name = Annotated[str, Meta(min_length=1, max_length=500, pattern=_NO_NUL)]
ShortText = Annotated[str, Meta(max_length=500, pattern=_NO_NUL)]
LongText = Annotated[str, Meta(max_length=65536, pattern=_NO_NUL)]
Phone = Annotated[str, Meta(max_length=32, pattern=r"^[0-9+() .-]*$(?!\n)")]
#: One element of a `set` field: an officer id, a tag (photos are :data:`BlobId` elements).
Element = Annotated[str, Meta(min_length=1, max_length=200, pattern=_NO_NUL)]

#: A blob's id is its content's SHA-256: ``sha256:`` and 64 lowercase hex digits, nothing else
#: (no other shape ever reaches a file name on the server or the device). The length is
#: stated too: a pattern's ``$`` also matches before a final newline.
BLOB_ID_PATTERN = r"^sha256:[0-9a-f]{64}$"
BlobId = Annotated[
    str, Meta(min_length=71, max_length=71, pattern=BLOB_ID_PATTERN, description="sha256:<64 lowercase hex digits> of the blob's bytes")
]

Timestamp = Annotated[dt.datetime, Meta(tz=True, description="RFC 3339 with an offset")]
Day = dt.date
