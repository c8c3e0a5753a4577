from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from litestar import Controller, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from schemas import Device, DeviceToken, NewDevice, NewTeam, NewUser, NewWard, Team, User, Ward

from .. import identity
from ..auth import admins_only
from ..stores import Store

__all__ = ["AdminController"]


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
    async def create_user(self, data: JSONBody[NewUser], state: State) -> User:
        """Create a user: officers see the wards of their teams, supervisors and admins their ``ward_ids``."""
        await identity.create_entity(state.store, data)
        return data

    @post("/devices", summary="Register a device; its token is shown only in this answer")
    async def create_device(self, data: JSONBody[NewDevice], state: State) -> DeviceToken:
        """A handheld of a user; the server keeps only the token's hash."""
        return await identity.issue_device(state.store, data)

    @delete("/devices/{device_id:str}", summary="Revoke a device's token at once")
    async def revoke_device(self, device_id: FromPath[str], state: State) -> None:
        """Its token is refused from the next request on."""
        await state.store.revoke_device(device_id)

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
