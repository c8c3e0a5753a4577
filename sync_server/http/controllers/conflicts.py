from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from schemas import COLLECTIONS, Conflict, ConflictList, Resolution

from ...errors import BadRequest
from ...principal import Principal
from ...services.supervision import SupervisionService
from ..auth import supervisors_only

__all__ = ["ConflictsController"]


class ConflictsController(Controller):
    """Conflict review. Supervisors and admins."""

    path = "/v1/conflicts"
    tags = ["conflicts"]
    guards = [supervisors_only]

    @get("/", summary="Conflicts of your wards, oldest first")
    async def list_conflicts(
        self,
        request: Request[Principal, None, Any],
        supervision: NamedDependency[SupervisionService],
        ward: Annotated[str | None, QueryParameter(max_length=64)] = None,
        status: Annotated[Literal["open", "resolved"] | None, QueryParameter()] = None,
        collection: Annotated[str | None, QueryParameter(max_length=64)] = None,
        after: Annotated[str | None, QueryParameter(max_length=40, description="the `next` of the previous page")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> ConflictList:
        """Every real conflict the merge logged, with both sides; paged by ``next``."""
        if collection is not None and collection not in COLLECTIONS:
            raise BadRequest(f"unknown collection {collection}")
        return await supervision.conflicts(request.user, ward, status, collection, after, limit)

    @post("/{conflict_id:str}/resolve", status_code=200, summary="Resolve a conflict: a new server-stamped edit")
    async def resolve(
        self,
        request: Request[Principal, None, Any],
        supervision: NamedDependency[SupervisionService],
        conflict_id: FromPath[str],
        data: JSONBody[Resolution],
    ) -> Conflict:
        """Keep the stored value, take the other side's, or set one: applied as a new edit
        stamped by the server, which every device then pulls."""
        return await supervision.resolve(request.user, conflict_id, data)
