from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from schemas import SearchResults
from schemas.collections import PremisesKind

from ...principal import Principal
from ...services.supervision import SupervisionService

__all__ = ["SearchController"]


class SearchController(Controller):
    """Search, scoped like pull: any role, the caller's wards only."""

    path = "/v1/search"
    tags = ["search"]

    @get("/premises", summary="Premises by name, address or owner; case and diacritics ignored; best first")
    async def premises(
        self,
        request: Request[Principal, None, Any],
        supervision: NamedDependency[SupervisionService],
        q: Annotated[str, QueryParameter(min_length=1, max_length=200)],
        ward: Annotated[str | None, QueryParameter(max_length=64)] = None,
        kind: Annotated[PremisesKind | None, QueryParameter()] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> SearchResults:
        """Scoped like pull (your wards, or ``ward``); ``score`` compares within one answer only."""
        return await supervision.search(request.user, q, ward, kind, limit)
