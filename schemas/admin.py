"""Administration data (wards, teams, users, devices): not synced records."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from ._constraints import DeviceId, Id, Name

__all__ = ["Device", "DeviceToken", "NewDevice", "NewTeam", "NewUser", "NewWard", "Role", "Team", "User", "Ward"]

Role = Literal["officer", "supervisor", "admin"]
TimeZone = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+/-]+$", description="IANA zone")]


class Ward(Struct, kw_only=True):
    """A ward: the unit of scope; reports count days in its time zone."""

    id: Id
    name: Name
    timezone: TimeZone = "Asia/Ho_Chi_Minh"


class Team(Struct, kw_only=True):
    """A team of one ward; officers see the wards of their teams."""

    id: Id
    ward_id: Id
    name: Name


class User(Struct, kw_only=True):
    """A person: officers are scoped by ``team_ids``, supervisors and admins by ``ward_ids``."""

    id: Id
    name: Name
    role: Role
    team_ids: Annotated[list[Id], Meta(max_length=100)] = []
    ward_ids: Annotated[list[Id], Meta(max_length=1000)] = []


class Device(Struct, kw_only=True):
    """A handheld (or laptop) of a user; its token is never shown again."""

    device_id: DeviceId
    user_id: Id
    created_at: str | None = None
    revoked_at: str | None = None


class DeviceToken(Struct, kw_only=True):
    """A new device and its token: the only time the token is ever shown."""

    device_id: DeviceId
    user_id: Id
    token: str


# Requests: the same fields, unknown ones refused.
class NewWard(Ward, kw_only=True, forbid_unknown_fields=True):
    """A ward to create (unknown fields refused)."""


class NewTeam(Team, kw_only=True, forbid_unknown_fields=True):
    """A team to create (unknown fields refused)."""


class NewUser(User, kw_only=True, forbid_unknown_fields=True):
    """A user to create (unknown fields refused)."""


class NewDevice(Struct, kw_only=True, forbid_unknown_fields=True):
    """A device to register for a user; the answer carries its token, once."""

    device_id: DeviceId
    user_id: Id
