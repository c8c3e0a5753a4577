from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from schemas import FleetHealth

from ...principal import Principal
from ...services.supervision import SupervisionService
from ..auth import supervisors_only

__all__ = ["DevicesController"]


class DevicesController(Controller):
    path = "/v1/devices"
    tags = ["fleet"]
    guards = [supervisors_only]

    @get("/health", summary="Per device: last push and pull, client, pending changes, clock offset, rejections")
    async def health(
        self,
        request: Request[Principal, None, Any],
        supervision: NamedDependency[SupervisionService],
        ward: Annotated[str | None, QueryParameter(max_length=64)] = None,
    ) -> FleetHealth:
        """Devices of users of your wards (or ``ward``), as each last pushed and pulled."""
        return await supervision.fleet_health(request.user, ward)
