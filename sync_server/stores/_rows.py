"""Rows every store keeps as JSON (edit-log diffs, conflict sides), encoded and
decoded in one place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from schemas import Conflict, ConflictSide, FieldChange, HistoryEntry

__all__ = ["CONFLICT_COLUMNS", "EditDiff", "conflict_from_row", "encode_diff", "history_entry"]


class EditDiff(msgspec.Struct, omit_defaults=True):
    """An edit-log entry's body: each changed field's old and new value, and the
    record's deleted flag when the edit changed it."""

    fields: dict[str, tuple[Any, Any]] = {}
    deleted: tuple[bool, bool] | None = None


_encoder = msgspec.json.Encoder()
_diff = msgspec.json.Decoder(EditDiff)
_side = msgspec.json.Decoder(ConflictSide)

#: the columns ``conflict_from_row`` reads, in its order
CONFLICT_COLUMNS = (
    "id, collection, record_id, field, kind, winner, server, client, ward_id, device_id, user_id, "
    "changeset_id, created_at, status, resolved_by, resolved_at, resolution"
)


def encode_diff(fields: dict[str, tuple[Any, Any]], deleted: tuple[bool, bool] | None) -> bytes:
    return _encoder.encode(EditDiff(fields=fields, deleted=deleted))


def history_entry(seq: int, at: str, user_id: str, device_id: str, changeset_id: str, diff: bytes) -> HistoryEntry:
    body = _diff.decode(diff)
    return HistoryEntry(
        seq=seq,
        at=at,
        user_id=user_id,
        device_id=device_id,
        changeset_id=changeset_id,
        changes={name: FieldChange(old=old, new=new) for name, (old, new) in body.fields.items()},
        deleted=FieldChange(old=body.deleted[0], new=body.deleted[1]) if body.deleted else None,
    )


def conflict_from_row(row: Sequence[Any]) -> Conflict:
    return Conflict(
        id=f"c-{row[0]}",
        collection=row[1],
        record_id=row[2],
        field=row[3],
        kind=row[4],
        winner=row[5],
        server=_side.decode(row[6]),
        client=_side.decode(row[7]),
        ward_id=row[8],
        device_id=row[9],
        user_id=row[10],
        changeset_id=row[11],
        created_at=row[12],
        status=row[13],
        resolved_by=row[14],
        resolved_at=row[15],
        resolution=msgspec.json.decode(row[16]) if row[16] is not None else None,
    )
