"""Bodies on the wire: gzip, JSON or MessagePack, limits, and lenient push decoding.

Encoders and decoders are built once and reused.  A push is first decoded with
its full type (the fast path); only when that fails is it decoded again change by
change, so that one bad change is rejected on its own (no poison pills) while a
malformed envelope fails the whole request.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import zlib
from typing import Any, Literal, TypeVar

import msgspec

from schemas import COLLECTIONS, AnyChange, Change, ErrorItem, PushEnvelope, PushRequest

from ..errors import BadRequest, PayloadTooLarge, Unprocessable, UnsupportedMediaType

__all__ = [
    "JSON",
    "MSGPACK",
    "DecodedPush",
    "Format",
    "Rejected",
    "decode",
    "decode_push",
    "encode",
    "read_body",
    "request_format",
    "response_format",
]

Format = Literal["json", "msgpack"]
JSON = "application/json"
MSGPACK = "application/msgpack"
_MSGPACK_TYPES = frozenset({MSGPACK, "application/x-msgpack", "application/vnd.msgpack"})
T = TypeVar("T")

_json_encoder = msgspec.json.Encoder()
_msgpack_encoder = msgspec.msgpack.Encoder()


def request_format(content_type: str | None) -> Format:
    media = (content_type or JSON).split(";", 1)[0].strip().lower()
    if media in _MSGPACK_TYPES:
        return "msgpack"
    if media == JSON or media.endswith("+json") or media == "":
        return "json"
    raise UnsupportedMediaType(f"send {JSON} or {MSGPACK}, not {media}")


def response_format(accept: str | None) -> Format:
    if accept and any(part.split(";", 1)[0].strip().lower() in _MSGPACK_TYPES for part in accept.split(",")):
        return "msgpack"
    return "json"


def read_body(raw: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The request body, gunzipped if sent so, never longer than ``limit`` bytes."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        body = raw
    elif encoding in ("gzip", "x-gzip"):
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            body = inflater.decompress(raw, limit + 1)  # never inflate past the limit (gzip bombs)
        except zlib.error as exc:
            raise BadRequest(f"the gzip body is corrupt: {exc}") from None
        if len(body) <= limit and not inflater.eof:
            raise BadRequest("the gzip body is truncated")
    else:
        raise UnsupportedMediaType(f"Content-Encoding {encoding} is not supported (use gzip)")
    if len(body) > limit:
        raise PayloadTooLarge(f"the body is over {limit} bytes after decompression")
    return body


def encode(value: Any, fmt: Format = "json") -> bytes:
    return _msgpack_encoder.encode(value) if fmt == "msgpack" else _json_encoder.encode(value)


_decoders: dict[tuple[Any, Format], Any] = {}


def _decoder(kind: Any, fmt: Format) -> Any:
    key = (kind, fmt)
    if key not in _decoders:
        _decoders[key] = (msgspec.msgpack.Decoder if fmt == "msgpack" else msgspec.json.Decoder)(kind)
    return _decoders[key]


def decode(body: bytes, kind: type[T], fmt: Format = "json") -> T:
    """Decode a request body into its type; 400 for bad syntax, 422 for bad content."""
    try:
        return _decoder(kind, fmt).decode(body)  # type: ignore[no-any-return]
    except msgspec.ValidationError as exc:
        raise Unprocessable(str(exc), errors=[_error_item(str(exc))]) from None
    except _UNREADABLE as exc:
        raise _unreadable(fmt, exc) from None


#: what decoding hostile bytes raises besides ValidationError: bad syntax
#: (DecodeError), invalid UTF-8 (UnicodeDecodeError), nesting past the C stack
#: guard (RecursionError)
_UNREADABLE = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


def _unreadable(fmt: Format, exc: BaseException) -> BadRequest:
    if isinstance(exc, RecursionError):
        return BadRequest(f"the body is not valid {fmt}: nested too deeply")
    if isinstance(exc, UnicodeDecodeError):
        return BadRequest(f"the body is not valid {fmt}: a string is not valid UTF-8 ({exc.reason} at byte {exc.start})")
    return BadRequest(f"the body is not valid {fmt}: {exc}")


# -- push ---------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class Rejected:
    """A change refused before merging: malformed, or of an unknown collection."""

    collection: str | None
    id: str | None
    errors: list[ErrorItem]


@dataclasses.dataclass(slots=True)
class DecodedPush:
    device_id: str
    changeset_id: str
    changes: list[Change | Rejected]
    #: identifies the body whatever its encoding, for idempotent retries
    body_hash: bytes
    #: the client asked ``Prefer: return=minimal``: the writer then notes which records
    #: the device can compute itself (``engine.own``), with the stored answer
    minimal: bool = False


class _Head(msgspec.Struct):
    collection: Any = None
    id: Any = None


_AT = re.compile(r" - at `\$(.*)`$")
_FIELD = re.compile(r"^\.fields\.([A-Za-z0-9_]+)")
_UNKNOWN = re.compile(r"unknown field `([^`]+)`")


def _error_item(message: str) -> ErrorItem:
    """Turn a msgspec validation message into a field, a code and a detail."""
    at = _AT.search(message)
    path = at.group(1) if at else ""
    field = None
    if m := _FIELD.match(path):
        field = m.group(1)
    elif path == ".fields" and (u := _UNKNOWN.search(message)):
        field = u.group(1)
    elif path.startswith("."):
        field = path[1:].split(".", 1)[0].split("[", 1)[0]
    return ErrorItem(code="invalid", detail=message, field=field)


def _reject_change(raw: msgspec.Raw, fmt: Format, message: str) -> Rejected:
    try:
        head = _decoder(_Head, fmt).decode(raw)
    except _UNREADABLE:
        head = _Head()
    collection = head.collection if isinstance(head.collection, str) else None
    record_id = head.id if isinstance(head.id, str) else None
    if collection is not None and collection not in COLLECTIONS:
        error = ErrorItem(code="unknown_collection", detail=f"no collection named {collection!r}", field=None)
    else:
        error = _error_item(message)
    return Rejected(collection, record_id, [error])


def _content_hash(value: Any) -> bytes:
    """A hash of a decoded body: the same whatever its key order or encoding."""
    return hashlib.sha256(_json_encoder.encode(value)).digest()


def decode_push(body: bytes, fmt: Format, max_changes: int) -> DecodedPush:
    try:
        request = _decoder(PushRequest, fmt).decode(body)
    except msgspec.ValidationError:  # (a DecodeError too: catch it first)
        return _decode_leniently(body, fmt, max_changes)
    except _UNREADABLE as exc:
        raise _unreadable(fmt, exc) from None
    _check_count(len(request.changes), max_changes)
    # typed Structs encode in declared field order: a canonical form for free
    return DecodedPush(request.device_id, request.changeset_id, list(request.changes), _content_hash(request))


def _decode_leniently(body: bytes, fmt: Format, max_changes: int) -> DecodedPush:
    """Change by change: a bad change is rejected alone, a bad envelope fails the request."""
    envelope = decode(body, PushEnvelope, fmt)
    _check_count(len(envelope.changes), max_changes)
    try:
        generic = msgspec.msgpack.decode(body) if fmt == "msgpack" else msgspec.json.decode(body)
        body_hash = hashlib.sha256(msgspec.json.encode(generic, order="sorted")).digest()
    except (*_UNREADABLE, ValueError):  # a number past float range, say: a retry sends the same bytes
        body_hash = hashlib.sha256(b"raw:" + body).digest()
    changes: list[Change | Rejected] = []
    change_decoder = _decoder(AnyChange, fmt)
    for raw in envelope.changes:
        try:
            changes.append(change_decoder.decode(raw))
        except msgspec.ValidationError as exc:
            changes.append(_reject_change(raw, fmt, str(exc)))
        except _UNREADABLE as exc:
            changes.append(_reject_change(raw, fmt, str(_unreadable(fmt, exc))))
    return DecodedPush(envelope.device_id, envelope.changeset_id, changes, body_hash)


def _check_count(count: int, limit: int) -> None:
    if count > limit:
        raise PayloadTooLarge(f"{count} changes in one change set; the limit is {limit}")
