"""Local reads: typed records with pending edits applied, and simple queries.

Everything here reads the device's file only; it works with no network at all.
Queries filter in SQL over the records' local view (``json_extract``), so a
device holding 100,000 records answers without decoding them all; times compare
through ``julianday`` so that ``+07:00`` and ``Z`` offsets order correctly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from schemas import Conflict, ErrorItem, PulledRecord, Record
from schemas.collections import CollectionSpec, Policy

from ._localdb import LocalDB, fetch_all, fetch_one, scalar
from ._records import stamps_of
from ._values import spec_for
from .errors import InvalidEdit
from .types import DeadLetter

__all__ = ["Reader", "TIME_FIELDS"]

R = TypeVar("R", bound=Record)

#: the field that dates a record, as reports read it (DOMAIN.md, "Reports")
TIME_FIELDS: Mapping[str, str] = {
    "premises": "created_at",
    "checks": "started_at",
    "violations": "created_at",
    "patrols": "started_at",
    "tips": "received_at",
    "safety_groups": "established_on",
    "fire_points": "established_on",
    "targets": "created_at",
}

_DOC = "json_set(COALESCE(view, fields), '$.id', id)"
_LIVE = "COALESCE(view_deleted, deleted) = 0"
_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}
_conflict = msgspec.json.Decoder(Conflict)
_errors = msgspec.json.Decoder(list[ErrorItem])
_any = msgspec.json.Decoder()
_pulled_fields = msgspec.json.Decoder(dict[str, Any])


def _decoder(kind: type[R]) -> msgspec.json.Decoder[R]:
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.json.Decoder(kind)
    return decoder


class Reader:
    def __init__(self, db: LocalDB) -> None:
        self.db = db

    async def get(self, kind: type[R], record_id: str) -> R | None:
        spec = spec_for(kind)
        async with self.db.transaction() as conn:
            row = await fetch_one(conn, f"SELECT {_DOC} FROM records WHERE collection = ? AND id = ? AND {_LIVE}", (spec.name, record_id))
        return None if row is None else _decoder(kind).decode(row[0])

    async def find(
        self,
        kind: type[R],
        *,
        ward: str | None,
        since: dt.date | dt.datetime | None,
        until: dt.date | dt.datetime | None,
        on: str | None,
        limit: int | None,
        equals: Mapping[str, Any],
    ) -> list[R]:
        spec = spec_for(kind)
        where, params = _where(spec, ward, since, until, on, equals)
        sql = f"SELECT {_DOC} FROM records WHERE {where} ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        async with self.db.transaction() as conn:
            rows = await fetch_all(conn, sql, params)
        decoder = _decoder(kind)
        return [decoder.decode(doc) for (doc,) in rows]

    async def count(
        self,
        kind: type[Record],
        *,
        ward: str | None,
        since: dt.date | dt.datetime | None,
        until: dt.date | dt.datetime | None,
        on: str | None,
        equals: Mapping[str, Any],
    ) -> int:
        where, params = _where(spec_for(kind), ward, since, until, on, equals)
        async with self.db.transaction() as conn:
            return int(await scalar(conn, f"SELECT COUNT(*) FROM records WHERE {where}", params))

    async def pulled_page(self, after: tuple[str, str], page: int) -> list[PulledRecord]:
        """Records as last pulled (pending edits not applied), after a (collection, id)."""
        async with self.db.transaction() as conn:
            rows = await fetch_all(
                conn,
                """SELECT collection, id, ward_id, seq, deleted, fields, stamps FROM records
                   WHERE fields IS NOT NULL AND (collection, id) > (?, ?) ORDER BY collection, id LIMIT ?""",
                (*after, page),
            )
        return [
            PulledRecord(c, i, ward, seq, bool(deleted), _pulled_fields.decode(fields), stamps_of(stamps, fields))
            for c, i, ward, seq, deleted, fields, stamps in rows
        ]

    async def dead_letters(self) -> list[DeadLetter]:
        async with self.db.transaction() as conn:
            rows = await fetch_all(conn, "SELECT n, collection, record_id, change, errors, changeset_id, rejected_at FROM dead_letters ORDER BY n")
        return [
            DeadLetter(n=n, collection=c, record_id=i, change=_any.decode(change), errors=_errors.decode(errors), changeset_id=cs, rejected_at=at)
            for n, c, i, change, errors, cs, at in rows
        ]

    async def conflicts(self) -> list[Conflict]:
        async with self.db.transaction() as conn:
            rows = await fetch_all(conn, "SELECT body FROM conflicts ORDER BY rowid")
        return [_conflict.decode(body) for (body,) in rows]


def _where(
    spec: CollectionSpec,
    ward: str | None,
    since: dt.date | dt.datetime | None,
    until: dt.date | dt.datetime | None,
    on: str | None,
    equals: Mapping[str, Any],
) -> tuple[str, list[Any]]:
    """A WHERE clause over the local view; field names travel as bound JSON paths."""
    clauses = ["collection = ?", _LIVE]
    params: list[Any] = [spec.name]
    if ward is not None:
        clauses.append("ward_id = ?")
        params.append(ward)
    for name, value in equals.items():
        if name != "id" and name not in spec.fields:
            raise InvalidEdit(f"{spec.name} has no field {name!r}")
        if name != "id" and spec.fields[name].policy is Policy.SET:
            raise InvalidEdit(f"{spec.name}.{name} is a set: equality on sets is not supported")
        path = f"$.{name}"
        if name == "id":
            clauses.append("id = ?")
            params.append(value)
        elif value is None:
            clauses.append("json_extract(COALESCE(view, fields), ?) IS NULL")
            params.append(path)
        elif isinstance(value, (dt.date, dt.datetime)):
            clauses.append("julianday(json_extract(COALESCE(view, fields), ?)) = julianday(?)")
            params += [path, _time(value)]
        elif isinstance(value, (str, int, float)):
            clauses.append("json_extract(COALESCE(view, fields), ?) = ?")
            params += [path, int(value) if isinstance(value, bool) else value]
        else:
            raise InvalidEdit(f"cannot compare {spec.name}.{name} with a {type(value).__name__}")
    if since is not None or until is not None:
        field = on or TIME_FIELDS[spec.name]
        if field not in spec.fields:
            raise InvalidEdit(f"{spec.name} has no field {field!r}")
        moment = "julianday(json_extract(COALESCE(view, fields), ?))"
        if since is not None:
            clauses.append(f"{moment} >= julianday(?)")
            params += [f"$.{field}", _time(since)]
        if until is not None:
            clauses.append(f"{moment} < julianday(?)")
            params += [f"$.{field}", _time(until)]
    return " AND ".join(clauses), params


def _time(value: dt.date | dt.datetime) -> str:
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        raise InvalidEdit("times in queries need a time zone (an aware datetime)")
    return value.isoformat()
