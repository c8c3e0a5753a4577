"""Wards, teams, users, devices and token lookups, as in the SQLite store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from schemas import Device, DeviceToken, Team, User, Ward

from ...principal import Principal, epoch_ms
from ..errors import AlreadyExists, NotFound, UnknownReference

__all__ = ["create_entity", "entities", "principal", "revoke_device"]

_PRINCIPAL = """
SELECT d.device_id, u.id, u.role,
       CASE WHEN u.role = 'admin' THEN ARRAY(SELECT id FROM wards)
       ELSE ARRAY(SELECT t.ward_id FROM user_teams ut JOIN teams t ON t.id = ut.team_id WHERE ut.user_id = u.id
                  UNION SELECT ward_id FROM user_wards WHERE user_id = u.id) END,
       d.created_at
  FROM devices d JOIN users u ON u.id = d.user_id
 WHERE d.token_hash = $1 AND d.revoked_at IS NULL
"""


async def principal(conn: Any, token_hash: str) -> Principal | None:
    row = await conn.fetchrow(_PRINCIPAL, token_hash)
    if row is None:
        return None
    return Principal(user_id=row[1], device_id=row[0], role=row[2], wards=frozenset(row[3]), registered_ms=epoch_ms(row[4]))


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
                        "INSERT INTO users (id, name, role, created_at) VALUES ($1, $2, $3, $4)", entity.id, entity.name, entity.role, now
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
    if kind is Ward:
        return [Ward(id=r[0], name=r[1], timezone=r[2]) for r in await conn.fetch("SELECT id, name, timezone FROM wards ORDER BY id")]
    if kind is Team:
        return [Team(id=r[0], ward_id=r[1], name=r[2]) for r in await conn.fetch("SELECT id, ward_id, name FROM teams ORDER BY id")]
    if kind is User:
        rows = await conn.fetch(
            "SELECT u.id, u.name, u.role, "
            "ARRAY(SELECT team_id FROM user_teams WHERE user_id = u.id ORDER BY team_id), "
            "ARRAY(SELECT ward_id FROM user_wards WHERE user_id = u.id ORDER BY ward_id) "
            "FROM users u ORDER BY u.id"
        )
        return [User(id=r[0], name=r[1], role=r[2], team_ids=list(r[3]), ward_ids=list(r[4])) for r in rows]
    rows = await conn.fetch("SELECT device_id, user_id, created_at, revoked_at FROM devices ORDER BY device_id")
    return [Device(device_id=r[0], user_id=r[1], created_at=r[2], revoked_at=r[3]) for r in rows]


async def revoke_device(conn: Any, device_id: str, now: str) -> None:
    async with conn.transaction():
        row = await conn.fetchrow("SELECT revoked_at FROM devices WHERE device_id = $1 FOR UPDATE", device_id)
        if row is None:
            raise NotFound(f"no device {device_id}")
        if row[0] is None:
            await conn.execute("UPDATE devices SET revoked_at = $1 WHERE device_id = $2", now, device_id)
