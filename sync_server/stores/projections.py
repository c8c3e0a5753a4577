"""Report facts: what reports count of each record, derived as the record is written.

Reports are SQL aggregates over per-collection projection tables, never loops over
JSON. Each store keeps those tables its own way (the SQLite store interns ids and
enums as integers); this module says what goes in them, the same for every store.
Days are the record's local day in its ward's time zone, so a period is a range.

| collection    | the record's day from | other facts                                          |
| ------------- | --------------------- | ---------------------------------------------------- |
| checks        | started_at            | premises, kind, team, officer (officer_id or author) |
| violations    | created_at            | check, premises, category, status, fine              |
| tips          | received_at           | status                                               |
| patrols       | started_at            | team, hours (ended_at - started_at, both set, >= 0)  |
| safety_groups | established_on        | kind                                                 |
| fire_points   | established_on        |                                                      |
| targets       | (its period)          | metric, period, target                               |
| premises      | —                     | kind, name, address, owner, and their folded text    |
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from schemas.collections import CheckKind, PremisesKind, TipStatus, ViolationCategory, ViolationStatus
from schemas.text import fold

from ..engine.state import RecordState

__all__ = ["ENUMS", "PROJECTIONS", "Projection", "facts", "hours", "local_day", "project"]

#: the values of each reported enum, in declaration order (their codes, where a store codes them)
ENUMS: Mapping[str, tuple[str, ...]] = {
    "premises_kind": typing.get_args(PremisesKind),
    "check_kind": typing.get_args(CheckKind),
    "category": typing.get_args(ViolationCategory),
    "status": typing.get_args(ViolationStatus),
    "tip_status": typing.get_args(TipStatus),
}


def local_day(value: Any, tz: ZoneInfo) -> dt.date | None:
    """The day of an RFC 3339 time in a zone, or of a plain date."""
    if not isinstance(value, str):
        return None
    try:
        if len(value) == 10:
            return dt.date.fromisoformat(value)
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(tz).date() if moment.tzinfo else moment.date()


def hours(start: Any, end: Any) -> float | None:
    try:
        duration = dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)
    except (TypeError, ValueError):
        return None
    seconds = duration.total_seconds()
    return seconds / 3600 if seconds >= 0 else None  # an end before the start is a typo, not time worked


def facts(state: RecordState, tz: ZoneInfo) -> dict[str, Any] | None:
    """What reports count of a record (None for collections no report counts)."""
    f = state.fields
    match state.collection:
        case "checks":
            return {
                "premises": f.get("premises_id"),
                "kind": f.get("kind"),
                "team": f.get("team_id"),
                "officer": f.get("officer_id") or f.get("created_by"),
                "day": local_day(f.get("started_at"), tz),
            }
        case "violations":
            return {
                "check": f.get("check_id"),
                "premises": f.get("premises_id"),
                "category": f.get("category"),
                "status": f.get("status"),
                "fine": f.get("fine_vnd"),
                "day": local_day(f.get("created_at"), tz),
            }
        case "tips":
            return {"status": f.get("status"), "day": local_day(f.get("received_at"), tz)}
        case "patrols":
            return {"team": f.get("team_id"), "day": local_day(f.get("started_at"), tz), "hours": hours(f.get("started_at"), f.get("ended_at"))}
        case "safety_groups":
            return {"kind": f.get("kind"), "day": local_day(f.get("established_on"), tz)}
        case "fire_points":
            return {"day": local_day(f.get("established_on"), tz)}
        case "targets":
            return {"metric": f.get("metric"), "period": f.get("period"), "target": f.get("target")}
        case "premises":
            name, address, owner = f.get("name"), f.get("address"), f.get("owner_name")
            return {
                "kind": f.get("kind"),
                "name": name,
                "address": address,
                "owner": owner,
                "name_folded": fold(name or ""),
                "address_folded": fold(address or ""),
                "owner_folded": fold(owner or ""),
            }
    return None


# -- rows of text columns, for stores that group on text (PostgreSQL) -----------------
# (the SQLite store codes the facts above as integers instead: stores/sqlite/_projections.py)


@dataclasses.dataclass(frozen=True)
class Projection:
    table: str
    columns: tuple[str, ...]  # besides id, ward_id, live
    values: Callable[[Mapping[str, Any], ZoneInfo], tuple[Any, ...]]


def _local_day(value: Any, tz: ZoneInfo) -> dt.date | None:
    return local_day(value, tz)


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def _week(day: dt.date | None) -> str | None:
    if day is None:
        return None
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _hours(start: Any, end: Any) -> float | None:
    return hours(start, end)


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
