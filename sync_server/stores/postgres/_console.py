"""The console's queries on PostgreSQL, as in the SQLite store (``sqlite/_console.py``):
record lists over the projection tables (one ``p_*_list`` index each), console
passwords, sessions and failed sign-ins."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...principal import Principal
from ..base import ConsoleSession, ListedRow, ListQuery
from ..errors import CursorInvalid, NotFound

__all__ = [
    "create_session",
    "end_session",
    "note_sign_in",
    "password_of",
    "record_list",
    "session",
    "set_password",
    "sign_in_failures",
    "user_principal",
]

#: collection -> (projection table, sort expression, has a status column, has a kind column)
_LISTS: dict[str, tuple[str, str, bool, bool]] = {
    "premises": ("p_premises", "coalesce(p.name, '')", False, True),
    "checks": ("p_checks", "coalesce(p.day, '')", False, True),
    "violations": ("p_violations", "coalesce(p.day, '')", True, False),
    "tips": ("p_tips", "coalesce(p.day, '')", True, False),
    "patrols": ("p_patrols", "coalesce(p.day, '')", False, False),
}


async def record_list(conn: Any, q: ListQuery) -> list[ListedRow]:
    table, order, has_status, has_kind = _LISTS[q.collection]
    args: list[Any] = [q.collection, list(q.wards)]
    where = ["p.live = 1", "p.ward_id = ANY($2::text[])"]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if q.collection != "premises":
        if q.start is not None:
            where.append(f"{order} >= {arg(q.start.isoformat())}")
        if q.end is not None:
            where.append(f"{order} <= {arg(q.end.isoformat())}")
    if q.status is not None and has_status:
        where.append(f"p.status = {arg(q.status)}")
    if q.category is not None:
        where.append(f"p.category = {arg(q.category)}")
    if q.kind is not None and has_kind:
        where.append(f"p.kind = {arg(q.kind)}")
    if q.officer is not None:
        where.append(f"p.officer = {arg(q.officer)}")
    desc = q.sort.startswith("-")
    if q.after is not None:
        if len(q.after) != 2 or not all(isinstance(v, str) for v in q.after):
            raise CursorInvalid("unreadable list cursor")
        op = "<" if desc else ">"
        where.append(f"({order}, p.id) {op} ({arg(q.after[0])}::text, {arg(q.after[1])}::text)")
    direction = "DESC" if desc else "ASC"
    sql = f"""
        SELECT r.doc, {order}, p.id FROM {table} p
          JOIN records r ON r.collection = $1 AND r.id = p.id
         WHERE {' AND '.join(where)}
         ORDER BY {order} {direction}, p.id {direction} LIMIT {arg(q.limit)}"""
    rows = await conn.fetch(sql, *args)
    return [ListedRow(doc=bytes(doc), position=[value, rid]) for doc, value, rid in rows]


async def set_password(conn: Any, user_id: str, password_hash: str | None) -> None:
    async with conn.transaction():
        if await conn.fetchval("UPDATE users SET password_hash = $1 WHERE id = $2 RETURNING id", password_hash, user_id) is None:
            raise NotFound(f"no user {user_id}")
        await conn.execute("DELETE FROM console_sessions WHERE user_id = $1", user_id)


async def password_of(conn: Any, user_id: str) -> tuple[str, str | None] | None:
    row = await conn.fetchrow("SELECT role, password_hash FROM users WHERE id = $1 AND disabled_at IS NULL", user_id)
    return (row[0], row[1]) if row else None


_SCOPE = """
SELECT u.role,
       CASE WHEN u.role = 'admin' THEN ARRAY(SELECT id FROM wards)
       ELSE ARRAY(SELECT t.ward_id FROM user_teams ut JOIN teams t ON t.id = ut.team_id WHERE ut.user_id = u.id
                  UNION SELECT ward_id FROM user_wards WHERE user_id = u.id) END
  FROM users u WHERE u.id = $1 AND u.disabled_at IS NULL
"""


async def user_principal(conn: Any, user_id: str, device_id: str) -> Principal | None:
    row = await conn.fetchrow(_SCOPE, user_id)
    if row is None:
        return None
    return Principal(user_id=user_id, device_id=device_id, role=row[0], wards=frozenset(row[1]))


async def create_session(conn: Any, id_hash: str, user_id: str, csrf: str, created_at: str, now: float) -> None:
    await conn.execute(
        "INSERT INTO console_sessions (id_hash, user_id, csrf, created_at, seen_at) VALUES ($1, $2, $3, $4, $5)",
        id_hash, user_id, csrf, created_at, now,
    )


async def session(conn: Any, id_hash: str, idle_s: float, now: float) -> ConsoleSession | None:
    row = await conn.fetchrow("SELECT user_id, csrf, seen_at FROM console_sessions WHERE id_hash = $1", id_hash)
    if row is None:
        return None
    if row[2] < now - idle_s:
        await end_session(conn, id_hash)
        return None
    if row[2] < now - min(60.0, idle_s / 10):  # one write a minute at most, not one per page
        await conn.execute("UPDATE console_sessions SET seen_at = $1 WHERE id_hash = $2", now, id_hash)
    return ConsoleSession(user_id=row["user_id"], csrf=row["csrf"])


async def end_session(conn: Any, id_hash: str) -> None:
    await conn.execute("DELETE FROM console_sessions WHERE id_hash = $1", id_hash)


async def sign_in_failures(conn: Any, keys: Sequence[str], since: float) -> int:
    value = await conn.fetchval(
        "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM console_failures WHERE key = ANY($1::text[]) AND at >= $2 GROUP BY key) c",
        list(keys), since,
    )
    return int(value)


async def note_sign_in(conn: Any, keys: Sequence[str], failed: bool, now: float) -> None:
    if failed:
        await conn.executemany("INSERT INTO console_failures (key, at) VALUES ($1, $2)", [(key, now) for key in keys])
        await conn.execute("DELETE FROM console_failures WHERE at < $1", now - 86_400)
    else:
        await conn.execute("DELETE FROM console_failures WHERE key = ANY($1::text[])", list(keys))
