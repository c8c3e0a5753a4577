"""Wards, teams, users, devices and token lookups, as in the SQLite store.

Changes that check a rule across rows (the last enabled admin) first take one
transaction-level advisory lock, so two of them at once, from any worker, run one
after the other and the second sees the first's result."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import asyncpg
from msgspec import UNSET

from schemas import Device, DeviceToken, Team, TeamUpdate, User, UserUpdate, Ward

from ...principal import Principal
from .._rows import ENTITY_QUERIES, entity_from_row, principal_from_row, team_from_row, user_from_row, ward_from_row
from ..base import EnrolmentRow
from ..errors import AlreadyExists, NotFound, Refused, StoreUnavailable, UnknownReference

__all__ = [
    "IDENTITY_LOCK",
    "add_enrolment",
    "create_entity",
    "entities",
    "principal",
    "redeem_enrolment",
    "reissue_token",
    "rename_ward",
    "revoke_device",
    "update_team",
    "update_user",
]

#: advisory lock key of changes to users' roles and states (any constant of this application's own)
IDENTITY_LOCK = 7_326_530_002
_USER_COLUMNS = (
    "u.id, u.name, u.role, "
    "ARRAY(SELECT team_id FROM user_teams WHERE user_id = u.id ORDER BY team_id) AS team_ids, "
    "ARRAY(SELECT ward_id FROM user_wards WHERE user_id = u.id ORDER BY ward_id) AS ward_ids, "
    "u.disabled_at IS NOT NULL AS disabled"
)


def _user(r: Any) -> User:
    return user_from_row(r, list(r["team_ids"]), list(r["ward_ids"]))

_PRINCIPAL = """
SELECT d.device_id, u.id AS user_id, u.role,
       CASE WHEN u.role = 'admin' THEN ARRAY(SELECT id FROM wards)
       ELSE ARRAY(SELECT t.ward_id FROM user_teams ut JOIN teams t ON t.id = ut.team_id WHERE ut.user_id = u.id
                  UNION SELECT ward_id FROM user_wards WHERE user_id = u.id) END AS wards,
       d.created_at
  FROM devices d JOIN users u ON u.id = d.user_id
 WHERE d.token_hash = $1 AND d.revoked_at IS NULL AND u.disabled_at IS NULL
"""


async def principal(conn: Any, token_hash: str) -> Principal | None:
    row = await conn.fetchrow(_PRINCIPAL, token_hash)
    if row is None:
        return None
    return principal_from_row(row, frozenset(row["wards"]))


async def _require(conn: Any, table: str, ids: Sequence[str], what: str) -> None:
    if not ids:
        return
    found = {r[0] for r in await conn.fetch(f"SELECT id FROM {table} WHERE id = ANY($1::text[])", list(ids))}
    missing = sorted(set(ids) - found)
    if missing:
        raise UnknownReference(f"no {what} {', '.join(missing)}")


def _id(entity: Ward | Team | User | DeviceToken) -> str:
    return entity.device_id if isinstance(entity, DeviceToken) else entity.id


async def create_entity(conn: Any, entity: Ward | Team | User | DeviceToken, token_hash: str | None, now: str) -> None:
    try:
        async with conn.transaction():
            match entity:
                case Ward():
                    await conn.execute(
                        "INSERT INTO wards (id, name, timezone, created_at) VALUES ($1, $2, $3, $4)",
                        entity.id, entity.name, entity.timezone, now,
                    )
                case Team():
                    await _require(conn, "wards", [entity.ward_id], "ward")
                    await conn.execute(
                        "INSERT INTO teams (id, ward_id, name, created_at) VALUES ($1, $2, $3, $4)",
                        entity.id, entity.ward_id, entity.name, now,
                    )
                case User():
                    await _require(conn, "teams", entity.team_ids, "team")
                    await _require(conn, "wards", entity.ward_ids, "ward")
                    await conn.execute(
                        "INSERT INTO users (id, name, role, created_at, disabled_at) VALUES ($1, $2, $3, $4, $5)",
                        entity.id, entity.name, entity.role, now, now if entity.disabled else None,
                    )
                    await conn.execute(
                        "INSERT INTO user_teams (user_id, team_id) SELECT $1, unnest($2::text[])", entity.id, sorted(set(entity.team_ids))
                    )
                    await conn.execute(
                        "INSERT INTO user_wards (user_id, ward_id) SELECT $1, unnest($2::text[])", entity.id, sorted(set(entity.ward_ids))
                    )
                case DeviceToken():
                    assert token_hash is not None
                    await _require(conn, "users", [entity.user_id], "user")
                    await conn.execute(
                        "INSERT INTO devices (device_id, user_id, token_hash, created_at) VALUES ($1, $2, $3, $4)",
                        entity.device_id, entity.user_id, token_hash, now,
                    )
    except asyncpg.UniqueViolationError as exc:
        raise AlreadyExists(f"{type(entity).__name__.lower().replace('token', '')} {_id(entity)} exists already") from exc
    except asyncpg.ForeignKeyViolationError as exc:  # a referenced entity was removed meanwhile
        raise UnknownReference(str(exc)) from exc


async def entities(conn: Any, kind: type[Ward] | type[Team] | type[User] | type[Device]) -> Sequence[Ward | Team | User | Device]:
    if kind is User:
        return [_user(r) for r in await conn.fetch(f"SELECT {_USER_COLUMNS} FROM users u ORDER BY u.id")]
    return [entity_from_row(kind, r) for r in await conn.fetch(ENTITY_QUERIES[kind])]


async def user(conn: Any, user_id: str) -> User | None:
    row = await conn.fetchrow(f"SELECT {_USER_COLUMNS} FROM users u WHERE u.id = $1", user_id)
    return None if row is None else _user(row)


async def revoke_device(conn: Any, device_id: str, now: str) -> None:
    async with conn.transaction():
        row = await conn.fetchrow("SELECT revoked_at FROM devices WHERE device_id = $1 FOR UPDATE", device_id)
        if row is None:
            raise NotFound(f"no device {device_id}")
        if row[0] is None:
            await conn.execute("UPDATE devices SET revoked_at = $1 WHERE device_id = $2", now, device_id)
        await conn.execute("DELETE FROM enrolments WHERE device_id = $1", device_id)  # a lost handheld's code dies with it


async def _set_token(conn: Any, device_id: str, token_hash: str) -> str | None:
    user_id = await conn.fetchval(
        "UPDATE devices SET token_hash = $1, revoked_at = NULL WHERE device_id = $2 RETURNING user_id", token_hash, device_id
    )
    return None if user_id is None else str(user_id)


async def reissue_token(conn: Any, device_id: str, token_hash: str) -> str:
    async with conn.transaction():
        user_id = await _set_token(conn, device_id, token_hash)
    if user_id is None:
        raise NotFound(f"no device {device_id}")
    return user_id


async def update_user(conn: Any, user_id: str, changes: UserUpdate, now: str) -> User:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", IDENTITY_LOCK)
        row = await conn.fetchrow("SELECT role, disabled_at FROM users WHERE id = $1 FOR UPDATE", user_id)
        if row is None:
            raise NotFound(f"no user {user_id}")
        if changes.team_ids is not UNSET:
            await _require(conn, "teams", changes.team_ids, "team")
        if changes.ward_ids is not UNSET:
            await _require(conn, "wards", changes.ward_ids, "ward")
        if changes.name is not UNSET:
            await conn.execute("UPDATE users SET name = $1 WHERE id = $2", changes.name, user_id)
        if changes.role is not UNSET:
            await conn.execute("UPDATE users SET role = $1 WHERE id = $2", changes.role, user_id)
        if changes.disabled is not UNSET:
            await conn.execute(
                "UPDATE users SET disabled_at = CASE WHEN $1 THEN coalesce(disabled_at, $2) END WHERE id = $3",
                changes.disabled, now, user_id,
            )
        if changes.team_ids is not UNSET:
            await conn.execute("DELETE FROM user_teams WHERE user_id = $1", user_id)
            await conn.execute("INSERT INTO user_teams (user_id, team_id) SELECT $1, unnest($2::text[])", user_id, sorted(set(changes.team_ids)))
        if changes.ward_ids is not UNSET:
            await conn.execute("DELETE FROM user_wards WHERE user_id = $1", user_id)
            await conn.execute("INSERT INTO user_wards (user_id, ward_id) SELECT $1, unnest($2::text[])", user_id, sorted(set(changes.ward_ids)))
        was_admin = row[0] == "admin" and row[1] is None
        if was_admin and not await conn.fetchval("SELECT count(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL"):
            raise Refused(f"{user_id} is the last enabled admin: make another user an admin first, so that someone can still administer")
        return _user(await conn.fetchrow(f"SELECT {_USER_COLUMNS} FROM users u WHERE u.id = $1", user_id))


async def rename_ward(conn: Any, ward_id: str, name: str) -> Ward:
    row = await conn.fetchrow("UPDATE wards SET name = $1 WHERE id = $2 RETURNING id, name, timezone", name, ward_id)
    if row is None:
        raise NotFound(f"no ward {ward_id}")
    return ward_from_row(row)


async def _lock_team_records(conn: Any) -> None:
    """Hold off writes of checks and patrols until the move commits (SHARE mode).

    NOWAIT, tried again for a while: a push that wrote a patrol and now waits for our
    lock on checks would otherwise deadlock with us; this way we give way, never it."""
    for _ in range(100):
        try:
            async with conn.transaction():  # a savepoint: a refused lock leaves the move's transaction usable
                await conn.execute("LOCK TABLE p_checks, p_patrols IN SHARE MODE NOWAIT")
            return
        except asyncpg.LockNotAvailableError:
            await asyncio.sleep(0.02)
    raise StoreUnavailable("checks and patrols are being written without pause; try the move again shortly")


async def update_team(conn: Any, team_id: str, changes: TeamUpdate) -> Team:
    async with conn.transaction():
        ward_id = await conn.fetchval("SELECT ward_id FROM teams WHERE id = $1 FOR UPDATE", team_id)
        if ward_id is None:
            raise NotFound(f"no team {team_id}")
        if changes.ward_id is not UNSET and changes.ward_id != ward_id:
            await _require(conn, "wards", [changes.ward_id], "ward")
            await _lock_team_records(conn)
            if await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM p_checks WHERE team_id = $1) OR EXISTS (SELECT 1 FROM p_patrols WHERE team_id = $1)", team_id
            ):
                raise Refused(f"team {team_id} cannot move to another ward: records name it (a team moves only before its first check or patrol)")
            await conn.execute("UPDATE teams SET ward_id = $1 WHERE id = $2", changes.ward_id, team_id)
        if changes.name is not UNSET:
            await conn.execute("UPDATE teams SET name = $1 WHERE id = $2", changes.name, team_id)
        row = await conn.fetchrow("SELECT id, ward_id, name FROM teams WHERE id = $1", team_id)
        return team_from_row(row)


async def add_enrolment(conn: Any, e: EnrolmentRow) -> str:
    try:
        async with conn.transaction():
            owner = await conn.fetchval("SELECT user_id FROM devices WHERE device_id = $1 FOR UPDATE", e.device_id)
            if owner is not None:
                if e.user_id is not None and e.user_id != owner:
                    raise Refused(f"device {e.device_id} belongs to user {owner}, not {e.user_id}")
                user_id = str(owner)
            elif e.user_id is None:
                raise NotFound(f"no device {e.device_id}; give a user_id to register it with this enrolment")
            else:
                await _require(conn, "users", [e.user_id], "user")
                await conn.execute(
                    "INSERT INTO devices (device_id, user_id, token_hash, created_at) VALUES ($1, $2, $3, $4)",
                    e.device_id, e.user_id, e.placeholder_hash, e.created_at,
                )
                user_id = e.user_id
            # one live code per device; spent and expired codes are of no further use
            await conn.execute("DELETE FROM enrolments WHERE device_id = $1 OR used_at IS NOT NULL OR expires_at <= $2", e.device_id, e.created_at)
            await conn.execute(
                "INSERT INTO enrolments (code_hash, device_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
                e.code_hash, e.device_id, e.created_at, e.expires_at,
            )
    except asyncpg.UniqueViolationError as exc:  # the same new device id registered at the same moment
        raise AlreadyExists(f"device {e.device_id} was registered meanwhile; ask again") from exc
    return user_id


async def redeem_enrolment(conn: Any, code_hash: str, token_hash: str, now: str) -> tuple[str, str] | None:
    """One conditional UPDATE: of two exchanges at once, the second waits for the first's
    row lock, then finds ``used_at`` set and updates nothing."""
    async with conn.transaction():
        device_id = await conn.fetchval(
            "UPDATE enrolments SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING device_id",
            now, code_hash,
        )
        if device_id is None:
            return None
        user_id = await _set_token(conn, device_id, token_hash)
    return None if user_id is None else (str(device_id), user_id)
