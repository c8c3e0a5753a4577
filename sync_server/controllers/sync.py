from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from schemas import COLLECTIONS, Change

from .. import codec
from ..errors import BadRequest, Unprocessable
from ..fleet import parse_client_header
from ..principal import Principal
from ..service import SyncService
from ._wire import wire_response

__all__ = ["SyncController"]


def _top_stamp(push: codec.DecodedPush) -> str | None:
    """The highest stamp a push carries: its device's clock, at the latest edit."""
    top = ""
    for change in push.changes:
        if isinstance(change, Change):
            for _, edit in change.edits():
                top = max(top, edit.ts)
            if change.delete is not None:
                top = max(top, change.delete.ts)
    return top or None


class SyncController(Controller):
    path = "/v1/sync"
    tags = ["sync"]

    @post("/push", status_code=200, summary="Push a change set (idempotent, atomic)")
    async def push(self, request: Request[Principal, None, Any], service: NamedDependency[SyncService]) -> Response[bytes]:
        """One change set of this device (PROTOCOL.md section 4): each change applied or
        rejected on its own, all applied ones in one transaction. Sent again with the same
        ``changeset_id``, it applies nothing twice and answers the same. ``Prefer:
        return=minimal`` leaves out records that stand as the device made them."""
        settings = service.settings
        fmt = codec.request_format(request.headers.get("content-type"))
        body = codec.read_body(await request.body(), request.headers.get("content-encoding"), settings.max_body_bytes)
        push = codec.decode_push(body, fmt, settings.max_changes)
        outcome = await service.push(request.user, push)
        client = parse_client_header(request.headers.get("x-client"))
        service.fleet.note(request.user, "push", client, _top_stamp(push), 0 if outcome.replayed else outcome.rejected)
        return wire_response(request, outcome.answer)

    @get("/pull", summary="Pull records changed after a cursor, in commit order")
    async def pull(
        self,
        request: Request[Principal, None, Any],
        service: NamedDependency[SyncService],
        cursor: Annotated[str | None, QueryParameter(max_length=200, description="opaque; empty or absent: from the start")] = None,
        limit: FromQuery[int | None] = None,
        collections: Annotated[str | None, QueryParameter(max_length=500, description="comma-separated names")] = None,
    ) -> Response[bytes]:
        """Records of your wards changed after ``cursor``, each once as it now stands
        (PROTOCOL.md section 5). Follow ``cursor`` until ``more`` is false; 410: the store
        was restored, start again from no cursor. JSON or MessagePack (``Accept``)."""
        max_page = service.settings.max_page
        if limit is None:
            limit = max_page
        if limit > max_page:  # a number that does not fit: 400 (PROTOCOL.md section 1)
            raise BadRequest(f"limit must be between 1 and {max_page}")
        if limit < 1:
            raise Unprocessable(f"limit must be between 1 and {max_page}")
        wanted = None
        if collections:
            wanted = frozenset(c.strip() for c in collections.split(",") if c.strip())
            unknown = sorted(wanted - COLLECTIONS.keys())
            if unknown:
                raise BadRequest(f"unknown collections: {', '.join(unknown)}")
        fmt = codec.response_format(request.headers.get("accept"))
        body = await service.pull(request.user, cursor or None, limit, wanted, fmt)
        service.fleet.note(request.user, "pull", parse_client_header(request.headers.get("x-client")))
        return Response(body, media_type=codec.MSGPACK if fmt == "msgpack" else codec.JSON)
