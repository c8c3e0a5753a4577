"""Report projections: typed, indexed rows derived from each record as it is written.

Reports are SQL aggregates over these rows, never loops over JSON. Every store
keeps one table per reported collection (``p_<collection>``), updated in the same
transaction as the record, with ``live`` false for tombstones. Dates are the
record's local day in its ward's time zone, so a period filter is a range scan.

| collection    | the record's day from | other columns                                       |
| ------------- | --------------------- | --------------------------------------------------- |
| checks        | started_at            | premises_id, kind, team_id, officer, week, month    |
| violations    | created_at            | check_id, premises_id, category, status, fine_vnd   |
| tips          | received_at           | status                                              |
| patrols       | started_at            | team_id, hours (ended_at - started_at, both set)    |
| safety_groups | established_on        | kind                                                |
| fire_points   | established_on        |                                                     |
| targets       | (period)              | metric, period, target                              |
| premises      | —                     | kind, name, address, owner_name, and folded text    |
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from schemas.text import fold

from ..engine.state import RecordState

__all__ = ["PROJECTIONS", "Projection", "project"]


@dataclasses.dataclass(frozen=True)
class Projection:
    table: str
    columns: tuple[str, ...]  # besides id, ward_id, live
    values: Callable[[Mapping[str, Any], ZoneInfo], tuple[Any, ...]]


def _local_day(value: Any, tz: ZoneInfo) -> dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.date()
    return moment.astimezone(tz).date()


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def _week(day: dt.date | None) -> str | None:
    if day is None:
        return None
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _hours(start: Any, end: Any) -> float | None:
    try:
        duration = dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)
    except (TypeError, ValueError):
        return None
    seconds = duration.total_seconds()
    return seconds / 3600 if seconds >= 0 else None  # an end before the start is a typo, not time worked


def _checks(f: Mapping[str, Any], tz: ZoneInfo) -> tuple[Any, ...]:
    day = _local_day(f.get("started_at"), tz)
    officer = f.get("officer_id") or f.get("created_by")
    month = f"{day.year:04d}-{day.month:02d}" if day else None
    return (f.get("premises_id"), f.get("kind"), f.get("team_id"), officer, _iso(day), _week(day), month)


def _violations(f: Mapping[str, Any], tz: ZoneInfo) -> tuple[Any, ...]:
    day = _local_day(f.get("created_at"), tz)
    return (f.get("check_id"), f.get("premises_id"), f.get("category"), f.get("status"), f.get("fine_vnd"), _iso(day))


def _tips(f: Mapping[str, Any], tz: ZoneInfo) -> tuple[Any, ...]:
    return (f.get("status"), _iso(_local_day(f.get("received_at"), tz)))


def _patrols(f: Mapping[str, Any], tz: ZoneInfo) -> tuple[Any, ...]:
    return (f.get("team_id"), _iso(_local_day(f.get("started_at"), tz)), _hours(f.get("started_at"), f.get("ended_at")))


def _established(f: Mapping[str, Any]) -> str | None:
    value = f.get("established_on")
    return value if isinstance(value, str) else None


def _premises(f: Mapping[str, Any], tz: ZoneInfo) -> tuple[Any, ...]:
    name, address, owner = f.get("name"), f.get("address"), f.get("owner_name")
    return (f.get("kind"), name, address, owner, fold(name or ""), fold(address or ""), fold(owner or ""))


PROJECTIONS: Mapping[str, Projection] = {
    "premises": Projection(
        "p_premises", ("kind", "name", "address", "owner_name", "name_folded", "address_folded", "owner_folded"), _premises
    ),
    "checks": Projection("p_checks", ("premises_id", "kind", "team_id", "officer", "day", "week", "month"), _checks),
    "violations": Projection("p_violations", ("check_id", "premises_id", "category", "status", "fine_vnd", "day"), _violations),
    "tips": Projection("p_tips", ("status", "day"), _tips),
    "patrols": Projection("p_patrols", ("team_id", "day", "hours"), _patrols),
    "safety_groups": Projection("p_safety_groups", ("kind", "day"), lambda f, tz: (f.get("kind"), _established(f))),
    "fire_points": Projection("p_fire_points", ("day",), lambda f, tz: (_established(f),)),
    "targets": Projection("p_targets", ("metric", "period", "target"), lambda f, tz: (f.get("metric"), f.get("period"), f.get("target"))),
}


def project(state: RecordState, tz: ZoneInfo) -> tuple[Projection, tuple[Any, ...]] | None:
    """The projection row of a record: (id, ward_id, live, *columns)."""
    projection = PROJECTIONS.get(state.collection)
    if projection is None:
        return None
    return projection, (state.id, state.ward_id, int(not state.deleted), *projection.values(state.fields, tz))
