"""Writing report projections (``stores/projections.py``) to PostgreSQL.

One upsert per projection table a group touches, its rows as ``unnest`` arrays.
Ward time zones never change once a ward exists, so each worker keeps them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from ...engine.state import RecordState, decode_state
from ..projections import PROJECTIONS, Projection, project

__all__ = ["Zones", "rebuild", "write"]

_DEFAULT_ZONE = "Asia/Ho_Chi_Minh"
#: column types where not text (for the ``unnest`` casts)
_TYPES = {"live": "integer", "fine_vnd": "bigint", "target": "bigint", "hours": "double precision"}


@cache
def _upsert(projection: Projection) -> str:
    columns = ("id", "ward_id", "live", *projection.columns)
    arrays = ", ".join(f"${i}::{_TYPES.get(c, 'text')}[]" for i, c in enumerate(columns, 1))
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
    return (
        f"INSERT INTO {projection.table} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) "
        f"ON CONFLICT (id) DO UPDATE SET {updates}"
    )


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


class Zones:
    """Each ward's time zone, read once per worker."""

    def __init__(self) -> None:
        self._known: dict[str, ZoneInfo] = {}

    async def of(self, conn: Any, wards: Iterable[str]) -> dict[str, ZoneInfo]:
        wanted = set(wards)
        missing = sorted(wanted - self._known.keys())
        if missing:
            rows = await conn.fetch("SELECT id, timezone FROM wards WHERE id = ANY($1::text[])", missing)
            for ward, tz in rows:
                self._known[ward] = _zone(tz)
        return {ward: self._known.get(ward) or _zone(_DEFAULT_ZONE) for ward in wanted}


async def write(conn: Any, zones: Zones, states: Sequence[RecordState]) -> None:
    """Upsert the projection rows of these record versions (inside the caller's transaction)."""
    projected = [s for s in states if s.collection in PROJECTIONS]
    if not projected:
        return
    tz = await zones.of(conn, (s.ward_id for s in projected))
    batches: dict[Projection, list[tuple[Any, ...]]] = {}
    for state in projected:
        row = project(state, tz[state.ward_id])
        if row is not None:
            batches.setdefault(row[0], []).append(row[1])
    for projection, rows in batches.items():
        await conn.execute(_upsert(projection), *(list(column) for column in zip(*rows, strict=True)))


async def rebuild(conn: Any) -> None:
    """Project every stored record again (a migration step, or after a repair)."""
    zones = Zones()
    last = -1
    while rows := await conn.fetch("SELECT pos, doc, crdt FROM records WHERE pos > $1 ORDER BY pos LIMIT 2000", last):
        await write(conn, zones, [decode_state(doc, crdt) for _, doc, crdt in rows])
        last = rows[-1][0]
