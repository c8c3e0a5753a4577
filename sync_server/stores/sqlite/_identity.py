"""The identity lifecycle's SQL (re-issue, user and team changes, enrolment codes).

Plain functions of the writer's sqlite3 connection, each one transaction taken with
``BEGIN IMMEDIATE``: SQLite's write lock serialises them with every push, across
processes, so "the last enabled admin" and "a team no record names" are checked and
changed with nothing slipping in between.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence

from msgspec import UNSET

from schemas import Team, TeamUpdate, User, UserUpdate, Ward

from .._rows import NamedRow, team_from_row, ward_from_row
from .._rows import user_from_row as _user_from_row
from ..base import EnrolmentRow
from ..errors import NotFound, Refused, UnknownReference

__all__ = ["add_enrolment", "enabled_admins", "redeem_enrolment", "reissue_token", "rename_ward", "update_team", "update_user"]

USER_COLUMNS = (
    "u.id, u.name, u.role, "
    "(SELECT group_concat(team_id) FROM (SELECT team_id FROM user_teams WHERE user_id = u.id ORDER BY team_id)) AS team_ids, "
    "(SELECT group_concat(ward_id) FROM (SELECT ward_id FROM user_wards WHERE user_id = u.id ORDER BY ward_id)) AS ward_ids, "
    "u.disabled_at IS NOT NULL AS disabled"
)


def user_from_row(r: NamedRow) -> User:
    teams, wards = r["team_ids"], r["ward_ids"]
    return _user_from_row(r, str(teams).split(",") if teams else [], str(wards).split(",") if wards else [])


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    if conn.in_transaction:  # left open by a caller that was cancelled mid-way
        conn.execute("ROLLBACK")
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _require(conn: sqlite3.Connection, table: str, ids: Sequence[str], what: str) -> None:
    if not ids:
        return
    sql = f"SELECT id FROM {table} WHERE id IN ({','.join('?' * len(ids))})"
    missing = sorted(set(ids) - {row[0] for row in conn.execute(sql, tuple(ids))})
    if missing:
        raise UnknownReference(f"no {what} {', '.join(missing)}")


def _set_token(conn: sqlite3.Connection, device_id: str, token_hash: str) -> str | None:
    row = conn.execute(
        "UPDATE devices SET token_hash = ?, revoked_at = NULL WHERE device_id = ? RETURNING user_id", (token_hash, device_id)
    ).fetchone()
    return None if row is None else str(row[0])


def reissue_token(conn: sqlite3.Connection, device_id: str, token_hash: str) -> str:
    with _transaction(conn):
        user_id = _set_token(conn, device_id, token_hash)
        if user_id is None:
            raise NotFound(f"no device {device_id}")
        return user_id


def enabled_admins(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL").fetchone()[0])


def update_user(conn: sqlite3.Connection, user_id: str, changes: UserUpdate, now: str) -> User:
    with _transaction(conn):
        row = conn.execute("SELECT role, disabled_at FROM users WHERE id = ?", (user_id,)).fetchone()
        if row is None:
            raise NotFound(f"no user {user_id}")
        if changes.team_ids is not UNSET:
            _require(conn, "teams", changes.team_ids, "team")
        if changes.ward_ids is not UNSET:
            _require(conn, "wards", changes.ward_ids, "ward")
        if changes.name is not UNSET:
            conn.execute("UPDATE users SET name = ? WHERE id = ?", (changes.name, user_id))
        if changes.role is not UNSET:
            conn.execute("UPDATE users SET role = ? WHERE id = ?", (changes.role, user_id))
        if changes.disabled is not UNSET:
            conn.execute(
                "UPDATE users SET disabled_at = CASE WHEN ? THEN coalesce(disabled_at, ?) END WHERE id = ?",
                (changes.disabled, now, user_id),
            )
        if changes.team_ids is not UNSET:
            conn.execute("DELETE FROM user_teams WHERE user_id = ?", (user_id,))
            conn.executemany("INSERT INTO user_teams (user_id, team_id) VALUES (?, ?)", [(user_id, t) for t in sorted(set(changes.team_ids))])
        if changes.ward_ids is not UNSET:
            conn.execute("DELETE FROM user_wards WHERE user_id = ?", (user_id,))
            conn.executemany("INSERT INTO user_wards (user_id, ward_id) VALUES (?, ?)", [(user_id, w) for w in sorted(set(changes.ward_ids))])
        was_admin = row[0] == "admin" and row[1] is None
        if was_admin and not enabled_admins(conn):
            raise Refused(f"{user_id} is the last enabled admin: make another user an admin first, so that someone can still administer")
        return user_from_row(conn.execute(f"SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?", (user_id,)).fetchone())


def rename_ward(conn: sqlite3.Connection, ward_id: str, name: str) -> Ward:
    with _transaction(conn):
        row = conn.execute("UPDATE wards SET name = ? WHERE id = ? RETURNING id, name, timezone", (name, ward_id)).fetchone()
        if row is None:
            raise NotFound(f"no ward {ward_id}")
        return ward_from_row(row)


def _team_has_records(conn: sqlite3.Connection, team_id: str) -> bool:
    """Whether a check or patrol (live or deleted) names the team: their projections hold
    ``team_id`` as the interned key of its text (``p_keys``)."""
    sql = (
        "SELECT EXISTS (SELECT 1 FROM p_keys k JOIN p_checks c ON c.team = k.key WHERE k.id = ?) "
        "OR EXISTS (SELECT 1 FROM p_keys k JOIN p_patrols p ON p.team = k.key WHERE k.id = ?)"
    )
    return bool(conn.execute(sql, (team_id, team_id)).fetchone()[0])


def update_team(conn: sqlite3.Connection, team_id: str, changes: TeamUpdate) -> Team:
    with _transaction(conn):
        row = conn.execute("SELECT ward_id FROM teams WHERE id = ?", (team_id,)).fetchone()
        if row is None:
            raise NotFound(f"no team {team_id}")
        if changes.ward_id is not UNSET and changes.ward_id != row[0]:
            _require(conn, "wards", [changes.ward_id], "ward")
            if _team_has_records(conn, team_id):
                raise Refused(f"team {team_id} cannot move to another ward: records name it (a team moves only before its first check or patrol)")
            conn.execute("UPDATE teams SET ward_id = ? WHERE id = ?", (changes.ward_id, team_id))
        if changes.name is not UNSET:
            conn.execute("UPDATE teams SET name = ? WHERE id = ?", (changes.name, team_id))
        found = conn.execute("SELECT id, ward_id, name FROM teams WHERE id = ?", (team_id,)).fetchone()
        return team_from_row(found)


def add_enrolment(conn: sqlite3.Connection, enrolment: EnrolmentRow) -> str:
    e = enrolment
    with _transaction(conn):
        row = conn.execute("SELECT user_id FROM devices WHERE device_id = ?", (e.device_id,)).fetchone()
        if row is not None:
            if e.user_id is not None and e.user_id != row[0]:
                raise Refused(f"device {e.device_id} belongs to user {row[0]}, not {e.user_id}")
            user_id = str(row[0])
        elif e.user_id is None:
            raise NotFound(f"no device {e.device_id}; give a user_id to register it with this enrolment")
        else:
            _require(conn, "users", [e.user_id], "user")
            conn.execute(
                "INSERT INTO devices (device_id, user_id, token_hash, created_at) VALUES (?, ?, ?, ?)",
                (e.device_id, e.user_id, e.placeholder_hash, e.created_at),
            )
            user_id = e.user_id
        # one live code per device; spent and expired codes are of no further use
        conn.execute("DELETE FROM enrolments WHERE device_id = ? OR used_at IS NOT NULL OR expires_at <= ?", (e.device_id, e.created_at))
        conn.execute(
            "INSERT INTO enrolments (code_hash, device_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
            (e.code_hash, e.device_id, e.created_at, e.expires_at),
        )
        return user_id


def redeem_enrolment(conn: sqlite3.Connection, code_hash: str, token_hash: str, now: str) -> tuple[str, str] | None:
    with _transaction(conn):
        row = conn.execute(
            "UPDATE enrolments SET used_at = ? WHERE code_hash = ? AND used_at IS NULL AND expires_at > ? RETURNING device_id",
            (now, code_hash, now),
        ).fetchone()
        if row is None:
            return None
        user_id = _set_token(conn, row[0], token_hash)
        return None if user_id is None else (str(row[0]), user_id)
