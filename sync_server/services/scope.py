"""A device's scope as the device itself may read it: ``GET /v1/me`` and the enrol answer.

A handheld must know its ward to build a new record (every record carries an immutable
``ward_id``), and the officer should see his ward's name, not type its id. The server
already knows both from the token: the caller's user, role and wards (PROTOCOL.md
section 2). This answers them, with the names to show, from the same principal the
auth layer built, so the app's idea of its scope can never differ from the server's.
"""

from __future__ import annotations

from typing import cast

from schemas import DeviceScope, Role, ScopeWard, Ward

from ..errors import Forbidden
from ..principal import Principal
from ..stores import IdentityStore
from .identity import hash_token

__all__ = ["ScopeService"]


class ScopeService:
    def __init__(self, store: IdentityStore) -> None:
        self.store = store

    async def of(self, principal: Principal) -> DeviceScope:
        """The caller's scope, wards sorted by id (an admin's: every ward)."""
        wards = [w for w in await self.store.entities(Ward) if isinstance(w, Ward) and principal.may_see(w.id)]
        user = await self.store.user(principal.user_id)
        name = user.name if user is not None else principal.user_id
        return DeviceScope(
            device_id=principal.device_id,
            user_id=principal.user_id,
            user_name=name,
            role=cast(Role, principal.role),
            wards=[ScopeWard(id=w.id, name=w.name) for w in sorted(wards, key=lambda w: w.id)],
        )

    async def of_token(self, token: str) -> DeviceScope:
        """The scope a token just issued stands for (the enrol answer)."""
        principal = await self.store.principal(hash_token(token))
        if principal is None:  # the user is disabled (the token works once he is enabled)
            raise Forbidden("this device's user is disabled: ask an admin to enable him, then sync")
        return await self.of(principal)
