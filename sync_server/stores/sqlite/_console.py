"""The console's queries on SQLite: record lists over the projection tables, console
passwords, sessions and failed sign-ins (PROTOCOL.md sections 6 and 9).

A record list walks one ``p_*_list`` index (ward, then date or name; the row key
breaks ties; ``p_*_list_all`` without the ward when several wards are asked) and joins each row to its stored document, so a page costs its own
rows whatever the size of the ward."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ...principal import Principal
from ..base import ConsoleSession, ListedRow, ListQuery
from ..errors import CursorInvalid, NotFound
from . import _projections

__all__ = [
    "create_session",
    "end_session",
    "note_sign_in",
    "password_of",
    "record_list",
    "session_row",
    "set_password",
    "sign_in_failures",
    "touch_session",
    "user_principal",
]

#: collection -> (projection table, list index, sort expression, enum of ``status``, enum of ``kind``)
_LISTS: dict[str, tuple[str, str, str, str | None, str | None]] = {
    "premises": ("p_premises", "p_premises_list", "coalesce(p.name, '')", None, "premises_kind"),
    "checks": ("p_checks", "p_checks_list", "coalesce(p.day, 0)", None, "check_kind"),
    "violations": ("p_violations", "p_violations_list", "coalesce(p.day, 0)", "status", None),
    "tips": ("p_tips", "p_tips_list", "coalesce(p.day, 0)", "tip_status", None),
    "patrols": ("p_patrols", "p_patrols_list", "coalesce(p.day, 0)", None, None),
}


def _code(enum: str, value: str) -> int:
    return _projections.CODES[enum].get(value, -1)


def record_list(conn: sqlite3.Connection, q: ListQuery) -> list[ListedRow]:
    table, index, order, status_enum, kind_enum = _LISTS[q.collection]
    wards = list(_projections.keys(conn, q.wards, create=False).values())
    if not wards:
        return []
    where = ["p.live = 1", f"p.ward IN ({','.join('?' * len(wards))})"]
    args: list[Any] = [*wards]
    if q.collection != "premises":
        if q.start is not None:
            where.append(f"{order} >= ?")
            args.append(_projections.day_int(q.start))
        if q.end is not None:
            where.append(f"{order} <= ?")
            args.append(_projections.day_int(q.end))
    if q.status is not None and status_enum is not None:
        where.append("p.status = ?")
        args.append(_code(status_enum, q.status))
    if q.category is not None:
        where.append("p.category = ?")
        args.append(_code("category", q.category))
    if q.kind is not None and kind_enum is not None:
        where.append("p.kind = ?")
        args.append(_code(kind_enum, q.kind))
    if q.officer is not None:
        where.append("p.officer = (SELECT key FROM p_keys WHERE id = ?)")
        args.append(q.officer)
    desc = q.sort.startswith("-")
    if q.after is not None:
        value, rk = _position(q.after, text=q.collection == "premises")
        op = "<" if desc else ">"
        # the first bound makes an index range (a page far down costs no more than the first)
        where.append(f"{order} {op}= ? AND ({order}, p.rk) {op} (?, ?)")
        args += [value, value, rk]
    direction = "DESC" if desc else "ASC"
    if len(wards) > 1:  # in date order across wards, skipping the others' rows (no sort of them all)
        index += "_all"
    sql = f"""
        SELECT r.doc, {order}, p.rk FROM {table} p INDEXED BY {index}
          JOIN p_keys k ON k.key = p.rk
          JOIN records r ON r.collection = ? AND r.id = k.id
         WHERE {' AND '.join(where)}
         ORDER BY {order} {direction}, p.rk {direction} LIMIT ?"""
    rows = conn.execute(sql, [q.collection, *args, q.limit]).fetchall()
    return [ListedRow(doc=bytes(doc), position=[value, rk]) for doc, value, rk in rows]


def _position(after: list[object], text: bool) -> tuple[object, int]:
    if len(after) != 2 or not isinstance(after[1], int) or isinstance(after[1], bool):
        raise CursorInvalid("unreadable list cursor")
    value = after[0]
    if text != isinstance(value, str) or (not text and (not isinstance(value, int) or isinstance(value, bool))):
        raise CursorInvalid("unreadable list cursor")
    return value, after[1]


# -- passwords and sessions (run on the writer thread when they write) --------------------


def set_password(conn: sqlite3.Connection, user_id: str, password_hash: str | None) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id)).rowcount == 0:
            raise NotFound(f"no user {user_id}")
        conn.execute("DELETE FROM console_sessions WHERE user_id = ?", (user_id,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def password_of(conn: sqlite3.Connection, user_id: str) -> tuple[str, str | None] | None:
    row = conn.execute("SELECT role, password_hash FROM users WHERE id = ? AND disabled_at IS NULL", (user_id,)).fetchone()
    return (row[0], row[1]) if row else None


_SCOPE = """
    SELECT u.role,
           CASE WHEN u.role = 'admin' THEN (SELECT group_concat(id) FROM wards)
           ELSE (SELECT group_concat(w) FROM (
                    SELECT t.ward_id AS w FROM user_teams ut JOIN teams t ON t.id = ut.team_id WHERE ut.user_id = u.id
                    UNION SELECT ward_id FROM user_wards WHERE user_id = u.id)) END
      FROM users u WHERE u.id = ? AND u.disabled_at IS NULL"""


def user_principal(conn: sqlite3.Connection, user_id: str, device_id: str) -> Principal | None:
    row = conn.execute(_SCOPE, (user_id,)).fetchone()
    if row is None:
        return None
    return Principal(user_id=user_id, device_id=device_id, role=row[0], wards=frozenset(row[1].split(",")) if row[1] else frozenset())


def create_session(conn: sqlite3.Connection, id_hash: str, user_id: str, csrf: str, created_at: str, now: float) -> None:
    with conn:
        conn.execute(
            "INSERT INTO console_sessions (id_hash, user_id, csrf, created_at, seen_at) VALUES (?, ?, ?, ?, ?)",
            (id_hash, user_id, csrf, created_at, now),
        )


def session_row(conn: sqlite3.Connection, id_hash: str) -> tuple[ConsoleSession, float] | None:
    row = conn.execute("SELECT user_id, csrf, seen_at FROM console_sessions WHERE id_hash = ?", (id_hash,)).fetchone()
    return (ConsoleSession(user_id=row["user_id"], csrf=row["csrf"]), float(row["seen_at"])) if row else None


def touch_session(conn: sqlite3.Connection, id_hash: str, now: float) -> None:
    with conn:
        conn.execute("UPDATE console_sessions SET seen_at = ? WHERE id_hash = ?", (now, id_hash))


def end_session(conn: sqlite3.Connection, id_hash: str) -> None:
    with conn:
        conn.execute("DELETE FROM console_sessions WHERE id_hash = ?", (id_hash,))


def sign_in_failures(conn: sqlite3.Connection, keys: Sequence[str], since: float) -> int:
    worst = 0
    for key in keys:
        worst = max(worst, conn.execute("SELECT count(*) FROM console_failures WHERE key = ? AND at >= ?", (key, since)).fetchone()[0])
    return worst


def note_sign_in(conn: sqlite3.Connection, keys: Sequence[str], failed: bool, now: float) -> None:
    with conn:
        if failed:
            conn.executemany("INSERT INTO console_failures (key, at) VALUES (?, ?)", [(key, now) for key in keys])
            conn.execute("DELETE FROM console_failures WHERE at < ?", (now - 86_400,))
        else:
            conn.executemany("DELETE FROM console_failures WHERE key = ?", [(key,) for key in keys])
