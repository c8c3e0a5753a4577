from __future__ import annotations

from litestar import get
from litestar.di import NamedDependency

from schemas import Health

from ... import __version__
from ...errors import Unavailable
from ...services.identity import Administration

__all__ = ["health"]


@get("/healthz", exclude_from_auth=True, summary="Liveness: 200 when the store is reachable")
async def health(admin: NamedDependency[Administration]) -> Health:
    """No token needed; 503 (a problem) when the store cannot be reached."""
    if not await admin.reachable():
        raise Unavailable("the store is not reachable")
    return Health(status="ok", version=__version__, protocol=1)
