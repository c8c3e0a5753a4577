from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from schemas import COLLECTIONS

from ... import stagetimes
from ...errors import BadRequest, Unprocessable
from ...principal import Principal
from ...services.fleet import parse_client_header
from ...services.sync import SyncService
from ...wire import codec
from ...wire.answers import push_answer

__all__ = ["SyncController"]

StampsForm = Literal["full", "compact"]
OwnRecords = Literal["send", "skip"]


class SyncController(Controller):
    path = "/v1/sync"
    tags = ["sync"]

    @post("/push", status_code=200, summary="Push a change set (idempotent, atomic)")
    async def push(
        self,
        request: Request[Principal, None, Any],
        service: NamedDependency[SyncService],
        stamps: Annotated[StampsForm | None, QueryParameter(description="compact: one stamp per record, and the fields that differ")] = None,
    ) -> Response[bytes]:
        """One change set of this device (PROTOCOL.md section 4): each change applied or
        rejected on its own, all applied ones in one transaction. Sent again with the same
        ``changeset_id``, it applies nothing twice and answers the same. ``Prefer:
        return=minimal`` gives as ``seq`` alone the records the device computes itself."""
        settings = service.settings
        fmt = codec.request_format(request.headers.get("content-type"))
        body = codec.read_body(await request.body(), request.headers.get("content-encoding"), settings.max_body_bytes)
        with stagetimes.timer("loop: decode+validate"):
            push = codec.decode_push(body, fmt, settings.max_changes)
        stagetimes.add_records(len(push.changes))
        push.minimal = minimal = _prefers_minimal(request.headers.getall("prefer", []))
        outcome = await service.push(request.user, push, parse_client_header(request.headers.get("x-client")))
        out = codec.response_format(request.headers.get("accept"))
        with stagetimes.timer("loop: idempotency answer (to the client)"):
            answer = push_answer(outcome.answer, own=outcome.own, minimal=minimal, compact=stamps == "compact", fmt=out)
        applied = minimal and outcome.own is not None  # (a retry of a push that did not ask answers whole)
        headers = {"Preference-Applied": "return=minimal", "Vary": "Prefer"} if applied else {"Vary": "Prefer"}
        return Response(answer, media_type=codec.MSGPACK if out == "msgpack" else codec.JSON, headers=headers)

    @get("/pull", summary="Pull records changed after a cursor, in commit order")
    async def pull(
        self,
        request: Request[Principal, None, Any],
        service: NamedDependency[SyncService],
        cursor: Annotated[str | None, QueryParameter(max_length=200, description="opaque; empty or absent: from the start")] = None,
        limit: FromQuery[int | None] = None,
        collections: Annotated[str | None, QueryParameter(max_length=500, description="comma-separated names")] = None,
        max_bytes: Annotated[
            int | None, QueryParameter(description="a smaller page, in encoded bytes (a cut on a slow link then costs less)")
        ] = None,
        wait: Annotated[int | None, QueryParameter(description="seconds (0-60) to wait for a change when there is none")] = None,
        stamps: Annotated[StampsForm | None, QueryParameter(description="compact: one stamp per record, and the fields that differ")] = None,
        own: Annotated[
            OwnRecords | None,
            QueryParameter(
                description="skip: leave out records whose every stamp names this device (it holds them already); "
                "ignored without a cursor, so a device pulling from the start gets everything"
            ),
        ] = None,
    ) -> Response[bytes]:
        """Records of your wards changed after ``cursor``, each once as it now stands
        (PROTOCOL.md section 5). Follow ``cursor`` until ``more`` is false; 410: the store
        was restored, start again from no cursor. JSON or MessagePack (``Accept``).
        ``own=skip``: not the records that stand wholly as this device's own edits made them."""
        max_page = service.settings.max_page
        if limit is None:
            limit = max_page
        if limit > max_page:  # a number that does not fit: 400 (PROTOCOL.md section 1)
            raise BadRequest(f"limit must be between 1 and {max_page}")
        if limit < 1:
            raise Unprocessable(f"limit must be between 1 and {max_page}")
        if max_bytes is not None and not 1 <= max_bytes <= 1 << 40:
            raise Unprocessable("max_bytes must be a positive number of bytes")
        if wait is not None and not 0 <= wait <= 60:
            raise Unprocessable("wait must be between 0 and 60 seconds")
        wanted = None
        if collections:
            wanted = frozenset(c.strip() for c in collections.split(",") if c.strip())
            unknown = sorted(wanted - COLLECTIONS.keys())
            if unknown:
                raise BadRequest(f"unknown collections: {', '.join(unknown)}")
        fmt = codec.response_format(request.headers.get("accept"))
        body = await service.pull(
            request.user,
            cursor or None,
            limit,
            wanted,
            fmt,
            max_bytes=max_bytes,
            wait_s=float(wait or 0),
            compact=stamps == "compact",
            skip_own=own == "skip",
            client=parse_client_header(request.headers.get("x-client")),
        )
        return Response(body, media_type=codec.MSGPACK if fmt == "msgpack" else codec.JSON)


def _prefers_minimal(values: list[str]) -> bool:
    """``Prefer: return=minimal`` (RFC 7240), among any other preferences."""
    for value in values:
        for part in value.split(","):
            if part.split(";", 1)[0].strip().lower().replace(" ", "") == "return=minimal":
                return True
    return False
