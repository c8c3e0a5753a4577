"""Supervision queries on SQLite: aggregates over the projection tables, conflicts,
record history, premises search (FTS5 over folded text) and fleet health."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from typing import Any

from schemas import (
    CheckRow,
    Conflict,
    DeviceHealth,
    GroupBy,
    PremisesHit,
    RecordHistory,
    SummaryReport,
)

from .._rows import CONFLICT_COLUMNS, HEALTH_COLUMNS, conflict_from_row, health_from_row, history_entry
from ..base import HealthUpdate, ResolvedConflict, TargetRow
from ..errors import AlreadyExists
from ..projections import ENUMS
from . import _projections

__all__ = [
    "check_rows",
    "checks_per_day",
    "conflict",
    "conflicts",
    "fleet_health",
    "history",
    "record_health",
    "resolve_conflicts",
    "search_premises",
    "summary",
    "targets",
]




def _in(column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    return f"{column} IN ({','.join('?' * len(values))})", list(values)


def _ward_keys(conn: sqlite3.Connection, wards: Sequence[str]) -> dict[int, str]:
    """Ward keys of these ward ids (a ward no record ever named has none: nothing to count)."""
    return {key: ward for ward, key in _projections.keys(conn, wards, create=False).items()}


def _scope(
    alias: str, wards: Sequence[int], start: dt.date | None, end: dt.date | None, undated: bool = False
) -> tuple[str, list[Any]]:
    """``live`` rows of these ward keys within the period (``undated``: rows without a day count too)."""
    where, args = _in(f"{alias}.ward", wards)
    clauses = [f"{alias}.live = 1", where]
    period = []
    if start is not None:
        period.append(f"{alias}.day >= ?")
        args.append(_projections.day_int(start))
    if end is not None:
        period.append(f"{alias}.day <= ?")
        args.append(_projections.day_int(end))
    if period:
        dated = " AND ".join(period)
        clauses.append(f"({alias}.day IS NULL OR ({dated}))" if undated else dated)
    return " AND ".join(clauses), args


def _tally(wards: Sequence[int], start: dt.date | None, end: dt.date | None) -> tuple[str, list[Any]]:
    """Rows of the report tally (``p_tally``, migration 8) of these ward keys within the
    period; a period leaves out the rows of records without a date (day 0)."""
    where, args = _in("t.ward", wards)
    if start is not None or end is not None:
        where += " AND t.day BETWEEN ? AND ?"
        args += [_projections.day_int(start or dt.date.min), _projections.day_int(end or dt.date.max)]
    return where, args


def checks_per_day(conn: sqlite3.Connection, wards: Sequence[str], start: dt.date | None, end: dt.date | None) -> list[tuple[dt.date, int]]:
    keys = list(_ward_keys(conn, wards))
    if not keys:
        return []
    where, args = _tally(keys, start, end)
    sql = f"SELECT t.day, sum(t.n) FROM p_tally t WHERE {where} AND t.fact = 0 AND t.day > 0 GROUP BY t.day HAVING sum(t.n) > 0 ORDER BY t.day"
    return [(dt.date(day // 10000, day // 100 % 100, day % 100), n) for day, n in conn.execute(sql, args)]


def _label(enum: str, code: int | None) -> str:
    values = ENUMS[enum]
    return values[code] if code is not None and 0 <= code < len(values) else "unknown"


def summary(conn: sqlite3.Connection, wards: Sequence[str], start: dt.date | None, end: dt.date | None) -> SummaryReport:
    report = SummaryReport(wards=list(wards), from_=start, to=end)
    keys = list(_ward_keys(conn, wards))
    if not keys:
        return report
    dated = start is not None or end is not None
    in_scope, scope_args = _in("p.ward", keys)
    if dated:
        # distinct premises of a period: group its checks by premises (exact; linear in the period's checks)
        where, args = _scope("c", keys, start, end)
        per_premises = f"SELECT c.premises, count(*) AS n FROM p_checks c INDEXED BY p_checks_ward_day WHERE {where} GROUP BY c.premises"
    else:
        # all time: the tally's row per checked premises (migration 8), no pass over the checks
        where, args = _in("t.ward", keys)
        per_premises = f"SELECT t.value AS premises, sum(t.n) AS n FROM p_tally t WHERE {where} AND t.day = 0 AND t.fact = 3 AND t.n > 0 GROUP BY t.value"
    by_kind: dict[str, int] = {}
    for kind, premises, checks in conn.execute(
        f"SELECT p.kind, count(*), sum(g.n) FROM ({per_premises}) g "
        f"LEFT JOIN p_premises p ON p.rk = g.premises AND p.live = 1 AND {in_scope} GROUP BY p.kind",
        args + scope_args,
    ):
        name = _label("premises_kind", kind)
        by_kind[name] = by_kind.get(name, 0) + premises
        report.premises_checked += premises
        report.checks += checks
    report.premises_checked_by_kind = dict(sorted(by_kind.items()))
    where, args = _tally(keys, start, end) if dated else (f"{_in('t.ward', keys)[0]} AND t.day = -1", list(keys))  # -1: all days
    by_category: dict[str, int] = {}
    by_status: dict[str, int] = {}
    for fact, value, count, fines in conn.execute(
        f"SELECT t.fact, t.value, sum(t.n), sum(t.amount) FROM p_tally t WHERE {where} AND t.fact IN (1, 2) GROUP BY t.fact, t.value",
        args,
    ):
        if count == 0:
            continue
        if fact == 1:
            name = _label("category", value)
            by_category[name] = by_category.get(name, 0) + count
            report.violations_recorded += count
            report.fines_vnd += fines
        else:
            state = _label("status", value)
            by_status[state] = by_status.get(state, 0) + count
    report.violations_by_category = dict(sorted(by_category.items()))
    report.violations_by_status = dict(sorted(by_status.items()))
    where, args = _scope("t", keys, start, end)
    report.tips_by_status = dict(
        sorted((_label("tip_status", s), n) for s, n in conn.execute(f"SELECT t.status, count(*) FROM p_tips t WHERE {where} GROUP BY 1", args))
    )
    report.tips_received = sum(report.tips_by_status.values())
    where, args = _scope("p", keys, start, end)
    patrols, hours = conn.execute(f"SELECT count(*), coalesce(sum(p.hours), 0.0) FROM p_patrols p WHERE {where}", args).fetchone()
    report.patrols, report.patrol_hours = patrols, round(hours, 2)
    where, args = _scope("g", keys, start, end, undated=True)
    report.fire_safety_groups = conn.execute(f"SELECT count(*) FROM p_safety_groups g WHERE {where} AND g.kind = 'fire_safety'", args).fetchone()[0]
    where, args = _scope("f", keys, start, end, undated=True)
    report.public_fire_points = conn.execute(f"SELECT count(*) FROM p_fire_points f WHERE {where}", args).fetchone()[0]
    return report


#: group_by -> (column, the index that yields the checks of a city in group order, or
#: the ward-day index when the rows are sorted instead)
_GROUPS: dict[str, tuple[str, str]] = {
    "ward": ("ward", "p_checks_ward_day"),
    "team": ("team", "p_checks_ward_day"),
    "officer": ("officer", "p_checks_officer"),
    "check_kind": ("kind", "p_checks_ward_day"),
    "day": ("day", "p_checks_ward_day"),
    "week": ("week", "p_checks_ward_day"),
    "month": ("month", "p_checks_month"),
}


def _group_label(group_by: str, value: Any, names: dict[int, str]) -> str:
    if value is None or value == -1:
        return "unknown"
    match group_by:
        case "check_kind":
            return _label("check_kind", value)
        case "premises_kind":
            return _label("premises_kind", value)
        case "day":
            return f"{value // 10000:04d}-{value // 100 % 100:02d}-{value % 100:02d}"
        case "week":
            return f"{value // 100:04d}-W{value % 100:02d}"
        case "month":
            return f"{value // 100:04d}-{value % 100:02d}"
    return names.get(value, "unknown")


def check_rows(conn: sqlite3.Connection, wards: Sequence[str], group_by: GroupBy, start: dt.date | None, end: dt.date | None) -> list[CheckRow]:
    keys = list(_ward_keys(conn, wards))
    if not keys:
        return []
    where, args = _scope("c", keys, start, end)
    dated = start is not None or end is not None
    if group_by == "premises_kind":
        in_scope, scope_args = _in("p.ward", keys)
        index = "p_checks_ward_day" if dated else "p_checks_premises"
        sql = f"""
            SELECT coalesce(p.kind, -1), sum(g.n), count(*), sum(g.nv)
              FROM (SELECT c.premises, count(*) AS n, sum(c.nv) AS nv FROM p_checks c INDEXED BY {index}
                     WHERE {where} GROUP BY c.premises) g
              LEFT JOIN p_premises p ON p.rk = g.premises AND p.live = 1 AND {in_scope}
             GROUP BY 1"""
        rows = conn.execute(sql, args + scope_args).fetchall()
    else:
        column, index = _GROUPS[group_by]
        if dated and group_by != "ward":
            index = "p_checks_ward_day"  # a period: its rows first, then group them
        sql = f"SELECT c.{column}, count(*), count(DISTINCT c.premises), sum(c.nv) FROM p_checks c INDEXED BY {index} WHERE {where} GROUP BY c.{column}"
        rows = conn.execute(sql, args).fetchall()
    names: dict[int, str] = {}
    if group_by in ("ward", "team", "officer"):
        ids = [r[0] for r in rows if r[0] is not None]
        for start_at in range(0, len(ids), 400):
            chunk = ids[start_at : start_at + 400]
            names.update(conn.execute(f"SELECT key, id FROM p_keys WHERE key IN ({','.join('?' * len(chunk))})", chunk).fetchall())
    merged: dict[str, list[int]] = {}
    for value, checks, premises, violations in rows:
        total = merged.setdefault(_group_label(group_by, value, names), [0, 0, 0])
        total[0] += checks
        total[1] += premises
        total[2] += violations or 0
    return [CheckRow(key=k, checks=c, premises=p, violations=v) for k, (c, p, v) in sorted(merged.items())]


def targets(conn: sqlite3.Connection, wards: Sequence[str], period: str | None) -> list[TargetRow]:
    names = _ward_keys(conn, wards)
    if not names:
        return []
    where, args = _in("ward", list(names))
    sql = f"SELECT id, ward, metric, period, target FROM p_targets WHERE live = 1 AND {where}"
    if period is not None:
        sql += " AND period = ?"
        args.append(period)
    rows = [TargetRow(i, names[w], m, p, t) for i, w, m, p, t in conn.execute(sql, args)]
    return sorted(rows, key=lambda r: (r.ward_id, r.period, r.metric, r.id))


# -- conflicts -------------------------------------------------------------------------





def conflicts(
    conn: sqlite3.Connection, wards: Sequence[str], status: str | None, collection: str | None, after: int | None, limit: int
) -> list[Conflict]:
    if not wards:
        return []
    where, args = _in("ward_id", wards)
    for column, value in (("status", status), ("collection", collection)):
        if value is not None:
            where += f" AND {column} = ?"
            args.append(value)
    if after is not None:
        where += " AND id > ?"
        args.append(after)
    sql = f"SELECT {CONFLICT_COLUMNS} FROM conflicts WHERE {where} ORDER BY id LIMIT ?"
    return [conflict_from_row(row) for row in conn.execute(sql, [*args, limit])]


def conflict(conn: sqlite3.Connection, conflict_id: int) -> Conflict | None:
    row = conn.execute(f"SELECT {CONFLICT_COLUMNS} FROM conflicts WHERE id = ?", (conflict_id,)).fetchone()
    return conflict_from_row(row) if row else None


def resolve_conflicts(conn: sqlite3.Connection, resolved: Sequence[ResolvedConflict]) -> None:
    """Only a conflict still open is resolved: a second resolution, even one racing the
    first, finds it resolved and fails its whole transaction (its edit too)."""
    for r in resolved:
        done = conn.execute(
            "UPDATE conflicts SET status = 'resolved', resolved_by = ?, resolved_at = ?, resolution = ? WHERE id = ? AND status = 'open'",
            (r.resolved_by, r.resolved_at, r.resolution, r.conflict_id),
        )
        if done.rowcount != 1:
            raise AlreadyExists(f"conflict c-{r.conflict_id} is resolved already")


# -- history ---------------------------------------------------------------------------


def history(conn: sqlite3.Connection, collection: str, record_id: str) -> RecordHistory | None:
    row = conn.execute("SELECT ward_id FROM records WHERE collection = ? AND id = ?", (collection, record_id)).fetchone()
    if row is None:
        return None
    entries = []
    for seq, at, user_id, device_id, changeset_id, diff in conn.execute(
        "SELECT seq, at, user_id, device_id, changeset_id, diff FROM edits "
        "WHERE rk = (SELECT key FROM p_keys WHERE id = ?) AND collection = ? ORDER BY id",  # (a key is one id)
        (record_id, collection),
    ):
        entries.append(history_entry(seq, at, user_id, device_id, changeset_id, diff))
    return RecordHistory(collection=collection, id=record_id, ward_id=row[0], edits=entries)


# -- search ----------------------------------------------------------------------------


def search_premises(conn: sqlite3.Connection, wards: Sequence[str], terms: Sequence[str], kind: str | None, limit: int) -> list[PremisesHit]:
    names = _ward_keys(conn, wards)
    if not names or not terms:
        return []
    match = " ".join('"' + term.replace('"', '""') + '"*' for term in terms)  # every term, as a word prefix
    where, args = _in("p.ward", list(names))
    if kind is not None:
        where += " AND p.kind = ?"
        args.append(_projections.CODES["premises_kind"].get(kind, -1))
    sql = f"""
        SELECT k.id, p.ward, p.name, p.kind, p.address, p.owner_name, bm25(premises_search, 10.0, 4.0, 2.0) AS rank
          FROM premises_search JOIN p_premises p ON p.rk = premises_search.rowid JOIN p_keys k ON k.key = p.rk
         WHERE premises_search MATCH ? AND p.live = 1 AND {where}
         ORDER BY rank LIMIT ?"""
    return [
        PremisesHit(id=i, ward_id=names[w], name=n or "", kind=_label("premises_kind", k), address=a, owner_name=o, score=round(-rank, 6))
        for i, w, n, k, a, o, rank in conn.execute(sql, [match, *args, limit])
    ]


# -- fleet health ----------------------------------------------------------------------


def record_health(conn: sqlite3.Connection, updates: Sequence[HealthUpdate]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(
            """INSERT INTO device_health (device_id, last_push_at, last_pull_at, client, client_version, schema, pending,
                                          clock_offset_ms, rejected)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (device_id) DO UPDATE SET
                   last_push_at = coalesce(excluded.last_push_at, last_push_at),
                   last_pull_at = coalesce(excluded.last_pull_at, last_pull_at),
                   client = coalesce(excluded.client, client),
                   client_version = coalesce(excluded.client_version, client_version),
                   schema = coalesce(excluded.schema, schema),
                   pending = coalesce(excluded.pending, pending),
                   clock_offset_ms = coalesce(excluded.clock_offset_ms, clock_offset_ms),
                   rejected = rejected + excluded.rejected""",
            [
                (u.device_id, u.last_push_at, u.last_pull_at, u.client, u.client_version, u.schema, u.pending, u.clock_offset_ms, u.rejected)
                for u in updates
            ],
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


_DEVICE_WARDS = """
    SELECT group_concat(w) FROM (
        SELECT t.ward_id AS w FROM user_teams ut JOIN teams t ON t.id = ut.team_id WHERE ut.user_id = d.user_id
        UNION SELECT ward_id FROM user_wards WHERE user_id = d.user_id)"""


def fleet_health(conn: sqlite3.Connection, wards: Sequence[str] | None) -> list[DeviceHealth]:
    sql = f"""
        SELECT {HEALTH_COLUMNS}, ({_DEVICE_WARDS}) AS wards
          FROM devices d LEFT JOIN device_health h ON h.device_id = d.device_id
         ORDER BY d.device_id"""
    wanted = set(wards) if wards is not None else None
    out = []
    for row in conn.execute(sql):
        device_wards = sorted(row["wards"].split(",")) if row["wards"] else []
        if wanted is None or wanted.intersection(device_wards):
            out.append(health_from_row(row, device_wards))
    return out
