"""``GET /v1/me``: the calling device's own scope (PROTOCOL.md sections 2 and 10)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency

from schemas import DeviceScope

from ...principal import Principal
from ...services.scope import ScopeService

__all__ = ["MeController"]


class MeController(Controller):
    """Any role: a device reads who it acts for and which wards it may see. The app calls
    it after a token is entered or re-issued, and on each sync, so that a change of the
    user's teams or wards reaches the phone without anyone typing a ward id."""

    path = "/v1/me"
    tags = ["enrolment"]

    @get("", summary="This device's user, role and wards (with their names)")
    async def me(self, request: Request[Principal, None, Any], scopes: NamedDependency[ScopeService]) -> DeviceScope:
        return await scopes.of(request.user)
