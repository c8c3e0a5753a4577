"""Supervision queries on SQLite: aggregates over the projection tables, conflicts,
record history, premises search (FTS5 over folded text) and fleet health."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from typing import Any

import msgspec

from schemas import (
    CheckRow,
    Conflict,
    ConflictSide,
    DeviceHealth,
    FieldChange,
    GroupBy,
    HistoryEntry,
    PremisesHit,
    RecordHistory,
    SummaryReport,
)

from ..base import HealthUpdate, ResolvedConflict, TargetRow

__all__ = [
    "check_rows",
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

_side = msgspec.json.Decoder(ConflictSide)


class _Diff(msgspec.Struct):
    fields: dict[str, tuple[Any, Any]] = {}
    deleted: tuple[bool, bool] | None = None


_diff = msgspec.json.Decoder(_Diff)


def _in(column: str, values: Sequence[str]) -> tuple[str, list[Any]]:
    return f"{column} IN ({','.join('?' * len(values))})", list(values)


def _scope(alias: str, wards: Sequence[str], start: dt.date | None, end: dt.date | None, undated: bool = False) -> tuple[str, list[Any]]:
    """``live`` rows of these wards within the period (``undated``: rows without a day count too)."""
    where, args = _in(f"{alias}.ward_id", wards)
    clauses = [f"{alias}.live = 1", where]
    period = []
    if start is not None:
        period.append(f"{alias}.day >= ?")
        args.append(start.isoformat())
    if end is not None:
        period.append(f"{alias}.day <= ?")
        args.append(end.isoformat())
    if period:
        dated = " AND ".join(period)
        clauses.append(f"({alias}.day IS NULL OR ({dated}))" if undated else dated)
    return " AND ".join(clauses), args


def summary(conn: sqlite3.Connection, wards: Sequence[str], start: dt.date | None, end: dt.date | None) -> SummaryReport:
    report = SummaryReport(wards=list(wards), from_=start, to=end)
    if not wards:
        return report
    where, args = _scope("c", wards, start, end)
    report.checks, report.premises_checked = conn.execute(
        f"SELECT count(*), count(DISTINCT c.premises_id) FROM p_checks c WHERE {where}", args
    ).fetchone()
    in_scope, scope_args = _in("p.ward_id", wards)
    report.premises_checked_by_kind = dict(
        conn.execute(
            f"SELECT coalesce(p.kind, 'unknown'), count(DISTINCT c.premises_id) FROM p_checks c "
            f"LEFT JOIN p_premises p ON p.id = c.premises_id AND p.live = 1 AND {in_scope} "
            f"WHERE {where} GROUP BY 1 ORDER BY 1",
            scope_args + args,
        ).fetchall()
    )
    where, args = _scope("v", wards, start, end)
    by_category: dict[str, int] = {}
    by_status: dict[str, int] = {}
    for category, status, count, fines in conn.execute(
        f"SELECT v.category, v.status, count(*), coalesce(sum(v.fine_vnd), 0) FROM p_violations v WHERE {where} "
        "GROUP BY v.category, v.status",
        args,
    ):
        by_category[category] = by_category.get(category, 0) + count
        by_status[status] = by_status.get(status, 0) + count
        report.violations_recorded += count
        report.fines_vnd += fines
    report.violations_by_category = dict(sorted(by_category.items()))
    report.violations_by_status = dict(sorted(by_status.items()))
    where, args = _scope("t", wards, start, end)
    report.tips_by_status = dict(conn.execute(f"SELECT t.status, count(*) FROM p_tips t WHERE {where} GROUP BY 1 ORDER BY 1", args).fetchall())
    report.tips_received = sum(report.tips_by_status.values())
    where, args = _scope("p", wards, start, end)
    patrols, hours = conn.execute(f"SELECT count(*), coalesce(sum(p.hours), 0.0) FROM p_patrols p WHERE {where}", args).fetchone()
    report.patrols, report.patrol_hours = patrols, round(hours, 2)
    where, args = _scope("g", wards, start, end, undated=True)
    report.fire_safety_groups = conn.execute(f"SELECT count(*) FROM p_safety_groups g WHERE {where} AND g.kind = 'fire_safety'", args).fetchone()[0]
    where, args = _scope("f", wards, start, end, undated=True)
    report.public_fire_points = conn.execute(f"SELECT count(*) FROM p_fire_points f WHERE {where}", args).fetchone()[0]
    return report


_GROUP_KEYS: dict[str, str] = {
    "ward": "c.ward_id",
    "team": "c.team_id",
    "officer": "c.officer",
    "check_kind": "c.kind",
    "premises_kind": "p.kind",
    "day": "c.day",
    "week": "c.week",
    "month": "c.month",
}


def check_rows(conn: sqlite3.Connection, wards: Sequence[str], group_by: GroupBy, start: dt.date | None, end: dt.date | None) -> list[CheckRow]:
    if not wards:
        return []
    where, args = _scope("c", wards, start, end)
    key = _GROUP_KEYS[group_by]
    join, join_args = "", list[Any]()
    if group_by == "premises_kind":
        in_scope, join_args = _in("p.ward_id", wards)
        join = f"LEFT JOIN p_premises p ON p.id = c.premises_id AND p.live = 1 AND {in_scope}"
    v_scope, v_args = _in("v.ward_id", wards)
    sql = f"""
        WITH c AS (SELECT c.id, c.premises_id, coalesce({key}, 'unknown') AS key FROM p_checks c {join} WHERE {where}),
             v AS (SELECT v.check_id, count(*) AS n FROM p_violations v
                    WHERE v.live = 1 AND {v_scope} AND v.check_id IN (SELECT id FROM c) GROUP BY v.check_id)
        SELECT c.key, count(*), count(DISTINCT c.premises_id), coalesce(sum(v.n), 0)
          FROM c LEFT JOIN v ON v.check_id = c.id GROUP BY c.key ORDER BY c.key"""
    return [CheckRow(key=str(k), checks=n, premises=p, violations=v) for k, n, p, v in conn.execute(sql, join_args + args + v_args)]


def targets(conn: sqlite3.Connection, wards: Sequence[str], period: str | None) -> list[TargetRow]:
    if not wards:
        return []
    where, args = _in("ward_id", wards)
    sql = f"SELECT id, ward_id, metric, period, target FROM p_targets WHERE live = 1 AND {where}"
    if period is not None:
        sql += " AND period = ?"
        args.append(period)
    return [TargetRow(*row) for row in conn.execute(sql + " ORDER BY ward_id, period, metric, id", args)]


# -- conflicts -------------------------------------------------------------------------

_CONFLICT_COLUMNS = (
    "id, collection, record_id, field, kind, winner, server, client, ward_id, device_id, user_id, "
    "changeset_id, created_at, status, resolved_by, resolved_at, resolution"
)


def _conflict(row: sqlite3.Row | tuple[Any, ...]) -> Conflict:
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
    sql = f"SELECT {_CONFLICT_COLUMNS} FROM conflicts WHERE {where} ORDER BY id LIMIT ?"
    return [_conflict(row) for row in conn.execute(sql, [*args, limit])]


def conflict(conn: sqlite3.Connection, conflict_id: int) -> Conflict | None:
    row = conn.execute(f"SELECT {_CONFLICT_COLUMNS} FROM conflicts WHERE id = ?", (conflict_id,)).fetchone()
    return _conflict(row) if row else None


def resolve_conflicts(conn: sqlite3.Connection, resolved: Sequence[ResolvedConflict]) -> None:
    conn.executemany(
        "UPDATE conflicts SET status = 'resolved', resolved_by = ?, resolved_at = ?, resolution = ? WHERE id = ?",
        [(r.resolved_by, r.resolved_at, r.resolution, r.conflict_id) for r in resolved],
    )


# -- history ---------------------------------------------------------------------------


def history(conn: sqlite3.Connection, collection: str, record_id: str) -> RecordHistory | None:
    row = conn.execute("SELECT ward_id FROM records WHERE collection = ? AND id = ?", (collection, record_id)).fetchone()
    if row is None:
        return None
    entries = []
    for seq, at, user_id, device_id, changeset_id, diff in conn.execute(
        "SELECT seq, at, user_id, device_id, changeset_id, diff FROM edits WHERE collection = ? AND record_id = ? ORDER BY id",
        (collection, record_id),
    ):
        body = _diff.decode(diff)
        entries.append(
            HistoryEntry(
                seq=seq,
                at=at,
                user_id=user_id,
                device_id=device_id,
                changeset_id=changeset_id,
                changes={name: FieldChange(old=old, new=new) for name, (old, new) in body.fields.items()},
                deleted=FieldChange(old=body.deleted[0], new=body.deleted[1]) if body.deleted else None,
            )
        )
    return RecordHistory(collection=collection, id=record_id, ward_id=row[0], edits=entries)


# -- search ----------------------------------------------------------------------------


def search_premises(conn: sqlite3.Connection, wards: Sequence[str], terms: Sequence[str], kind: str | None, limit: int) -> list[PremisesHit]:
    if not wards or not terms:
        return []
    match = " ".join('"' + term.replace('"', '""') + '"*' for term in terms)  # every term, as a word prefix
    where, args = _in("p.ward_id", wards)
    if kind is not None:
        where += " AND p.kind = ?"
        args.append(kind)
    sql = f"""
        SELECT p.id, p.ward_id, p.name, p.kind, p.address, p.owner_name, bm25(premises_search, 10.0, 4.0, 2.0) AS rank
          FROM premises_search JOIN p_premises p ON p.pk = premises_search.rowid
         WHERE premises_search MATCH ? AND p.live = 1 AND {where}
         ORDER BY rank LIMIT ?"""
    return [
        PremisesHit(id=i, ward_id=w, name=n or "", kind=k or "", address=a, owner_name=o, score=round(-rank, 6))
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
        SELECT d.device_id, d.user_id, d.revoked_at IS NOT NULL, ({_DEVICE_WARDS}),
               h.last_push_at, h.last_pull_at, h.client, h.client_version, h.schema, h.pending, h.clock_offset_ms,
               coalesce(h.rejected, 0)
          FROM devices d LEFT JOIN device_health h ON h.device_id = d.device_id
         ORDER BY d.device_id"""
    wanted = set(wards) if wards is not None else None
    out = []
    for row in conn.execute(sql):
        device_wards = sorted(row[3].split(",")) if row[3] else []
        if wanted is not None and not wanted.intersection(device_wards):
            continue
        out.append(
            DeviceHealth(
                device_id=row[0],
                user_id=row[1],
                revoked=bool(row[2]),
                wards=device_wards,
                last_push_at=row[4],
                last_pull_at=row[5],
                client=row[6],
                client_version=row[7],
                schema=row[8],
                pending=row[9],
                clock_offset_ms=row[10],
                rejected=row[11],
            )
        )
    return out
