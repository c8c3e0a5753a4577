"""Record lists (``GET /v1/records/{collection}``, PROTOCOL.md section 6): the live
records of one collection, filtered, sorted and paged, in the caller's scope, with
the display names of the ids they hold; and the same rows as a table for files.

Used by the API and by the console, so both show the same rows under the same scope.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import typing
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from schemas import COLLECTIONS, ListedRecord, RecordList, Team, User, Ward
from schemas.collections import FieldSpec

from ..errors import BadRequest, NotFound, Unprocessable
from ..i18n import Catalogue
from ..principal import Principal
from ..stores import ListQuery, Store
from .supervision import SupervisionService

__all__ = ["COLUMNS", "FILTERS", "LISTED", "ListParams", "RecordLists", "Table", "enum_values", "local_time"]

#: the collections that have a list, and the columns a table of each shows, in order
COLUMNS: Mapping[str, tuple[str, ...]] = {
    "premises": ("name", "kind", "address", "owner_name", "owner_phone", "rooms", "active", "ward_id"),
    "checks": ("started_at", "premises_id", "kind", "result", "team_id", "officer_id", "unregistered_residents", "ward_id"),
    "violations": ("created_at", "premises_id", "category", "status", "fine_vnd", "record_no", "description", "ward_id"),
    "tips": ("received_at", "channel", "summary", "status", "premises_id", "ward_id"),
    "patrols": ("started_at", "ended_at", "team_id", "officers", "notes", "ward_id"),
}
LISTED = tuple(COLUMNS)
#: the filters each collection takes (others are refused, not silently ignored)
FILTERS: Mapping[str, frozenset[str]] = {
    "premises": frozenset({"kind"}),
    "checks": frozenset({"kind", "officer", "dates"}),
    "violations": frozenset({"status", "category", "dates"}),
    "tips": frozenset({"status", "dates"}),
    "patrols": frozenset({"dates"}),
}
_SORTS: Mapping[str, tuple[str, ...]] = {name: ("name", "-name") if name == "premises" else ("-date", "date") for name in COLUMNS}
_REF_KINDS = {"ward_id": "ward", "team_id": "team", "officer_id": "user", "created_by": "user", "premises_id": "premises"}
_FILE_ROWS = 100_000  # a file is a page this long at most (Excel takes 1,048,576 rows)
_decode_doc = msgspec.json.Decoder()


@dataclasses.dataclass(slots=True)
class ListParams:
    ward: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    status: str | None = None
    category: str | None = None
    kind: str | None = None
    officer: str | None = None
    sort: str | None = None
    cursor: str | None = None
    limit: int = 50


@dataclasses.dataclass(slots=True)
class Table:
    """Rows of cells for a file, the header in people's words."""

    header: list[str]
    rows: list[list[str | int | float | bool | None]]


def local_time(value: Any, zone: ZoneInfo) -> str | None:
    """An RFC 3339 time as ``YYYY-MM-DD HH:MM`` in the ward's zone (dates as they are)."""
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is None:
        return value
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


class RecordLists:
    def __init__(self, store: Store, default_timezone: str) -> None:
        self.store = store
        self.default_timezone = default_timezone

    def _query(self, principal: Principal, collection: str, p: ListParams) -> ListQuery:
        if collection not in COLUMNS:
            raise NotFound(f"no list of {collection} (lists: {', '.join(LISTED)})")
        wards = SupervisionService.wards(principal, p.ward)
        allowed = FILTERS[collection]
        fields = COLLECTIONS[collection].fields
        for name, value in (("status", p.status), ("category", p.category), ("kind", p.kind), ("officer", p.officer)):
            if value is None:
                continue
            if name not in allowed and not (name == "category" and collection == "violations"):
                raise Unprocessable(f"{collection} cannot be filtered by {name}")
            choices = enum_values(fields.get(name))
            if choices and value not in choices:
                raise Unprocessable(f"{name} is one of {', '.join(choices)}")
        if (p.start is not None or p.end is not None) and "dates" not in allowed:
            raise Unprocessable(f"{collection} have no date to filter by")
        if p.start is not None and p.end is not None and p.start > p.end:
            raise Unprocessable(f"from ({p.start}) is after to ({p.end})")
        sort = p.sort or _SORTS[collection][0]
        if sort not in _SORTS[collection]:
            raise Unprocessable(f"{collection} sort by {' or '.join(_SORTS[collection])}")
        after = _decode_cursor(p.cursor, sort) if p.cursor else None
        return ListQuery(collection, wards, p.start, p.end, p.status, p.category, p.kind, p.officer, sort, after, p.limit)

    async def page(self, principal: Principal, collection: str, p: ListParams) -> RecordList:
        query = self._query(principal, collection, p)
        limit = query.limit
        query.limit = limit + 1
        rows = await self.store.record_list(query)
        more = len(rows) > limit
        rows = rows[:limit]
        records = [_listed(_decode_doc.decode(row.doc)) for row in rows]
        await self.name(records)
        cursor = _encode_cursor(query.sort, rows[-1].position) if more and rows else None
        return RecordList(collection=collection, wards=list(query.wards), records=records, next=cursor)

    async def everything(self, principal: Principal, collection: str, p: ListParams) -> AsyncIterator[ListedRecord]:
        """Every record the filters select (for a file), page after page, at most ``_FILE_ROWS``."""
        params = dataclasses.replace(p, limit=1000)
        count = 0
        while count < _FILE_ROWS:
            page = await self.page(principal, collection, params)
            for record in page.records:
                yield record
            count += len(page.records)
            if page.next is None:
                return
            params.cursor = page.next

    async def name(self, records: Sequence[ListedRecord]) -> None:
        """Fill each record's ``names`` (wards, teams, users and premises it names)."""
        wanted: dict[str, set[str]] = {"ward": set(), "team": set(), "user": set(), "premises": set()}
        for record in records:
            wanted["ward"].add(record.ward_id)
            for field, kind in _REF_KINDS.items():
                value = record.fields.get(field)
                if isinstance(value, str):
                    wanted[kind].add(value)
        names = await self.names(wanted)
        for record in records:
            found = {"ward_id": names["ward"].get(record.ward_id, record.ward_id)}
            for field, kind in _REF_KINDS.items():
                value = record.fields.get(field)
                if isinstance(value, str) and value in names[kind]:
                    found[field] = names[kind][value]
            record.names = found

    async def names(self, wanted: Mapping[str, set[str]]) -> dict[str, dict[str, str]]:
        """Display names of these wards, teams, users and premises (unknown ones left out)."""
        out: dict[str, dict[str, str]] = {"ward": {}, "team": {}, "user": {}, "premises": {}}
        for kind, entity in (("ward", Ward), ("team", Team), ("user", User)):
            if wanted.get(kind):
                for item in await self.store.entities(entity):
                    ident = item.id  # type: ignore[union-attr]
                    if ident in wanted[kind]:
                        out[kind][ident] = item.name  # type: ignore[union-attr]
        if wanted.get("premises"):
            async with self.store.read() as reads:
                found = await reads.records([("premises", i) for i in sorted(wanted["premises"])])
            for (_, ident), state in found.items():
                if isinstance(state.fields.get("name"), str):
                    out["premises"][ident] = state.fields["name"]
        return out

    async def record(self, principal: Principal, collection: str, record_id: str) -> tuple[ListedRecord, bool]:
        """One record as it stands (deleted or not), named; NotFound outside the caller's wards."""
        if collection not in COLLECTIONS:
            raise NotFound(f"no collection {collection}")
        async with self.store.read() as reads:
            state = (await reads.records([(collection, record_id)])).get((collection, record_id))
        if state is None or not principal.may_see(state.ward_id):
            raise NotFound(f"no record {collection}/{record_id} in your wards")
        record = ListedRecord(collection=collection, id=record_id, ward_id=state.ward_id, seq=state.seq, fields=dict(state.fields))
        await self.name([record])
        return record, state.deleted

    async def zones(self) -> dict[str, ZoneInfo]:
        """Each ward's time zone (dates are shown in the ward's zone)."""
        return {w.id: ZoneInfo(w.timezone) for w in await self.store.entities(Ward)}  # type: ignore[union-attr]

    async def table(self, principal: Principal, collection: str, p: ListParams, words: Catalogue) -> Table:
        """The selected records as rows of display values: names for ids, local times, enum
        values and the header in ``words``."""
        zones = await self.zones()
        default = ZoneInfo(self.default_timezone)
        columns = COLUMNS[collection]
        specs = COLLECTIONS[collection].fields
        rows: list[list[str | int | float | bool | None]] = []
        async for record in self.everything(principal, collection, p):
            zone = zones.get(record.ward_id, default)
            rows.append([record.id, *(_cell(record, name, specs.get(name), zone, words) for name in columns)])
        return Table(header=[words.field(collection, name) for name in ("id", *columns)], rows=rows)


def enum_values(spec: FieldSpec | None) -> tuple[str, ...]:
    """The values an enumerated field takes (empty for a field that is not one)."""
    if spec is None:
        return ()
    annotation = spec.type
    if typing.get_origin(annotation) is typing.Union:
        annotation = next((a for a in typing.get_args(annotation) if a is not type(None)), annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return tuple(str(a) for a in typing.get_args(annotation))
    return ()


def _cell(record: ListedRecord, name: str, spec: FieldSpec | None, zone: ZoneInfo, words: Catalogue) -> str | int | float | bool | None:
    if name in record.names:
        return record.names[name]
    value = record.fields.get(name)
    if value is not None and (enum_values(spec) or isinstance(value, bool)):
        return words.value(record.collection, name, value)
    if name.endswith("_at"):
        return local_time(value, zone)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return msgspec.json.encode(value).decode()


def _listed(doc: dict[str, Any]) -> ListedRecord:
    fields = doc.get("fields", {})
    return ListedRecord(collection=doc["collection"], id=doc["id"], ward_id=doc["ward_id"], seq=doc["seq"], fields=fields)


def _encode_cursor(sort: str, position: list[object]) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode([sort, position])).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> list[object]:
    try:
        decoded = msgspec.json.decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (msgspec.DecodeError, binascii.Error, ValueError):
        raise BadRequest(f"unreadable cursor {cursor[:40]!r}") from None
    if not isinstance(decoded, list) or len(decoded) != 2 or decoded[0] != sort or not isinstance(decoded[1], list):
        raise BadRequest("this cursor belongs to another list or sort order; start again without it")
    return decoded[1]
