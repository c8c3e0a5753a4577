"""``POST /v1/enrol``: a handheld exchanges a one-time code for its token (no token needed)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from schemas import EnrolCode, EnrolledDevice

from ...services.enrolment import EnrolmentService

__all__ = ["EnrolController"]


class EnrolController(Controller):
    """Open to anyone who holds a code; guessing is refused by the code's format and by a
    per-address limit on failures (``sync_server/services/enrolment.py``)."""

    path = "/v1/enrol"
    tags = ["enrolment"]

    @post(
        "",
        status_code=200,
        exclude_from_auth=True,
        summary="Exchange a one-time enrolment code for the device's new token and its scope",
        description="422: not a code; 404: unknown, used or expired; 429: too many failures from this address (Retry-After).",
    )
    async def enrol(self, data: JSONBody[EnrolCode], request: Request[Any, Any, Any], enrolment: NamedDependency[EnrolmentService]) -> EnrolledDevice:
        client = request.client.host if request.client else "unknown"
        return await enrolment.redeem(data.code, client)
