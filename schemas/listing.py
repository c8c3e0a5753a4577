"""Record lists (``GET /v1/records/{collection}``, PROTOCOL.md section 6): the live
records of one collection, for the tables people read."""

from __future__ import annotations

from typing import Any

from msgspec import Struct

__all__ = ["ListedRecord", "RecordList"]


class ListedRecord(Struct, kw_only=True):
    """A live record as it now stands, with the display names of the ids it holds.

    ``names`` maps a field that names a ward, team, user or premises (``ward_id``,
    ``team_id``, ``officer_id``, ``created_by``, ``premises_id``) to that one's name."""

    collection: str
    id: str
    ward_id: str
    seq: int
    fields: dict[str, Any]
    names: dict[str, str] = {}


class RecordList(Struct, kw_only=True):
    """One page; ``next`` is the cursor of the following page (None: this is the last)."""

    collection: str
    wards: list[str]
    records: list[ListedRecord]
    next: str | None = None
