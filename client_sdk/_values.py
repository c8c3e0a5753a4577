"""Typed values in, JSON out: validation against ``schemas`` and the local overlay.

Pure functions, no I/O. Values are checked against the collection's field types
(the constraints of ``schemas``) before anything is queued, so a change that
would be refused for its type never leaves the device; text is normalised to NFC
so the device reads back exactly what the server will store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import msgspec

from schemas import COLLECTIONS, Record, order
from schemas.collections import CollectionSpec, FieldSpec, Policy
from schemas.stamps import utc_text
from schemas.text import nfc as nfc_text

from .errors import InvalidEdit

__all__ = [
    "Pending",
    "Values",
    "apply_pending",
    "decode_pending",
    "encode_pending",
    "encode_record",
    "encode_value",
    "nfc",
    "spec_for",
    "utc_text",
]

R = TypeVar("R", bound=Record)
_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()


class PendingValue(msgspec.Struct, array_like=True):
    value: msgspec.Raw
    ts: str
    base: str | None


class PendingSet(msgspec.Struct, array_like=True):
    #: element -> (present, stamp)
    elements: dict[str, tuple[bool, str]]
    base: str | None


class PendingDelete(msgspec.Struct, array_like=True):
    ts: str
    base: str | None


class Pending(msgspec.Struct, omit_defaults=True):
    """One record's edits waiting in the outbox, coalesced: per field the newest value
    and its stamp, per set element the newest add or remove, and the *first* edit's
    base (the server state the device had seen when its local edits began)."""

    values: dict[str, PendingValue] = {}
    sets: dict[str, PendingSet] = {}
    delete: PendingDelete | None = None

    def top(self) -> str:
        stamps = [v.ts for v in self.values.values()]
        stamps += [ts for s in self.sets.values() for _, ts in s.elements.values()]
        if self.delete is not None:
            stamps.append(self.delete.ts)
        return max(stamps, default="")

    def add(self, edits: Values, ts: str, stamps: Mapping[str, str]) -> None:
        """Coalesce new edits stamped ``ts``; ``stamps``: the fields' stamps as last pulled."""
        for name, value in edits.values.items():
            old = self.values.get(name)
            self.values[name] = PendingValue(msgspec.Raw(value.encode()), ts, old.base if old else stamps.get(name))
        for name, elements in edits.sets.items():
            pending = self.sets.get(name)
            if pending is None:
                pending = self.sets[name] = PendingSet({}, stamps.get(name))
            for element, present in elements.items():
                pending.elements[element] = (present, ts)

    def delete_at(self, ts: str, stamps: Mapping[str, str]) -> None:
        base = self.delete.base if self.delete else max(stamps.values(), default=None)
        self.delete = PendingDelete(ts, base)


_pending_encoder = msgspec.json.Encoder()
_pending_decoder = msgspec.json.Decoder(Pending)


def encode_pending(pending: Pending) -> bytes:
    return _pending_encoder.encode(pending)


def decode_pending(data: bytes) -> Pending:
    return _pending_decoder.decode(data)


@dataclasses.dataclass(slots=True)
class Values:
    """Validated edits of one record: JSON values and set element changes."""

    values: dict[str, str] = dataclasses.field(default_factory=dict)
    #: field -> element -> present
    sets: dict[str, dict[str, bool]] = dataclasses.field(default_factory=dict)


def spec_for(kind: type[Record] | str) -> CollectionSpec:
    name = kind if isinstance(kind, str) else getattr(kind, "collection", None)
    if not isinstance(name, str) or name not in COLLECTIONS:
        raise InvalidEdit(f"{kind!r} is not a synced collection")
    return COLLECTIONS[name]


def nfc(value: Any) -> Any:
    """NFC-normalise every string inside a JSON-like value."""
    if isinstance(value, str):
        return nfc_text(value)
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


def apply_pending(doc: dict[str, Any], pendings: Iterable[Pending], deleted: bool) -> bool:
    """Apply pending edits, oldest first, to ``doc`` (the fields as pulled, modified in place).

    Returns whether the record reads as deleted: a pending delete hides it unless a
    pending edit is stamped after it (that edit restores it); otherwise the pulled
    state stands, until the server has ordered this device's edits against it."""
    delete_ts: str | None = None
    top = ""
    for pending in pendings:
        for name, edit in pending.values.items():
            doc[name] = _decode.decode(edit.value)
            top = max(top, edit.ts)
        for name, edits in pending.sets.items():
            current = doc.get(name)
            elements = set(current) if isinstance(current, list) else set()
            for element, (present, ts) in edits.elements.items():
                if present:
                    elements.add(element)
                else:
                    elements.discard(element)
                top = max(top, ts)
            doc[name] = sorted(elements)
        if pending.delete is not None:
            delete_ts = max(delete_ts or "", pending.delete.ts)
    if delete_ts is not None:
        return order.deleted(delete_ts, [top])  # the server's rule: above every edit's stamp
    return deleted
