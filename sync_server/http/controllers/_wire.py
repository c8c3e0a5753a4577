"""Helpers for handlers that speak the negotiated wire format themselves."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response

from ...wire import codec

__all__ = ["wire_response"]


def wire_response(request: Request[Any, Any, Any], json_body: bytes) -> Response[bytes]:
    """Answer ready-made JSON, or MessagePack when the client asks for it."""
    if codec.response_format(request.headers.get("accept")) == "msgpack":
        return Response(codec.encode(msgspec.json.decode(json_body), "msgpack"), media_type=codec.MSGPACK)
    return Response(json_body, media_type=codec.JSON)
