"""Typed values in, JSON out: validation against ``schemas`` and the local overlay.

Pure functions, no I/O. Values are checked against the collection's field types
(the constraints of ``schemas``) before anything is queued, so a change that
would be refused for its type never leaves the device; text is normalised to NFC
so the device reads back exactly what the server will store.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import msgspec

from schemas import COLLECTIONS, Record
from schemas.collections import CollectionSpec, FieldSpec, Policy

from .errors import InvalidEdit

__all__ = ["PendingRow", "Values", "apply_rows", "encode_record", "encode_value", "nfc", "spec_for", "utc_text"]

R = TypeVar("R", bound=Record)
_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()


@dataclasses.dataclass(slots=True)
class PendingRow:
    """One outbox row: a field's new value, a set element's presence, or a delete."""

    field: str
    element: str
    kind: str  # 'value' | 'set' | 'delete'
    value: str | None
    present: int | None
    ts: str


@dataclasses.dataclass(slots=True)
class Values:
    """Validated edits of one record: JSON values and set element changes."""

    values: dict[str, str] = dataclasses.field(default_factory=dict)
    #: field -> element -> present
    sets: dict[str, dict[str, bool]] = dataclasses.field(default_factory=dict)

    def rows(self, ts: str) -> list[PendingRow]:
        out = [PendingRow(name, "", "value", value, None, ts) for name, value in self.values.items()]
        for name, elements in self.sets.items():
            out += [PendingRow(name, e, "set", None, int(p), ts) for e, p in elements.items()]
        return out


def spec_for(kind: type[Record] | str) -> CollectionSpec:
    name = kind if isinstance(kind, str) else getattr(kind, "collection", None)
    if not isinstance(name, str) or name not in COLLECTIONS:
        raise InvalidEdit(f"{kind!r} is not a synced collection")
    return COLLECTIONS[name]


def nfc(value: Any) -> Any:
    """NFC-normalise every string inside a JSON-like value."""
    if isinstance(value, str):
        return value if value.isascii() or unicodedata.is_normalized("NFC", value) else unicodedata.normalize("NFC", value)
    if isinstance(value, list):
        return [nfc(v) for v in value]
    if isinstance(value, tuple):
        return tuple(nfc(v) for v in value)
    return value


def _field(spec: CollectionSpec, name: str) -> FieldSpec:
    field = spec.fields.get(name)
    if field is None:
        raise InvalidEdit(f"{spec.name} has no field {name!r}")
    return field


def encode_value(spec: CollectionSpec, name: str, value: Any) -> str:
    """A field's value checked against its type, as JSON text."""
    field = _field(spec, name)
    try:
        checked = msgspec.convert(nfc(value), field.type)
    except msgspec.ValidationError as exc:
        raise InvalidEdit(f"{spec.name}.{name}: {exc}") from None
    return _json.encode(checked).decode()


def check_elements(spec: CollectionSpec, name: str, elements: Iterable[Any]) -> list[str]:
    field = _field(spec, name)
    if field.policy is not Policy.SET:
        raise InvalidEdit(f"{spec.name}.{name} is not a set field: use update()")
    try:
        return list(msgspec.convert(nfc(list(elements)), field.type))
    except msgspec.ValidationError as exc:
        raise InvalidEdit(f"{spec.name}.{name}: {exc}") from None


def encode_record(record: R, user_id: str, now: str) -> tuple[CollectionSpec, Values, R]:
    """A new record's fields: validated, authorship filled in, empty optionals left out."""
    spec = spec_for(type(record))
    builtins = nfc_map(msgspec.to_builtins(record))
    builtins["created_by"] = builtins.get("created_by") or user_id
    builtins["created_at"] = builtins.get("created_at") or now
    try:
        checked = msgspec.convert(builtins, type(record))
    except msgspec.ValidationError as exc:
        raise InvalidEdit(f"{spec.name}: {exc}") from None
    out = Values()
    for name, field in spec.fields.items():
        value = builtins.get(name)
        if field.policy is Policy.SET:
            if value:
                out.sets[name] = {str(e): True for e in value}
        elif value is not None or field.required:
            out.values[name] = _json.encode(value).decode()
    return spec, out, checked


def nfc_map(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: nfc(v) for k, v in values.items()}


def apply_rows(doc: dict[str, Any], rows: Iterable[PendingRow], deleted: bool) -> bool:
    """Apply pending rows to ``doc`` (the fields as pulled, modified in place).

    Returns whether the record reads as deleted: a pending delete hides it unless a
    pending edit is stamped after it (that edit restores it); otherwise the pulled
    state stands, until the server has ordered this device's edits against it."""
    delete_ts: str | None = None
    top = ""
    working: dict[str, set[str]] = {}
    for row in rows:
        if row.kind == "delete":
            delete_ts = row.ts
            continue
        top = max(top, row.ts)
        if row.kind == "value":
            doc[row.field] = _decode.decode(row.value or "null")
        else:
            elements = working.get(row.field)
            if elements is None:
                current = doc.get(row.field)
                elements = working[row.field] = set(current) if isinstance(current, list) else set()
            if row.present:
                elements.add(row.element)
            else:
                elements.discard(row.element)
    for name, elements in working.items():
        doc[name] = sorted(elements)
    if delete_ts is not None:
        return delete_ts > top
    return deleted


def utc_text(ms: int) -> str:
    """RFC 3339 in UTC with milliseconds, as the server writes ``created_at``."""
    when = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
