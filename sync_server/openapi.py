"""The OpenAPI document, completed with the wire types of handlers that decode
their own bodies (push and pull speak JSON or MessagePack, gzip or not)."""

from __future__ import annotations

from typing import Any

import msgspec

import schemas as schema_types
from schemas import COLLECTIONS, BlobReceipt, Problem, PulledRecord, PullResponse, PushRequest, PushResponse

from .codec import JSON, MSGPACK
from .controllers import blobs

__all__ = ["complete"]

_REF = "#/components/schemas/{name}"
#: (path, method) -> (request body type, 200 answer type)
_WIRE: dict[tuple[str, str], tuple[Any, Any]] = {
    ("/v1/sync/push", "post"): (PushRequest, PushResponse[PulledRecord]),
    ("/v1/sync/pull", "get"): (None, PullResponse[PulledRecord]),
}


def _content(ref: dict[str, Any]) -> dict[str, Any]:
    return {JSON: {"schema": ref}, MSGPACK: {"schema": ref}}


def _parameters(max_page: int) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Query and path parameters whose handlers check more than their annotation says."""
    names = sorted(COLLECTIONS)
    one = "(" + "|".join(names) + ")"
    return {
        # absent or "null": a full page
        ("/v1/sync/pull", "get", "limit"): {"oneOf": [{"type": "integer", "minimum": 1, "maximum": max_page}, {"type": "null"}]},
        ("/v1/sync/pull", "get", "wait"): {"oneOf": [{"type": "integer", "minimum": 0, "maximum": 60}, {"type": "null"}]},
        ("/v1/sync/pull", "get", "max_bytes"): {"oneOf": [{"type": "integer", "minimum": 1, "maximum": 1 << 40}, {"type": "null"}]},
        ("/v1/sync/pull", "get", "collections"): {"type": "string", "maxLength": 500, "pattern": f"^({one}(,{one})*)?$"},
        ("/v1/conflicts", "get", "collection"): {"type": "string", "enum": names},
        ("/v1/records/{collection}/{record_id}/history", "get", "collection"): {"type": "string", "enum": names},
    }


def complete(document: dict[str, Any], max_page: int = 1000) -> dict[str, Any]:
    """Add wire bodies, problem answers and bearer auth to Litestar's document (in place);
    the schemas of the wire vocabulary are msgspec's own, with every constraint."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    vocabulary = [t for t in (getattr(schema_types, n) for n in schema_types.__all__) if isinstance(t, type) and issubclass(t, msgspec.Struct)]
    wire = [Problem, BlobReceipt] + [t for pair in _WIRE.values() for t in pair if t is not None]
    types = wire + [t for t in vocabulary if t.__name__ in schemas and t not in wire]
    refs, components = msgspec.json.schema_components(types, ref_template=_REF)
    schemas.update(components)
    by_type = dict(zip(types, refs, strict=True))
    parameters = _parameters(max_page)
    problem = {"description": "A problem document (RFC 9457)", "content": {"application/problem+json": {"schema": by_type[Problem]}}}
    for path, methods in document.get("paths", {}).items():
        for method, operation in methods.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for parameter in operation.get("parameters", []):
                patched = parameters.get((path, method, parameter.get("name", "")))
                if patched is not None:
                    parameter["schema"] = patched
            pair = _WIRE.get((path, method))
            if pair is not None:
                request_type, answer_type = pair
                if request_type is not None:
                    operation["requestBody"] = {"required": True, "content": _content(by_type[request_type])}
                operation["responses"]["200"] = {"description": "OK", "content": _content(by_type[answer_type])}
            for status, response in list(operation["responses"].items()):
                if status.startswith(("4", "5")):
                    operation["responses"][status] = {**problem, "description": response.get("description", "")}
            operation["responses"].setdefault("default", problem)
            if path != "/healthz":
                operation["security"] = [{"bearer": []}]
    blobs.document(document.get("paths", {}), by_type[BlobReceipt], problem)  # raw bodies, ranges, resumable uploads
    document["components"].setdefault("securitySchemes", {})["bearer"] = {"type": "http", "scheme": "bearer"}
    return document
