"""Administration data (wards, teams, users, devices): not synced records."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from ._constraints import DeviceId, Id, Name

__all__ = [
    "Device",
    "DeviceScope",
    "DeviceToken",
    "EnrolCode",
    "EnrolledDevice",
    "Enrolment",
    "EnrolmentRequest",
    "NewDevice",
    "NewTeam",
    "NewUser",
    "NewWard",
    "Role",
    "ScopeWard",
    "Team",
    "TeamUpdate",
    "User",
    "UserUpdate",
    "Ward",
    "WardUpdate",
]

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


TeamIds = Annotated[list[Id], Meta(max_length=100)]
WardIds = Annotated[list[Id], Meta(max_length=1000)]


class User(Struct, kw_only=True):
    """A person: officers are scoped by ``team_ids``, supervisors and admins by ``ward_ids``."""

    id: Id
    name: Name
    role: Role
    team_ids: TeamIds = []
    ward_ids: WardIds = []
    #: a disabled user's devices all get 401 until he is enabled again
    disabled: bool = False


class Device(Struct, kw_only=True):
    """A handheld (or laptop) of a user; its token is never shown again."""

    device_id: DeviceId
    user_id: Id
    created_at: str | None = None
    revoked_at: str | None = None


class DeviceToken(Struct, kw_only=True):
    """A device and its new token: the only time the token is ever shown (on
    registration, re-issue and enrolment)."""

    device_id: DeviceId
    user_id: Id
    token: str


class ScopeWard(Struct, kw_only=True):
    """A ward of a device's scope, with the name to show."""

    id: Id
    name: Name


class DeviceScope(Struct, kw_only=True):
    """Who a device acts for and which wards it may see and change (PROTOCOL.md section 2):
    what a handheld needs to set itself up, so that nobody types a ward id on a phone."""

    device_id: DeviceId
    user_id: Id
    user_name: Name
    role: Role
    wards: Annotated[list[ScopeWard], Meta(description="the wards of the scope, by id")]


class EnrolledDevice(DeviceToken, kw_only=True):
    """The answer to ``POST /v1/enrol``: the device's new token and its scope."""

    scope: DeviceScope


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


# Changes (PATCH): the fields given change, the others stay as they are.
class UserUpdate(Struct, kw_only=True, forbid_unknown_fields=True):
    """A user's new name, role, teams, wards or state; his scope follows at once."""

    name: Name | UnsetType = UNSET
    role: Role | UnsetType = UNSET
    team_ids: TeamIds | UnsetType = UNSET
    ward_ids: WardIds | UnsetType = UNSET
    disabled: bool | UnsetType = UNSET


class WardUpdate(Struct, kw_only=True, forbid_unknown_fields=True):
    """A ward's new name (its time zone stays: reports have counted days in it)."""

    name: Name


class TeamUpdate(Struct, kw_only=True, forbid_unknown_fields=True):
    """A team's new name, or its new ward while no record names the team."""

    name: Name | UnsetType = UNSET
    ward_id: Id | UnsetType = UNSET


# Enrolment (PROTOCOL.md sections 7 and 10): a one-time code a handheld exchanges for its token.
class EnrolmentRequest(Struct, kw_only=True, forbid_unknown_fields=True):
    """For a device id not registered yet: the user to register it for."""

    user_id: Id | None = None


class Enrolment(Struct, kw_only=True):
    """A one-time code (shown only here), the app's address that carries it, and its expiry."""

    code: Annotated[str, Meta(description="Crockford base32 in groups, e.g. 7KQ2M-XW4PD-9HT3R")]
    url: str
    expires_at: Annotated[str, Meta(description="RFC 3339, UTC")]


class EnrolCode(Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /v1/enrol``: the code to exchange (case, spaces and hyphens do not matter)."""

    code: Annotated[str, Meta(description="the enrolment code, as shown or as typed")]
