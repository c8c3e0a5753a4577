"""Rows to Structs, by column name, for every backend; and what every store keeps as
JSON (edit-log diffs, conflict sides), encoded and decoded in one place.

Both backends' rows are read by name: ``sqlite3.Row`` (every connection's row factory)
and asyncpg's ``Record`` both answer ``row["column"]``, so one function maps a row of
either, and a column added to a query cannot shift the others."""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from schemas import Conflict, ConflictSide, Device, DeviceHealth, FieldChange, HistoryEntry, Team, User, Ward

from ..principal import Principal, epoch_ms
from .base import StoredChangeset

__all__ = [
    "CONFLICT_COLUMNS",
    "ENTITY_QUERIES",
    "EditDiff",
    "HEALTH_COLUMNS",
    "NamedRow",
    "changeset_from_row",
    "conflict_from_row",
    "encode_diff",
    "entity_from_row",
    "health_from_row",
    "history_entry",
    "principal_from_row",
    "team_from_row",
    "user_from_row",
    "ward_from_row",
]


class NamedRow(Protocol):
    """A row read by column name: ``sqlite3.Row`` or ``asyncpg.Record``."""

    def __getitem__(self, key: str, /) -> Any: ...


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


def conflict_from_row(row: NamedRow) -> Conflict:
    """A conflict from a row of ``CONFLICT_COLUMNS``."""
    resolution = row["resolution"]
    return Conflict(
        id=f"c-{row['id']}",
        collection=row["collection"],
        record_id=row["record_id"],
        field=row["field"],
        kind=row["kind"],
        winner=row["winner"],
        server=_side.decode(row["server"]),
        client=_side.decode(row["client"]),
        ward_id=row["ward_id"],
        device_id=row["device_id"],
        user_id=row["user_id"],
        changeset_id=row["changeset_id"],
        created_at=row["created_at"],
        status=row["status"],
        resolved_by=row["resolved_by"],
        resolved_at=row["resolved_at"],
        resolution=msgspec.json.decode(resolution) if resolution is not None else None,
    )


def changeset_from_row(row: NamedRow) -> StoredChangeset:
    return StoredChangeset(row["device_id"], row["changeset_id"], bytes(row["body_hash"]), bytes(row["response"]))


#: the queries of ``entity_from_row``, alike in both dialects (users differ: see each backend)
ENTITY_QUERIES: dict[type[object], str] = {
    Ward: "SELECT id, name, timezone FROM wards ORDER BY id",
    Team: "SELECT id, ward_id, name FROM teams ORDER BY id",
    Device: "SELECT device_id, user_id, created_at, revoked_at FROM devices ORDER BY device_id",
}


def ward_from_row(row: NamedRow) -> Ward:
    return Ward(id=row["id"], name=row["name"], timezone=row["timezone"])


def team_from_row(row: NamedRow) -> Team:
    return Team(id=row["id"], ward_id=row["ward_id"], name=row["name"])


def entity_from_row(kind: type[object], row: NamedRow) -> Ward | Team | Device:
    """A row of ``ENTITY_QUERIES[kind]``."""
    if kind is Ward:
        return ward_from_row(row)
    if kind is Team:
        return team_from_row(row)
    return Device(device_id=row["device_id"], user_id=row["user_id"], created_at=row["created_at"], revoked_at=row["revoked_at"])


def principal_from_row(row: NamedRow, wards: frozenset[str]) -> Principal:
    """The caller behind a token, from a row of ``device_id, user_id, role, created_at``."""
    return Principal(user_id=row["user_id"], device_id=row["device_id"], role=row["role"], wards=wards, registered_ms=epoch_ms(row["created_at"]))


def user_from_row(row: NamedRow, team_ids: list[str], ward_ids: list[str]) -> User:
    """A user from a row of ``id, name, role, disabled`` (its teams and wards: each dialect's own aggregate)."""
    return User(id=row["id"], name=row["name"], role=row["role"], team_ids=team_ids, ward_ids=ward_ids, disabled=bool(row["disabled"]))


#: the columns ``health_from_row`` reads besides the device's wards (``d``: devices, ``h``: device_health)
HEALTH_COLUMNS = (
    "d.device_id, d.user_id, d.revoked_at IS NOT NULL AS revoked, h.last_push_at, h.last_pull_at, h.client, "
    "h.client_version, h.schema, h.pending, h.clock_offset_ms, coalesce(h.rejected, 0) AS rejected"
)


def health_from_row(row: NamedRow, wards: list[str]) -> DeviceHealth:
    return DeviceHealth(
        device_id=row["device_id"],
        user_id=row["user_id"],
        revoked=bool(row["revoked"]),
        wards=wards,
        last_push_at=row["last_push_at"],
        last_pull_at=row["last_pull_at"],
        client=row["client"],
        client_version=row["client_version"],
        schema=row["schema"],
        pending=row["pending"],
        clock_offset_ms=row["clock_offset_ms"],
        rejected=int(row["rejected"]),
    )
