from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from schemas import (
    Device,
    DeviceToken,
    Enrolment,
    EnrolmentRequest,
    NewDevice,
    NewTeam,
    NewUser,
    NewWard,
    Team,
    TeamUpdate,
    User,
    UserUpdate,
    Ward,
    WardUpdate,
)

from ...errors import BadRequest
from ...services.enrolment import EnrolmentService
from ...services.identity import Administration
from ..auth import admins_only

__all__ = ["AdminController"]

T = TypeVar("T")


async def _strictly(request: Request[Any, Any, Any], kind: type[T]) -> T:
    """The body decoded without coercion. Litestar converts bodies leniently (``0`` or
    ``"false"`` would pass for ``false``), and a user's ``disabled`` must be a real boolean."""
    try:
        return msgspec.json.decode(await request.body(), type=kind)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise BadRequest(f"invalid body: {exc}") from None


class AdminController(Controller):
    """Wards, teams, users and devices. Admin role only."""

    path = "/v1/admin"
    tags = ["admin"]
    guards = [admins_only]

    @post("/wards")
    async def create_ward(self, data: JSONBody[NewWard], admin: NamedDependency[Administration]) -> Ward:
        """Create a ward (409 if the id exists)."""
        await admin.create(data)
        return data

    @post("/teams")
    async def create_team(self, data: JSONBody[NewTeam], admin: NamedDependency[Administration]) -> Team:
        """Create a team of a ward (409 if the id exists)."""
        await admin.create(data)
        return data

    @post("/users")
    async def create_user(self, data: JSONBody[NewUser], request: Request[Any, Any, Any], admin: NamedDependency[Administration]) -> User:
        """Create a user: officers see the wards of their teams, supervisors and admins their ``ward_ids``."""
        user = await _strictly(request, NewUser)
        await admin.create(user)
        return user

    @post("/devices", summary="Register a device; its token is shown only in this answer")
    async def create_device(self, data: JSONBody[NewDevice], admin: NamedDependency[Administration]) -> DeviceToken:
        """A handheld of a user; the server keeps only the token's hash."""
        return await admin.issue_device(data)

    @delete("/devices/{device_id:str}", summary="Revoke a device's token at once")
    async def revoke_device(self, device_id: FromPath[str], admin: NamedDependency[Administration]) -> None:
        """Its token is refused from the next request on."""
        await admin.revoke_device(device_id)

    @post(
        "/devices/{device_id:str}/token",
        status_code=200,
        summary="Re-issue a device's token: the old one stops at once; a revoked device is revoked no more",
    )
    async def reissue_token(self, device_id: FromPath[str], admin: NamedDependency[Administration]) -> DeviceToken:
        return await admin.reissue_token(device_id)

    @post(
        "/devices/{device_id:str}/enrolment",
        summary="A one-time code (10 minutes) the handheld exchanges for the device's new token",
        description="For a device id not registered yet, give the user to register it for: `{\"user_id\": ...}`.",
    )
    async def create_enrolment(
        self, device_id: FromPath[str], request: Request[Any, Any, Any], enrolment: NamedDependency[EnrolmentService], data: JSONBody[EnrolmentRequest | None] = None
    ) -> Enrolment:
        return await enrolment.create(device_id, data or EnrolmentRequest(), str(request.base_url))

    @patch("/users/{user_id:str}", summary="Change a user's name, role, teams, wards or state; his scope follows at once")
    async def update_user(self, user_id: FromPath[str], data: JSONBody[UserUpdate], request: Request[Any, Any, Any], admin: NamedDependency[Administration]) -> User:
        return await admin.update_user(user_id, await _strictly(request, UserUpdate))

    @patch("/wards/{ward_id:str}", summary="Rename a ward")
    async def update_ward(self, ward_id: FromPath[str], data: JSONBody[WardUpdate], admin: NamedDependency[Administration]) -> Ward:
        return await admin.rename_ward(ward_id, data)

    @patch("/teams/{team_id:str}", summary="Rename a team, or move it to another ward while no record names it")
    async def update_team(self, team_id: FromPath[str], data: JSONBody[TeamUpdate], admin: NamedDependency[Administration]) -> Team:
        return await admin.update_team(team_id, data)

    @get("/wards")
    async def list_wards(self, admin: NamedDependency[Administration]) -> Sequence[Ward]:
        """List every ward."""
        return await admin.every(Ward)

    @get("/teams")
    async def list_teams(self, admin: NamedDependency[Administration]) -> Sequence[Team]:
        """List every team."""
        return await admin.every(Team)

    @get("/users")
    async def list_users(self, admin: NamedDependency[Administration]) -> Sequence[User]:
        """List every user."""
        return await admin.every(User)

    @get("/devices")
    async def list_devices(self, admin: NamedDependency[Administration]) -> Sequence[Device]:
        """List every device, revoked ones too (``revoked_at``); never a token."""
        return await admin.every(Device)
