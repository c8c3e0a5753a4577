"""Supervision queries on PostgreSQL: the SQLite store's (``sqlite/_supervision.py``)
in this dialect. Premises search is a prefix ``tsquery`` over the folded words,
weighted name > address > owner."""

from __future__ import annotations

import datetime as dt
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




class _Args:
    """Positional parameters, numbered as they are added."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any, cast: str = "") -> str:
        self.values.append(value)
        return f"${len(self.values)}{cast}"


def _scope(alias: str, a: _Args, wards: Sequence[str], start: dt.date | None, end: dt.date | None, undated: bool = False) -> str:
    """``live`` rows of these wards within the period (``undated``: rows without a day count too)."""
    clauses = [f"{alias}.live = 1", f"{alias}.ward_id = ANY({a(list(wards), '::text[]')})"]
    period = []
    if start is not None:
        period.append(f"{alias}.day >= {a(start.isoformat(), '::text')}")
    if end is not None:
        period.append(f"{alias}.day <= {a(end.isoformat(), '::text')}")
    if period:
        dated = " AND ".join(period)
        clauses.append(f"({alias}.day IS NULL OR ({dated}))" if undated else dated)
    return " AND ".join(clauses)


#: the report counters as they stand: folded rows plus the deltas not folded yet (migration 7)
_TALLY = "SELECT ward_id, day, fact, value, n, amount FROM p_tally UNION ALL SELECT ward_id, day, fact, value, n, amount FROM p_tally_delta"
_FOLD_LOCK = 0x7461_6C6C_79  # "tally": one folder at a time
_FOLD = """
    WITH moved AS (DELETE FROM p_tally_delta RETURNING ward_id, day, fact, value, n, amount)
    INSERT INTO p_tally SELECT ward_id, day, fact, value, sum(n), sum(amount) FROM moved GROUP BY 1, 2, 3, 4
    ON CONFLICT (ward_id, day, fact, value) DO UPDATE SET n = p_tally.n + excluded.n, amount = p_tally.amount + excluded.amount"""


async def _fold(conn: Any) -> None:
    """Fold the tally's deltas into its rows, unless another reader is at it (the sum
    read next is the same either way: the deltas are read with the rows)."""
    async with conn.transaction():
        if await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _FOLD_LOCK):
            await conn.execute(_FOLD)


async def fold_tally(conn: Any) -> None:
    """Fold pending deltas now (the store does it every ``FOLD_EVERY_S``)."""
    await _fold(conn)


def _tally_scope(a: _Args, wards: Sequence[str], start: dt.date | None, end: dt.date | None) -> str:
    """Tally rows of these wards within the period; a period leaves out the rows of
    records without a date ('')."""
    where = f"t.ward_id = ANY({a(list(wards), '::text[]')})"
    if start is not None or end is not None:
        where += f" AND t.day BETWEEN {a((start or dt.date.min).isoformat(), '::text')} AND {a((end or dt.date.max).isoformat(), '::text')}"
    return where


async def checks_per_day(conn: Any, wards: Sequence[str], start: dt.date | None, end: dt.date | None) -> list[tuple[dt.date, int]]:
    if not wards:
        return []
    await _fold(conn)
    a = _Args()
    where = _tally_scope(a, wards, start, end)
    rows = await conn.fetch(
        f"SELECT t.day, sum(t.n) FROM ({_TALLY}) t WHERE {where} AND t.fact = 'checks' AND t.day <> '' GROUP BY 1 HAVING sum(t.n) > 0 ORDER BY 1",
        *a.values,
    )
    return [(dt.date.fromisoformat(day), int(n)) for day, n in rows]


async def summary(conn: Any, wards: Sequence[str], start: dt.date | None, end: dt.date | None) -> SummaryReport:
    report = SummaryReport(wards=list(wards), from_=start, to=end)
    if not wards:
        return report
    await _fold(conn)
    a = _Args()
    in_scope = f"p.ward_id = ANY({a(list(wards), '::text[]')})"
    if start is not None or end is not None:
        # distinct premises of a period: over its checks (exact; linear in the period's checks)
        where = _scope("c", a, wards, start, end)
        per_premises = f"SELECT c.premises_id AS premises, count(*) AS n FROM p_checks c WHERE {where} GROUP BY 1"
    else:
        # all time: the tally's row per checked premises (migration 7), no pass over the checks
        per_premises = (
            f"SELECT t.value AS premises, sum(t.n) AS n FROM ({_TALLY}) t "
            f"WHERE t.ward_id = ANY({a(list(wards), '::text[]')}) AND t.day = '' AND t.fact = 'premises' "
            "GROUP BY 1 HAVING sum(t.n) > 0"
        )
    rows = await conn.fetch(
        f"SELECT coalesce(p.kind, 'unknown'), count(*), sum(g.n) FROM ({per_premises}) g "
        f"LEFT JOIN p_premises p ON p.id = g.premises AND p.live = 1 AND {in_scope} GROUP BY 1 ORDER BY 1",
        *a.values,
    )
    report.premises_checked_by_kind = {k: int(n) for k, n, _ in rows}
    report.premises_checked = sum(report.premises_checked_by_kind.values())
    report.checks = sum(int(c) for _, _, c in rows)
    a = _Args()
    where = _tally_scope(a, wards, start, end)
    if start is None and end is None:
        where += " AND t.day = 'all'"  # the rows of all days together
    by_category: dict[str, int] = {}
    by_status: dict[str, int] = {}
    for fact, value, count, fines in await conn.fetch(
        f"SELECT t.fact, t.value, sum(t.n), sum(t.amount) FROM ({_TALLY}) t WHERE {where} AND t.fact IN ('category', 'status') GROUP BY 1, 2",
        *a.values,
    ):
        if count == 0:
            continue
        name = value or "unknown"
        if fact == "category":
            by_category[name] = by_category.get(name, 0) + int(count)
            report.violations_recorded += int(count)
            report.fines_vnd += int(fines)
        else:
            by_status[name] = by_status.get(name, 0) + int(count)
    report.violations_by_category = dict(sorted(by_category.items()))
    report.violations_by_status = dict(sorted(by_status.items()))
    a = _Args()
    where = _scope("t", a, wards, start, end)
    rows = await conn.fetch(f"SELECT t.status, count(*) FROM p_tips t WHERE {where} GROUP BY 1 ORDER BY 1", *a.values)
    report.tips_by_status = {k: int(n) for k, n in rows}
    report.tips_received = sum(report.tips_by_status.values())
    a = _Args()
    where = _scope("p", a, wards, start, end)
    row = await conn.fetchrow(f"SELECT count(*), coalesce(sum(p.hours), 0.0) FROM p_patrols p WHERE {where}", *a.values)
    report.patrols, report.patrol_hours = int(row[0]), round(float(row[1]), 2)
    a = _Args()
    where = _scope("g", a, wards, start, end, undated=True)
    report.fire_safety_groups = int(await conn.fetchval(f"SELECT count(*) FROM p_safety_groups g WHERE {where} AND g.kind = 'fire_safety'", *a.values))
    a = _Args()
    where = _scope("f", a, wards, start, end, undated=True)
    report.public_fire_points = int(await conn.fetchval(f"SELECT count(*) FROM p_fire_points f WHERE {where}", *a.values))
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


async def check_rows(conn: Any, wards: Sequence[str], group_by: GroupBy, start: dt.date | None, end: dt.date | None) -> list[CheckRow]:
    if not wards:
        return []
    a = _Args()
    scope = a(list(wards), "::text[]")
    where = _scope("c", a, wards, start, end)
    key = _GROUP_KEYS[group_by]
    join = f"LEFT JOIN p_premises p ON p.id = c.premises_id AND p.live = 1 AND p.ward_id = ANY({scope})" if group_by == "premises_kind" else ""
    sql = f"""
        WITH c AS (SELECT c.id, c.premises_id, coalesce({key}, 'unknown') AS key FROM p_checks c {join} WHERE {where}),
             v AS (SELECT v.check_id, count(*) AS n FROM p_violations v
                    WHERE v.live = 1 AND v.ward_id = ANY({scope}) AND v.check_id IN (SELECT id FROM c) GROUP BY v.check_id)
        SELECT c.key, count(*), count(DISTINCT c.premises_id), coalesce(sum(v.n), 0)
          FROM c LEFT JOIN v ON v.check_id = c.id GROUP BY c.key ORDER BY c.key COLLATE "C" """
    rows = await conn.fetch(sql, *a.values)
    return [CheckRow(key=str(k), checks=int(n), premises=int(p), violations=int(v)) for k, n, p, v in rows]


async def targets(conn: Any, wards: Sequence[str], period: str | None) -> list[TargetRow]:
    if not wards:
        return []
    a = _Args()
    sql = f"SELECT id, ward_id, metric, period, target FROM p_targets WHERE live = 1 AND ward_id = ANY({a(list(wards), '::text[]')})"
    if period is not None:
        sql += f" AND period = {a(period, '::text')}"
    rows = await conn.fetch(sql + " ORDER BY ward_id, period, metric, id", *a.values)
    return [TargetRow(*row) for row in rows]


# -- conflicts -------------------------------------------------------------------------





async def conflicts(conn: Any, wards: Sequence[str], status: str | None, collection: str | None, after: int | None, limit: int) -> list[Conflict]:
    if not wards:
        return []
    a = _Args()
    where = f"ward_id = ANY({a(list(wards), '::text[]')})"
    for column, value in (("status", status), ("collection", collection)):
        if value is not None:
            where += f" AND {column} = {a(value, '::text')}"
    if after is not None:
        where += f" AND id > {a(after, '::bigint')}"
    sql = f"SELECT {CONFLICT_COLUMNS} FROM conflicts WHERE {where} ORDER BY id LIMIT {a(limit, '::bigint')}"
    return [conflict_from_row(row) for row in await conn.fetch(sql, *a.values)]


async def conflict(conn: Any, conflict_id: int) -> Conflict | None:
    row = await conn.fetchrow(f"SELECT {CONFLICT_COLUMNS} FROM conflicts WHERE id = $1", conflict_id)
    return conflict_from_row(row) if row else None


async def resolve_conflicts(conn: Any, resolved: Sequence[ResolvedConflict]) -> None:
    """Only a conflict still open is resolved (the row is locked by the update): a second
    resolution, even one racing the first, fails its whole transaction (its edit too)."""
    status = await conn.execute(
        "UPDATE conflicts c SET status = 'resolved', resolved_by = r.who, resolved_at = r.stamp, resolution = r.how "
        "FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bigint[]) AS r(who, stamp, how, conflict_id) "
        "WHERE c.id = r.conflict_id AND c.status = 'open'",
        [r.resolved_by for r in resolved],
        [r.resolved_at for r in resolved],
        [r.resolution for r in resolved],
        [r.conflict_id for r in resolved],
    )
    if int(status.split()[-1]) != len({r.conflict_id for r in resolved}) or len(resolved) != len({r.conflict_id for r in resolved}):
        raise AlreadyExists("conflict " + ", ".join(f"c-{r.conflict_id}" for r in resolved) + " is resolved already")


# -- history ---------------------------------------------------------------------------


async def history(conn: Any, collection: str, record_id: str) -> RecordHistory | None:
    ward = await conn.fetchval("SELECT ward_id FROM records WHERE collection = $1 AND id = $2", collection, record_id)
    if ward is None:
        return None
    entries = []
    for seq, at, user_id, device_id, changeset_id, diff in await conn.fetch(
        "SELECT seq, at, user_id, device_id, changeset_id, diff FROM edits WHERE collection = $1 AND record_id = $2 ORDER BY id",
        collection,
        record_id,
    ):
        entries.append(history_entry(seq, at, user_id, device_id, changeset_id, diff))
    return RecordHistory(collection=collection, id=record_id, ward_id=ward, edits=entries)


# -- search ----------------------------------------------------------------------------


async def search_premises(conn: Any, wards: Sequence[str], terms: Sequence[str], kind: str | None, limit: int) -> list[PremisesHit]:
    if not wards or not terms:
        return []
    # every term as a word prefix; terms are \w+ runs of folded text, quoted as lexemes
    query = " & ".join("'" + term.replace("'", "''").replace("\\", "\\\\") + "':*" for term in terms)
    a = _Args()
    q = a(query, "::text")
    where = f"p.ward_id = ANY({a(list(wards), '::text[]')})"
    if kind is not None:
        where += f" AND p.kind = {a(kind, '::text')}"
    sql = f"""
        SELECT p.id, p.ward_id, p.name, p.kind, p.address, p.owner_name,
               ts_rank('{{0.1, 0.2, 0.4, 1.0}}', p.search, to_tsquery('simple', {q})) AS rank
          FROM p_premises p
         WHERE p.search @@ to_tsquery('simple', {q}) AND p.live = 1 AND {where}
         ORDER BY rank DESC, p.id LIMIT {a(limit, '::bigint')}"""
    return [
        PremisesHit(id=i, ward_id=w, name=n or "", kind=k or "", address=ad, owner_name=o, score=round(float(rank), 6))
        for i, w, n, k, ad, o, rank in await conn.fetch(sql, *a.values)
    ]


# -- fleet health ----------------------------------------------------------------------


async def record_health(conn: Any, updates: Sequence[HealthUpdate]) -> None:
    # one row per device in one statement (ON CONFLICT cannot touch a row twice)
    merged: dict[str, HealthUpdate] = {}
    for u in updates:
        m = merged.get(u.device_id)
        if m is None:
            merged[u.device_id] = HealthUpdate(**{f: getattr(u, f) for f in HealthUpdate.__dataclass_fields__})
            continue
        for f in ("last_push_at", "last_pull_at", "client", "client_version", "schema", "pending", "clock_offset_ms"):
            if getattr(u, f) is not None:
                setattr(m, f, getattr(u, f))
        m.rejected += u.rejected
    rows = list(merged.values())
    # ORDER BY 1: rows in one fixed order, so that workers flushing overlapping devices at once take
    # their row locks in the same order and cannot deadlock (CI saw exactly that with four workers).
    await conn.execute(
        """INSERT INTO device_health AS h (device_id, last_push_at, last_pull_at, client, client_version, schema, pending,
                                           clock_offset_ms, rejected)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::integer[], $7::bigint[],
                                $8::bigint[], $9::bigint[]) AS u
            ORDER BY 1
           ON CONFLICT (device_id) DO UPDATE SET
               last_push_at = coalesce(excluded.last_push_at, h.last_push_at),
               last_pull_at = coalesce(excluded.last_pull_at, h.last_pull_at),
               client = coalesce(excluded.client, h.client),
               client_version = coalesce(excluded.client_version, h.client_version),
               schema = coalesce(excluded.schema, h.schema),
               pending = coalesce(excluded.pending, h.pending),
               clock_offset_ms = coalesce(excluded.clock_offset_ms, h.clock_offset_ms),
               rejected = h.rejected + excluded.rejected""",
        [u.device_id for u in rows],
        [u.last_push_at for u in rows],
        [u.last_pull_at for u in rows],
        [u.client for u in rows],
        [u.client_version for u in rows],
        [u.schema for u in rows],
        [u.pending for u in rows],
        [u.clock_offset_ms for u in rows],
        [u.rejected for u in rows],
    )


_DEVICE_WARDS = """
    ARRAY(SELECT t.ward_id FROM user_teams ut JOIN teams t ON t.id = ut.team_id WHERE ut.user_id = d.user_id
          UNION SELECT ward_id FROM user_wards WHERE user_id = d.user_id)"""


async def fleet_health(conn: Any, wards: Sequence[str] | None) -> list[DeviceHealth]:
    sql = f"""
        SELECT {HEALTH_COLUMNS}, {_DEVICE_WARDS} AS wards
          FROM devices d LEFT JOIN device_health h ON h.device_id = d.device_id
         ORDER BY d.device_id"""
    wanted = set(wards) if wards is not None else None
    out = []
    for row in await conn.fetch(sql):
        device_wards = sorted(row["wards"])
        if wanted is None or wanted.intersection(device_wards):
            out.append(health_from_row(row, device_wards))
    return out
