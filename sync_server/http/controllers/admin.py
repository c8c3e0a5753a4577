from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, cast

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.datastructures import State
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
from ...services import identity
from ...services.enrolment import EnrolmentService
from ...stores import Store
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
    async def create_ward(self, data: JSONBody[NewWard], state: State) -> Ward:
        """Create a ward (409 if the id exists)."""
        await identity.create_entity(state.store, data)
        return data

    @post("/teams")
    async def create_team(self, data: JSONBody[NewTeam], state: State) -> Team:
        """Create a team of a ward (409 if the id exists)."""
        await identity.create_entity(state.store, data)
        return data

    @post("/users")
    async def create_user(self, data: JSONBody[NewUser], request: Request[Any, Any, Any], state: State) -> User:
        """Create a user: officers see the wards of their teams, supervisors and admins their ``ward_ids``."""
        user = await _strictly(request, NewUser)
        await identity.create_entity(state.store, user)
        return user

    @post("/devices", summary="Register a device; its token is shown only in this answer")
    async def create_device(self, data: JSONBody[NewDevice], state: State) -> DeviceToken:
        """A handheld of a user; the server keeps only the token's hash."""
        return await identity.issue_device(state.store, data)

    @delete("/devices/{device_id:str}", summary="Revoke a device's token at once")
    async def revoke_device(self, device_id: FromPath[str], state: State) -> None:
        """Its token is refused from the next request on."""
        await state.store.revoke_device(device_id)

    @post(
        "/devices/{device_id:str}/token",
        status_code=200,
        summary="Re-issue a device's token: the old one stops at once; a revoked device is revoked no more",
    )
    async def reissue_token(self, device_id: FromPath[str], state: State) -> DeviceToken:
        return await identity.reissue_token(state.store, device_id)

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
    async def update_user(self, user_id: FromPath[str], data: JSONBody[UserUpdate], request: Request[Any, Any, Any], state: State) -> User:
        return await identity.update_user(state.store, user_id, await _strictly(request, UserUpdate))

    @patch("/wards/{ward_id:str}", summary="Rename a ward")
    async def update_ward(self, ward_id: FromPath[str], data: JSONBody[WardUpdate], state: State) -> Ward:
        return await identity.rename_ward(state.store, ward_id, data)

    @patch("/teams/{team_id:str}", summary="Rename a team, or move it to another ward while no record names it")
    async def update_team(self, team_id: FromPath[str], data: JSONBody[TeamUpdate], state: State) -> Team:
        return await identity.update_team(state.store, team_id, data)

    @get("/wards")
    async def list_wards(self, state: State) -> Sequence[Ward]:
        """List every ward."""
        store: Store = state.store
        return cast(Sequence[Ward], await store.entities(Ward))

    @get("/teams")
    async def list_teams(self, state: State) -> Sequence[Team]:
        """List every team."""
        store: Store = state.store
        return cast(Sequence[Team], await store.entities(Team))

    @get("/users")
    async def list_users(self, state: State) -> Sequence[User]:
        """List every user."""
        store: Store = state.store
        return cast(Sequence[User], await store.entities(User))

    @get("/devices")
    async def list_devices(self, state: State) -> Sequence[Device]:
        """List every device, revoked ones too (``revoked_at``); never a token."""
        store: Store = state.store
        return cast(Sequence[Device], await store.entities(Device))
