"""The OpenAPI document: Litestar's, completed and tidied so that a third party can
generate a working client from it (openapi-python-client is run over it in
``tests/test_openapi.py``) and read it at ``/docs``.

Litestar describes what handlers declare. This module adds what it cannot see, and
reshapes what generators trip on, once per app (:class:`Completed`); every rule is
general, so a new handler or wire type gets it without being listed here:

- wire bodies of handlers that decode their own (push and pull speak JSON or
  MessagePack, gzip or not), problem answers, bearer auth; the schemas of the wire
  vocabulary are msgspec's own, with every constraint; generic ones lose their type
  argument in the name (``PushResponse``, not ``PushResponse_PulledRecord_``);
- every operation has a summary and a description: the handler's docstring (with
  ``use_handler_docstrings``), its first paragraph as the summary when the handler
  names none; failing both, its name in words;
- a parameter is one plain schema, and ``null`` beside it (``anyOf``) where the handler
  takes it, never inside an enum: a generator makes one enum class of it, not three;
- ``collection`` is the enum :data:`COLLECTION` wherever it names a known collection
  (records, conflicts, histories, parameters); a push result echoes what it was sent;
- text properties named ``at`` or ``..._at`` are RFC 3339 times (``format: date-time``):
  the stores write every time so;
- fixed-length tuples (a patrol's route point) keep ``prefixItems`` without the
  ``items: false`` beside them, which generators refuse;
- pulled records are typed by collection: ``PulledRecord`` is one of a variant per
  collection, whose ``collection`` is a constant and whose ``fields`` are the
  collection's fields, each optional (a deleted or partial record lacks some) and
  new ones allowed (a newer server may add fields);
- CSV answers and examples (push, pull, problems) from ``_examples``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Collection, Iterable, Iterator
from typing import Any

import msgspec
from litestar import Litestar
from litestar.routes import HTTPRoute

import schemas as schema_types
from schemas import BLOB_ID_PATTERN, COLLECTIONS, BlobReceipt, Problem, PulledRecord, PullResponse, PushRequest, PushResponse

from ..wire.codec import JSON, MSGPACK
from . import _examples
from .controllers.blobs import OCTETS

__all__ = ["COLLECTION", "Completed", "complete", "open_operations"]

_REF = "#/components/schemas/{name}"
#: The component every known ``collection`` refers to.
COLLECTION = "Collection"
#: Components whose ``collection`` property is always a known collection.
_NAMING_A_COLLECTION = ("Conflict", "RecordHistory")
#: (path, method) -> (request body type, 200 answer type)
_WIRE: dict[tuple[str, str], tuple[Any, Any]] = {
    ("/v1/sync/push", "post"): (PushRequest, PushResponse[PulledRecord]),
    ("/v1/sync/pull", "get"): (None, PullResponse[PulledRecord]),
}
_BODY = f"JSON, or the same as MessagePack (Content-Type: {MSGPACK}); either may be gzip-compressed (Content-Encoding: gzip)."
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

#: bodies a handler takes or leaves (Litestar marks every body required)
_OPTIONAL_BODIES = frozenset({("/v1/admin/devices/{device_id}/enrolment", "post")})


def _content(ref: dict[str, Any]) -> dict[str, Any]:
    return {JSON: {"schema": ref}, MSGPACK: {"schema": ref}}


def _parameters(max_page: int) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Query and path parameters whose handlers check more than their annotation says."""
    names = sorted(COLLECTIONS)
    one = "(" + "|".join(names) + ")"
    return {
        ("/v1/sync/pull", "get", "limit"): {"type": "integer", "minimum": 1, "maximum": max_page, "description": "records per page; absent: the most a page holds"},
        ("/v1/sync/pull", "get", "wait"): {"type": "integer", "minimum": 0, "maximum": 60, "description": "seconds to wait for a change when there is none (long poll)"},
        ("/v1/sync/pull", "get", "max_bytes"): {"type": "integer", "minimum": 1, "maximum": 1 << 40, "description": "a smaller page, in encoded bytes"},
        ("/v1/sync/pull", "get", "collections"): {"type": "string", "maxLength": 500, "pattern": f"^({one}(,{one})*)?$"},
    }


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document.get("paths", {}).items():
        for method, operation in methods.items():
            if method in _METHODS and isinstance(operation, dict):
                yield path, method, operation


def complete(document: dict[str, Any], max_page: int = 1000, open_operations: Collection[tuple[str, str]] = (("/healthz", "get"),)) -> dict[str, Any]:
    """Complete and tidy Litestar's document, in place (see the module docstring).
    ``open_operations``: (path, method) of the operations that take no token."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    vocabulary = [t for t in (getattr(schema_types, n) for n in schema_types.__all__) if isinstance(t, type) and issubclass(t, msgspec.Struct)]
    records = [spec.struct for spec in COLLECTIONS.values()]
    wire = [Problem, BlobReceipt] + [t for pair in _WIRE.values() for t in pair if t is not None]
    named = wire + [t for t in vocabulary if t.__name__ in schemas and t not in wire]  # what the document refers to
    types = named + [t for t in records if t not in named]
    refs, components = msgspec.json.schema_components(types, ref_template=_REF)
    schemas.update(components)
    by_type = dict(zip(types, refs, strict=True))
    parameters = _parameters(max_page)
    problem = {"description": "A problem document (RFC 9457)", "content": {"application/problem+json": {"schema": by_type[Problem]}}}
    for path, method, operation in _operations(document):
        if "responses" not in operation:
            continue
        for parameter in operation.get("parameters", []):
            patched = parameters.get((path, method, parameter.get("name", "")))
            if patched is not None:
                parameter["schema"] = {"anyOf": [patched, _NULL]} if _admits_null(parameter["schema"]) else patched
        if (path, method) in _OPTIONAL_BODIES and "requestBody" in operation:
            operation["requestBody"]["required"] = False
        pair = _WIRE.get((path, method))
        if pair is not None:
            request_type, answer_type = pair
            if request_type is not None:
                # MessagePack in words only: generators refuse a request type they cannot encode
                operation["requestBody"] = {"required": True, "description": _BODY, "content": {JSON: {"schema": by_type[request_type]}}}
            operation["responses"]["200"] = {"description": "OK", "content": _content(by_type[answer_type])}
        for status, response in list(operation["responses"].items()):
            if status.startswith(("4", "5")):
                operation["responses"][status] = {**problem, "description": response.get("description", "")}
        operation["responses"].setdefault("default", problem)
        if (path, method) not in open_operations:
            operation["security"] = [{"bearer": []}]
    _document_blobs(document.get("paths", {}), by_type[BlobReceipt], problem)  # raw bodies, ranges, resumable uploads
    document["components"].setdefault("securitySchemes", {})["bearer"] = {"type": "http", "scheme": "bearer"}
    for struct in records:
        if struct not in named:  # only their fields are wanted, inside the pulled record variants
            del schemas[struct.__name__]
    _tidy(document, {spec.name: components[spec.struct.__name__] for spec in COLLECTIONS.values()})
    return document


def _tidy(document: dict[str, Any], records: dict[str, dict[str, Any]]) -> None:
    schemas: dict[str, Any] = document["components"]["schemas"]
    schemas[COLLECTION] = {"type": "string", "enum": sorted(COLLECTIONS), "description": "a synced collection"}
    _type_pulled_records(schemas, records)
    for name in _NAMING_A_COLLECTION:
        if name in schemas:
            schemas[name]["properties"]["collection"] = {"$ref": _REF.format(name=COLLECTION)}
    for schema in schemas.values():
        _times(schema)
    _rename_generics(document)
    for path, method, operation in _operations(document):
        _describe(operation)
        for parameter in operation.get("parameters", []):
            _tidy_parameter(parameter)
        _examples.add(path, method, operation)
    _drop_items_false(document)


def _type_pulled_records(schemas: dict[str, Any], records: dict[str, dict[str, Any]]) -> None:
    """``PulledRecord``: one of a variant per collection (see the module docstring)."""
    base = schemas["PulledRecord"]
    variants = {}
    for collection, record in records.items():
        title = "Pulled" + "".join(part.capitalize() for part in collection.split("_"))
        properties = {k: {n: v for n, v in s.items() if n != "default"} for k, s in record["properties"].items() if k != "id"}
        fields = {
            "title": f"{title}Fields",
            "description": f"The fields of a record of {collection}, as it now stands (sets as sorted lists); a deleted or partial record lacks some.",
            "type": "object",
            "properties": properties,
            "additionalProperties": {"description": "a field this document does not name (a newer server's)"},
        }
        schemas[f"{title}Fields"] = fields
        variant = copy.deepcopy(base)
        variant["title"] = title
        variant["properties"]["collection"] = {"type": "string", "const": collection}
        variant["properties"]["fields"] = {"$ref": _REF.format(name=f"{title}Fields")}
        variant["properties"]["stamps"]["description"] = "each field's stamp"
        schemas[title] = variant
        variants[collection] = _REF.format(name=title)
    schemas["PulledRecord"] = {
        "title": "PulledRecord",
        "description": base.get("description", ""),
        "oneOf": [{"$ref": ref} for ref in variants.values()],
        "discriminator": {"propertyName": "collection", "mapping": variants},
    }


def _times(schema: Any) -> None:
    """``at`` and ``..._at`` text properties are RFC 3339 times."""
    for name, prop in (schema.get("properties") or {}).items():
        if name != "at" and not name.endswith("_at"):
            continue
        for option in prop.get("anyOf", [prop]):
            if option.get("type") == "string" and "format" not in option:
                option["format"] = "date-time"


_GENERIC = re.compile(r"^([A-Za-z0-9]+)_[A-Za-z0-9_]+_$")


def _rename_generics(document: dict[str, Any]) -> None:
    """``PushResponse_PulledRecord_`` -> ``PushResponse``: one record type on this wire."""
    schemas: dict[str, Any] = document["components"]["schemas"]
    renames = {}
    for name in list(schemas):
        match = _GENERIC.match(name)
        if match and match.group(1) not in schemas:
            renames[_REF.format(name=name)] = _REF.format(name=match.group(1))
            schemas[match.group(1)] = {**schemas.pop(name), "title": match.group(1)}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("$ref") in renames:
                node["$ref"] = renames[node["$ref"]]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    if renames:
        walk(document)


_DEFAULT_SUMMARY = re.compile(r"^[A-Z][a-z0-9]*(?:[A-Z][a-z0-9]*)*$")  # Litestar's: the handler's name, CamelCased


def _describe(operation: dict[str, Any]) -> None:
    summary = operation.get("summary") or ""
    description = (operation.get("description") or "").strip()
    if not summary or _DEFAULT_SUMMARY.match(summary):
        first = " ".join(description.split("\n\n")[0].split())
        summary = first.rstrip(".") if first else re.sub(r"(?<!^)([A-Z])", lambda m: " " + m.group(1).lower(), summary)
        operation["summary"] = summary
    if not description:
        operation["description"] = summary + "."


_NULL = {"type": "null"}


def _admits_null(schema: dict[str, Any]) -> bool:
    kinds = schema.get("type")
    return _NULL in schema.get("oneOf", []) + schema.get("anyOf", []) or (isinstance(kinds, list) and "null" in kinds)


def _tidy_parameter(parameter: dict[str, Any]) -> None:
    """One plain schema, and ``null`` beside it where the handler takes it (Litestar reads
    ``?status=null`` as absent), never inside an enum or a list of types."""
    schema = parameter.get("schema")
    if not isinstance(schema, dict):
        return
    plain = _without_null(schema)
    if parameter.get("name") == "collection" and plain.get("type") == "string":
        plain = {"$ref": _REF.format(name=COLLECTION)}
    description = plain.pop("description", None)
    if description and not parameter.get("description"):
        parameter["description"] = description
    parameter["schema"] = {"anyOf": [plain, _NULL]} if _admits_null(schema) else plain


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema minus ``null``, its constraints inside."""
    schema = dict(schema)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            options = [o for o in schema[key] if o != {"type": "null"}]
            if len(options) == 1:
                rest = {k: v for k, v in schema.items() if k != key}
                schema = {**options[0], **rest}
            else:
                schema[key] = options
    if isinstance(schema.get("type"), list):
        kinds = [t for t in schema["type"] if t != "null"]
        schema["type"] = kinds[0] if len(kinds) == 1 else kinds
    if "enum" in schema:
        schema["enum"] = [v for v in schema["enum"] if v is not None]
    return schema


def _drop_items_false(node: Any) -> None:
    """msgspec closes a fixed-length tuple with ``items: false`` beside ``prefixItems``;
    ``maxItems`` says the same, and generators refuse a boolean schema there."""
    if isinstance(node, dict):
        if "prefixItems" in node and node.get("items") is False:
            del node["items"]
        for value in node.values():
            _drop_items_false(value)
    elif isinstance(node, list):
        for value in node:
            _drop_items_false(value)


def open_operations(app: Litestar, open_paths: Iterable[str]) -> set[tuple[str, str]]:
    """The operations that take no token: their handler opts out (``exclude_from_auth``),
    or their path matches one of the auth middleware's exclusions (``open_paths``)."""
    patterns = [re.compile(p) for p in open_paths]
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        path = re.sub(r"\{(\w+):[^}]+\}", r"{\1}", route.path)  # /x/{id:str} -> /x/{id}, as documented
        for handler in route.route_handlers:
            if handler.opt.get("exclude_from_auth") or any(p.search(route.path) for p in patterns):
                found.update((path, method.lower()) for method in handler.http_methods)
    return found


class Completed:
    """The completed document of one app, made on first use (Litestar hands every
    render plugin the same cached document, which stays as Litestar made it)."""

    def __init__(self, max_page: int, open_paths: Iterable[str]) -> None:
        self.max_page = max_page
        self.open_paths = tuple(open_paths)
        self._document: dict[str, Any] | None = None

    def document(self, app: Litestar, litestar_document: dict[str, Any] | None = None) -> dict[str, Any]:
        if self._document is None:
            raw = app.openapi_schema.to_schema() if litestar_document is None else copy.deepcopy(litestar_document)
            self._document = complete(raw, self.max_page, open_operations(app, self.open_paths))
        return self._document


# -- the blob routes (raw bodies, ranges, resumable uploads) ----------------------------------

_BLOB_ID_SCHEMA = {"type": "string", "pattern": BLOB_ID_PATTERN, "minLength": 71, "maxLength": 71}
_OFFSET = {"description": "bytes of your resumable upload of this blob the server holds", "schema": {"type": "integer", "minimum": 0}}
_BINARY = {OCTETS: {"schema": {"type": "string", "format": "binary"}}}


def _header(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "description": description, "schema": schema or {"type": "string"}}


def _document_blobs(paths: dict[str, Any], receipt: dict[str, Any], problem: dict[str, Any]) -> None:
    """Describe the blob routes Litestar cannot (raw bodies, ranges, resumable uploads),
    in place. ``receipt``: the schema reference of BlobReceipt; ``problem``: a problem
    answer."""
    item = paths.get("/v1/blobs/{blob_id}")
    if item is None:
        return
    blob_id = {"name": "blob_id", "in": "path", "required": True, "description": "sha256: and the 64 lowercase hex digits of the blob's SHA-256", "schema": _BLOB_ID_SCHEMA}
    etag = {"description": 'the blob id, quoted: "sha256:..."', "schema": {"type": "string"}}
    with_offset = {**problem, "headers": {"Upload-Offset": _OFFSET}}
    receipt_answer = {"content": {"application/json": {"schema": receipt}}, "headers": {"Upload-Offset": _OFFSET}}
    if "put" in item:
        item["put"].update(
            description="A whole blob (201 stored, 200 stored already: nothing rewritten), or, with Content-Range, one chunk "
            "of a resumable upload (202 until the last; see the module docstring of sync_server/http/controllers/blobs.py).",
            parameters=[blob_id, _header("Content-Range", "bytes <first>-<last>/<total>: this body is one chunk of a resumable upload", {"type": "string", "pattern": r"^bytes [0-9]+-[0-9]+/[0-9]+$"})],
            requestBody={"required": True, "description": "the blob's bytes (or the chunk's)", "content": _BINARY},
            responses={
                "200": {"description": "The server held this blob already; nothing was written", **receipt_answer},
                "201": {"description": "Stored", **receipt_answer},
                "202": {"description": "Chunk staged; the upload continues at `offset`", **receipt_answer},
                "409": {**with_offset, "description": "The chunk does not start at the staged offset (Upload-Offset)"},
                "413": {**problem, "description": "Over the blob size limit"},
                "422": {**problem, "description": "The bytes do not hash to the id"},
                "default": problem,
            },
        )
    if "head" in item:
        item["head"].update(
            parameters=[blob_id, _header("If-None-Match", "the ETag you hold")],
            responses={
                "200": {"description": "Readable: its size", "headers": {"Content-Length": {"schema": {"type": "integer", "minimum": 0}}, "ETag": etag, "Accept-Ranges": {"schema": {"type": "string"}}, "Upload-Offset": _OFFSET}},
                "304": {"description": "Not modified (If-None-Match)"},
                "403": {"description": "No record of your wards names this blob (Upload-Offset: your staged upload)", "headers": {"Upload-Offset": _OFFSET}},
                "404": {"description": "Named in your wards, not uploaded yet; or not a blob id (Upload-Offset: your staged upload)", "headers": {"Upload-Offset": _OFFSET}},
                "default": {"description": "A problem (no body: HEAD)"},
            },
        )
    if "get" in item:
        item["get"].update(
            parameters=[blob_id, _header("Range", "one range: bytes=a-b, bytes=a- or bytes=-n; other forms are ignored"), _header("If-None-Match", "the ETag you hold")],
            responses={
                "200": {"description": "The whole blob", "headers": {"ETag": etag}, "content": _BINARY},
                "206": {"description": "The range asked for", "headers": {"ETag": etag, "Content-Range": {"schema": {"type": "string"}}}, "content": _BINARY},
                "304": {"description": "Not modified (If-None-Match)"},
                "403": {**with_offset, "description": "No record of your wards names this blob"},
                "404": {**with_offset, "description": "Named in your wards, not uploaded yet; or not a blob id"},
                "416": {**problem, "description": "None of the range exists", "headers": {"Content-Range": {"schema": {"type": "string"}}}},
                "default": problem,
            },
        )
