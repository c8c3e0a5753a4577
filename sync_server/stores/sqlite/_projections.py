"""Writing report projections (``stores/projections.py``) to SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from ...engine.state import RecordState, decode_state
from ..projections import PROJECTIONS, Projection, project

__all__ = ["rebuild", "write"]

_DEFAULT_ZONE = "Asia/Ho_Chi_Minh"


@cache
def _upsert(projection: Projection) -> str:
    columns = ("id", "ward_id", "live", *projection.columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
    return (
        f"INSERT INTO {projection.table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT (id) DO UPDATE SET {updates}"
    )


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _zones(conn: sqlite3.Connection, wards: Iterable[str]) -> dict[str, ZoneInfo]:
    wanted = sorted(set(wards))
    if not wanted:
        return {}
    sql = f"SELECT id, timezone FROM wards WHERE id IN ({','.join('?' * len(wanted))})"
    found = {ward: _zone(tz) for ward, tz in conn.execute(sql, wanted)}
    return {ward: found.get(ward) or _zone(_DEFAULT_ZONE) for ward in wanted}


def write(conn: sqlite3.Connection, states: Sequence[RecordState]) -> None:
    """Upsert the projection rows of these record versions (inside the caller's transaction)."""
    zones = _zones(conn, (s.ward_id for s in states if s.collection in PROJECTIONS))
    batches: dict[Projection, list[tuple[Any, ...]]] = {}
    for state in states:
        row = project(state, zones.get(state.ward_id) or _zone(_DEFAULT_ZONE))
        if row is not None:
            batches.setdefault(row[0], []).append(row[1])
    for projection, rows in batches.items():
        conn.executemany(_upsert(projection), rows)


def rebuild(conn: sqlite3.Connection) -> None:
    """Project every stored record again (a migration step, or after a repair)."""
    cursor = conn.execute("SELECT doc, crdt FROM records ORDER BY seq")
    while batch := cursor.fetchmany(2000):
        write(conn, [decode_state(doc, crdt) for doc, crdt in batch])
