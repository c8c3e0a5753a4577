"""Writing report projections to SQLite: facts (``stores/projections.py``) coded as integers.

Ids are interned in ``p_keys`` (one small insert-or-ignore and one lookup per batch),
enums become their declaration index, days ``yyyymmdd``, ISO weeks ``yyyyww`` and
months ``yyyymm``. ``_supervision`` decodes them back for answers.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from ...engine.state import RecordState, decode_state
from ..projections import ENUMS, facts
from . import _batch

__all__ = ["CODES", "day_int", "keys", "rebuild", "write"]

_DEFAULT_ZONE = "Asia/Ho_Chi_Minh"
_json_keys = msgspec.json.Decoder(dict[str, int])
_CHUNK = 400
CODES: dict[str, dict[str, int]] = {name: {value: i for i, value in enumerate(values)} for name, values in ENUMS.items()}


def day_int(day: dt.date | None) -> int | None:
    return day.year * 10000 + day.month * 100 + day.day if day else None


def _week(day: dt.date | None) -> int | None:
    if day is None:
        return None
    year, week, _ = day.isocalendar()
    return year * 100 + week


def _code(enum: str, value: Any) -> int | None:
    return CODES[enum].get(value) if isinstance(value, str) else None


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def keys(conn: sqlite3.Connection, ids: Iterable[str], create: bool = True) -> dict[str, int]:
    """The integer key of each id (made on first sight when ``create``)."""
    wanted = sorted({i for i in ids if i})
    if create and wanted:
        _batch.insert(conn, "INSERT OR IGNORE INTO p_keys (id)", [(i,) for i in wanted])
    found: dict[str, int] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        # one row (a JSON object), not a row a key: one step on the writer thread (``_batch``)
        sql = f"SELECT json_group_object(id, key) FROM p_keys WHERE id IN ({','.join('?' * len(chunk))})"
        found.update(_json_keys.decode(conn.execute(sql, chunk).fetchone()[0]))
    return found


def with_keys(conn: sqlite3.Connection, known: Mapping[str, int], ids: Iterable[str]) -> Mapping[str, int]:
    """``known``, with the keys of the ``ids`` it lacks (made on first sight)."""
    lacking = [i for i in ids if i not in known]
    return {**known, **keys(conn, lacking)} if lacking else known


def _zones(conn: sqlite3.Connection, wards: Iterable[str]) -> dict[str, ZoneInfo]:
    wanted = sorted(set(wards))
    if not wanted:
        return {}
    sql = f"SELECT id, timezone FROM wards WHERE id IN ({','.join('?' * len(wanted))})"
    found = {ward: _zone(tz) for ward, tz in conn.execute(sql, wanted)}
    return {ward: found.get(ward) or _zone(_DEFAULT_ZONE) for ward in wanted}


_UPSERT = {
    "premises": ("p_premises", ("kind", "name", "address", "owner_name", "name_folded", "address_folded", "owner_folded")),
    "checks": ("p_checks", ("premises", "kind", "team", "officer", "day", "week", "month")),
    "violations": ("p_violations", ("check_key", "premises", "category", "status", "fine", "day")),
    "tips": ("p_tips", ("status", "day")),
    "patrols": ("p_patrols", ("team", "day", "hours")),
    "safety_groups": ("p_safety_groups", ("kind", "day")),
    "fire_points": ("p_fire_points", ("day",)),
    "targets": ("p_targets", ("id", "metric", "period", "target")),
}


@cache
def _sql(collection: str) -> tuple[str, str, str]:
    """The upsert of a collection's projection rows: head, one row's values, tail (``_batch.insert``)."""
    table, columns = _UPSERT[collection]
    every = ("rk", "ward", "live", *columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in every[1:])
    values = ", ".join("?" * len(every))
    if collection == "checks":  # a check written after its violations counts them (a trigger would rewrite 7 indexes)
        every = (*every, "nv")
        values += ", (SELECT count(*) FROM p_violations WHERE check_key = ? AND live = 1)"
    return f"INSERT INTO {table} ({', '.join(every)})", f"({values})", f" ON CONFLICT (rk) DO UPDATE SET {updates}"


def _columns(state: RecordState, f: dict[str, Any], key: dict[str, int]) -> tuple[Any, ...]:
    def k(value: Any) -> int | None:
        return key.get(value) if isinstance(value, str) else None

    match state.collection:
        case "premises":
            return (_code("premises_kind", f["kind"]), f["name"], f["address"], f["owner"], f["name_folded"], f["address_folded"], f["owner_folded"])
        case "checks":
            day = f["day"]
            return (
                k(f["premises"]),
                _code("check_kind", f["kind"]),
                k(f["team"]),
                k(f["officer"]),
                day_int(day),
                _week(day),
                day.year * 100 + day.month if day else None,
            )
        case "violations":
            return (k(f["check"]), k(f["premises"]), _code("category", f["category"]), _code("status", f["status"]), f["fine"], day_int(f["day"]))
        case "tips":
            return (_code("tip_status", f["status"]), day_int(f["day"]))
        case "patrols":
            return (k(f["team"]), day_int(f["day"]), f["hours"])
        case "safety_groups":
            return (f["kind"], day_int(f["day"]))
        case "fire_points":
            return (day_int(f["day"]),)
        case _:  # targets
            return (state.id, f["metric"], f["period"], f["target"])


_REFERENCES = ("premises", "team", "officer", "check")


def write(conn: sqlite3.Connection, states: Sequence[RecordState]) -> dict[str, int]:
    """Upsert the projection rows of these record versions (inside the caller's transaction);
    answers the integer keys it used, the records' own among them."""
    reported = [s for s in states if s.collection in _UPSERT]
    if not reported:
        return {}
    zones = _zones(conn, (s.ward_id for s in reported))
    derived = [(s, facts(s, zones[s.ward_id])) for s in reported]
    ids: set[str] = set()
    for state, f in derived:
        ids.update((state.id, state.ward_id))
        assert f is not None
        ids.update(v for name in _REFERENCES if isinstance(v := f.get(name), str))
    key = keys(conn, ids)
    batches: dict[str, list[tuple[Any, ...]]] = {}
    for state, f in derived:
        assert f is not None
        values = (key[state.id], key[state.ward_id], int(not state.deleted), *_columns(state, f, key))
        if state.collection == "checks":
            values = (*values, key[state.id])
        batches.setdefault(state.collection, []).append(values)
    for collection, rows in batches.items():
        head, row, tail = _sql(collection)
        _batch.insert(conn, head, rows, tail, row=row)
    return key


def rebuild(conn: sqlite3.Connection) -> None:
    """Project every stored record again (a migration step, or after a repair)."""
    cursor = conn.execute("SELECT doc, crdt FROM records ORDER BY seq")
    while batch := cursor.fetchmany(2000):
        write(conn, [decode_state(doc, crdt) for doc, crdt in batch])
