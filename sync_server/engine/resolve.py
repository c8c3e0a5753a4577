"""A supervisor's decision on a conflict, as the change that carries it out.

The change is an ordinary typed change of the record's collection (the Structs of
``schemas.wire``), stamped by the server and based on the record as it stands, so the
writer merges it like any other push and the merge order (``schemas.order``) decides
it as it decides everything. The decided value is converted to the field's own type
here: a value that does not fit is refused before anything is queued.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any

import msgspec

from schemas import CHANGE_TYPES, COLLECTIONS, Change, Conflict, Delete, Resolution, SetEdit, ValueEdit, order
from schemas.collections import FieldSpec, Policy

from ..errors import Unprocessable
from .state import RecordState

__all__ = ["resolution_change"]


def resolution_change(conflict: Conflict, decision: Resolution, state: RecordState, stamp: str) -> Change:
    """The change that carries out ``decision``, stamped ``stamp``. Raises Unprocessable
    when the decision cannot be carried out (a value that does not fit, or that the merge
    would not let win)."""
    if conflict.field is None:
        return _delete_decision(conflict, decision, state, stamp)
    field = COLLECTIONS[conflict.collection].fields[conflict.field]
    if field.policy is Policy.SET:
        return _set_decision(conflict, decision, state, stamp)
    current = state.fields.get(conflict.field)
    base = state.stamps.get(conflict.field)
    if decision.choice == "kept":
        value = current
    elif decision.choice == "other":
        value = _other_side(conflict)
    else:
        value = decision.value
    if base is not None and value != current and not order.wins(field.policy, field.rank, stamp, value, base, current):
        if field.policy is Policy.FIRST:  # the merge would keep the value it holds: say so instead
            raise Unprocessable(f"{conflict.field} is write-once: the earliest value stays")
        if str(value) in (field.rank or {}):  # a value out of the ranking is refused as not fitting below
            raise Unprocessable(f"{conflict.field} only moves forward ({current} stands; {value} ranks lower)")
    return _change(conflict, {conflict.field: _value_edit(conflict, field, value, stamp, base)})


def _delete_decision(conflict: Conflict, decision: Resolution, state: RecordState, stamp: str) -> Change:
    """Keep, or flip, the record's deleted state."""
    if decision.choice == "value":
        raise Unprocessable("a delete conflict is resolved by keeping or undoing the delete, not by a value")
    delete = state.deleted if decision.choice == "kept" else not state.deleted
    if delete:
        return _change(conflict, {}, Delete(ts=stamp, base=max(state.top_stamp, state.tomb or "")))
    # stamped after the tombstone, the current values bring the record back
    spec = COLLECTIONS[conflict.collection]
    edits = {
        name: _value_edit(conflict, spec.fields[name], value, stamp, state.stamps.get(name))
        for name, value in state.fields.items()
        if spec.fields[name].policy in (Policy.LWW, Policy.RANK)
    }
    return _change(conflict, edits)


def _set_decision(conflict: Conflict, decision: Resolution, state: RecordState, stamp: str) -> Change:
    """One element added or removed: as the other side had it, as it stands now, or as given."""
    assert conflict.field is not None
    current = state.fields.get(conflict.field)
    add: list[Any]
    remove: list[Any]
    if decision.choice == "value":
        given = decision.value
        if not isinstance(given, dict) or not set(given) <= {"add", "remove"}:
            raise Unprocessable('a set field takes a value like {"add": [...], "remove": [...]}')
        add, remove = given.get("add", []), given.get("remove", [])
    elif decision.choice == "other":
        other = _other_side(conflict)
        add, remove = other.get("add", []), other.get("remove", [])
    else:  # kept: the element as it stands now, stamped again
        element = next(iter(next(iter(conflict.server.value.values()))))
        add, remove = ([element], []) if element in (current or []) else ([], [element])
    field = COLLECTIONS[conflict.collection].fields[conflict.field]
    try:  # the elements converted to the field's element type (a photo: a blob id)
        added, removed = msgspec.convert(add, field.type), msgspec.convert(remove, field.type)
    except msgspec.ValidationError as exc:
        raise Unprocessable(f"the value does not fit {conflict.collection}.{conflict.field}: {exc}") from None
    edit = _edit_type(conflict.collection, conflict.field)(add=added, remove=removed, ts=stamp, base=state.stamps.get(conflict.field))
    assert isinstance(edit, SetEdit)
    return _change(conflict, {conflict.field: edit})


def _other_side(conflict: Conflict) -> Any:
    return (conflict.client if conflict.winner == "server" else conflict.server).value


def _value_edit(conflict: Conflict, field: FieldSpec, value: Any, stamp: str, base: str | None) -> ValueEdit:
    """The field's own edit type, its value converted to the field's type (refused if it does not fit)."""
    try:
        typed = msgspec.convert(value, field.type)
    except msgspec.ValidationError as exc:
        raise Unprocessable(f"the value does not fit {conflict.collection}.{field.name}: {exc}") from None
    edit = _edit_type(conflict.collection, field.name)(value=typed, ts=stamp, base=base)
    assert isinstance(edit, ValueEdit)
    return edit


def _edit_type(collection: str, name: str) -> type[Any]:
    """The edit Struct ``schemas.wire`` derived for this field (``Union[Edit, UnsetType]`` in the change)."""
    edits = msgspec.structs.fields(_edits_type(collection))
    annotation = next(f.type for f in edits if f.name == name)
    edit_type: type[Any] = next(t for t in typing.get_args(annotation) if t is not msgspec.UnsetType)
    return edit_type


def _edits_type(collection: str) -> type[msgspec.Struct]:
    fields = next(f for f in msgspec.structs.fields(CHANGE_TYPES[collection]) if f.name == "fields")
    edits: type[msgspec.Struct] = fields.type
    return edits


def _change(conflict: Conflict, edits: Mapping[str, ValueEdit | SetEdit], delete: Delete | None = None) -> Change:
    fields = _edits_type(conflict.collection)(**edits)
    return CHANGE_TYPES[conflict.collection](id=conflict.record_id, fields=fields, delete=delete)  # type: ignore[call-arg]
