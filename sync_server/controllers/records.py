from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from schemas import RecordHistory

from ..auth import supervisors_only
from ..principal import Principal
from ..supervision import SupervisionService

__all__ = ["RecordsController"]


class RecordsController(Controller):
    path = "/v1/records"
    tags = ["history"]
    guards = [supervisors_only]

    @get("/{collection:str}/{record_id:str}/history", summary="Every applied edit of a record, oldest first")
    async def history(
        self,
        request: Request[Principal, None, Any],
        supervision: NamedDependency[SupervisionService],
        collection: FromPath[str],
        record_id: FromPath[str],
    ) -> RecordHistory:
        """Who changed which field, from what to what, when and from which device."""
        return await supervision.history(request.user, collection, record_id)
