"""The OpenAPI document, completed with the wire types of handlers that decode
their own bodies (push and pull speak JSON or MessagePack, gzip or not)."""

from __future__ import annotations

from typing import Any

import msgspec

from schemas import Problem, PulledRecord, PullResponse, PushRequest, PushResponse

from .codec import JSON, MSGPACK

__all__ = ["complete"]

_REF = "#/components/schemas/{name}"
#: (path, method) -> (request body type, 200 answer type)
_WIRE: dict[tuple[str, str], tuple[Any, Any]] = {
    ("/v1/sync/push", "post"): (PushRequest, PushResponse[PulledRecord]),
    ("/v1/sync/pull", "get"): (None, PullResponse[PulledRecord]),
}


def _content(ref: dict[str, Any]) -> dict[str, Any]:
    return {JSON: {"schema": ref}, MSGPACK: {"schema": ref}}


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """Add wire bodies, problem answers and bearer auth to Litestar's document (in place)."""
    types = [Problem] + [t for pair in _WIRE.values() for t in pair if t is not None]
    refs, components = msgspec.json.schema_components(types, ref_template=_REF)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(components)
    by_type = dict(zip(types, refs))
    problem = {"description": "A problem document (RFC 9457)", "content": {"application/problem+json": {"schema": by_type[Problem]}}}
    for path, methods in document.get("paths", {}).items():
        for method, operation in methods.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            wire = _WIRE.get((path, method))
            if wire is not None:
                request_type, answer_type = wire
                if request_type is not None:
                    operation["requestBody"] = {"required": True, "content": _content(by_type[request_type])}
                operation["responses"]["200"] = {"description": "OK", "content": _content(by_type[answer_type])}
            for status, response in list(operation["responses"].items()):
                if status.startswith(("4", "5")):
                    operation["responses"][status] = {**problem, "description": response.get("description", "")}
            operation["responses"].setdefault("default", problem)
            if path != "/healthz":
                operation["security"] = [{"bearer": []}]
    document["components"].setdefault("securitySchemes", {})["bearer"] = {"type": "http", "scheme": "bearer"}
    return document
