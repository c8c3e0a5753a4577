"""Wire types of protocol v1: push, pull, results, conflicts and problems.

One vocabulary for both ends.  The server decodes requests with these types (they
forbid unknown fields); the SDK decodes answers with them (they accept new fields,
so an older handheld keeps syncing with a newer server).

Answers that carry records are generic in the record type: the SDK reads
``PullResponse[PulledRecord]``, while the server writes ``PullResponse[msgspec.Raw]``
and splices each stored record into the answer without decoding it.

The push format is derived from ``schemas.collections``: each collection gets a
change type tagged by ``collection``, whose ``fields`` hold one typed edit per field
(:class:`SetEdit` for ``set`` fields, a subclass of it where the elements have a type of
their own, such as the blob ids of ``photos``; a :class:`ValueEdit` subclass for the rest).
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, Generic, Literal, TypeVar, Union

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from ._constraints import ChangesetId, DeviceId, Element, Id, Stamp
from .collections import COLLECTIONS, CollectionSpec, Policy

__all__ = [
    "CHANGE_TYPES",
    "AnyChange",
    "Change",
    "ChangeResult",
    "CompactRecord",
    "Conflict",
    "ConflictKind",
    "ConflictSide",
    "Delete",
    "ErrorItem",
    "FieldEdit",
    "Health",
    "Problem",
    "PulledRecord",
    "PullResponse",
    "PushEnvelope",
    "PushRequest",
    "PushResponse",
    "SetEdit",
    "ValueEdit",
    "Warning",
]

R = TypeVar("R")

ConflictKind = Literal["concurrent_edit", "immutable", "rank", "delete"]


class FieldEdit(Struct, kw_only=True, forbid_unknown_fields=True):
    """One field's edit: its new stamp, and the stamp the device last saw (``base``)."""

    ts: Stamp
    base: Stamp | None = None


class ValueEdit(FieldEdit, kw_only=True, forbid_unknown_fields=True):
    """Sets a field's value (policies ``lww``, ``first`` and ``rank``)."""

    value: Any


class SetEdit(FieldEdit, kw_only=True, forbid_unknown_fields=True):
    """Adds and removes elements of a ``set`` field."""

    add: Annotated[list[Element], Meta(max_length=1000)] = []
    remove: Annotated[list[Element], Meta(max_length=1000)] = []


class Delete(Struct, kw_only=True, forbid_unknown_fields=True):
    """Stamps the record's tombstone; ``base`` is the highest stamp the device saw."""

    ts: Stamp
    base: Stamp | None = None


class Change(Struct, kw_only=True, forbid_unknown_fields=True, tag_field="collection"):
    """A change to one record; subclasses per collection add typed ``fields``."""

    id: Id
    delete: Delete | None = None

    @property
    def collection(self) -> str:
        return self.__struct_config__.tag  # type: ignore[return-value]

    def edits(self) -> list[tuple[str, FieldEdit]]:
        """The field edits this change carries, in declaration order."""
        fields: Struct = self.fields  # type: ignore[attr-defined]  # each collection's subclass declares it
        return [(n, e) for n, e in zip(fields.__struct_fields__, msgspec.structs.astuple(fields), strict=True) if e is not UNSET]


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _set_edit_type(prefix: str, name: str, annotation: Any) -> type[Struct]:
    """:class:`SetEdit`, or a subclass whose ``add`` and ``remove`` hold the field's own
    element type (``photos``: blob ids), so that a malformed element rejects the change."""
    (element,) = typing.get_args(annotation)
    if element == Element:
        return SetEdit
    elements = Annotated[list[element], Meta(max_length=1000)]  # type: ignore[valid-type]
    return msgspec.defstruct(
        f"{prefix}{_pascal(name)}Edit",
        [("add", elements, msgspec.field(default_factory=list)), ("remove", elements, msgspec.field(default_factory=list))],
        bases=(SetEdit,),
        kw_only=True,
        forbid_unknown_fields=True,
        module=__name__,
    )


def _change_type(spec: CollectionSpec) -> type[Change]:
    prefix = _pascal(spec.name)
    edit_fields = []
    for f in spec.fields.values():
        edit: type[Struct]
        if f.policy is Policy.SET:
            edit = _set_edit_type(prefix, f.name, f.type)
        else:
            edit = msgspec.defstruct(
                f"{prefix}{_pascal(f.name)}Edit",
                [("value", f.type)],
                bases=(ValueEdit,),
                kw_only=True,
                forbid_unknown_fields=True,
                module=__name__,
            )
        edit_fields.append((f.name, Union[edit, UnsetType], UNSET))
    edits = msgspec.defstruct(
        f"{prefix}Edits", edit_fields, forbid_unknown_fields=True, omit_defaults=True, module=__name__
    )
    change: type[Change] = msgspec.defstruct(  # type: ignore[assignment]
        f"{prefix}Change",
        [("fields", edits, msgspec.field(default_factory=edits))],
        bases=(Change,),
        tag=spec.name,
        kw_only=True,
        forbid_unknown_fields=True,
        module=__name__,
    )
    return change


#: The change type of each collection, by wire name.
CHANGE_TYPES: dict[str, type[Change]] = {name: _change_type(spec) for name, spec in COLLECTIONS.items()}
AnyChange = Union[tuple(CHANGE_TYPES.values())]  # type: ignore[valid-type]


class PushRequest(Struct, forbid_unknown_fields=True):
    """One change set of one device (PROTOCOL.md section 4): retried with the same ``changeset_id``, applied once."""

    device_id: DeviceId
    changeset_id: ChangesetId
    changes: list[AnyChange]  # type: ignore[valid-type]


class PushEnvelope(Struct, forbid_unknown_fields=True):
    """A push decoded leniently: each change is checked on its own (no poison pills)."""

    device_id: DeviceId
    changeset_id: ChangesetId
    changes: list[msgspec.Raw]


class PulledRecord(Struct):
    """A record as it now stands; ``fields`` hold plain JSON values, sets as sorted lists."""

    collection: str
    id: str
    ward_id: str
    seq: int
    deleted: bool
    fields: dict[str, Any]
    stamps: dict[str, str]


class CompactRecord(Struct, omit_defaults=True):
    """A record with compact stamps (``schemas.compact``): ``stamp`` for most fields,
    ``stamps`` for the others; without ``stamp``, ``stamps`` is the full map."""

    collection: str
    id: str
    ward_id: str
    seq: int
    deleted: bool
    fields: dict[str, Any]
    stamps: dict[str, str]
    stamp: str | None = None


class ErrorItem(Struct, omit_defaults=True):
    """One error: of a rejected change, or inside a problem document."""

    code: str
    detail: str
    field: str | None = None


class ChangeResult(Struct, Generic[R], omit_defaults=True):
    """What became of one change: ``applied`` with the record's ``seq`` (and the record, once per record), or ``rejected`` with its errors."""

    collection: str | None
    id: str | None
    status: Literal["applied", "rejected"]
    seq: int | None = None
    record: R | None = None
    errors: list[ErrorItem] = []


class ConflictSide(Struct):
    """One side of a conflict: a value (or, for ``delete`` conflicts, the edited
    fields) and its stamp; ``deleted`` marks the tombstone side."""

    value: Any
    ts: str
    deleted: bool = False


class Conflict(Struct, kw_only=True):
    """A real conflict the merge logged: both sides, which won, and whether a supervisor has resolved it."""

    id: str
    collection: str
    record_id: str
    field: str | None
    kind: ConflictKind
    winner: Literal["server", "client"]
    server: ConflictSide
    client: ConflictSide
    ward_id: str
    device_id: str
    user_id: str
    changeset_id: str
    created_at: str
    status: Literal["open", "resolved"] = "open"
    resolved_by: str | None = None
    resolved_at: str | None = None
    resolution: Any = None


class Warning(Struct):  # noqa: A001 - the protocol's word
    """Something the server did that the device should know (``clock_skew``: its stamps were replaced)."""

    code: str
    detail: str


class PushResponse(Struct, Generic[R]):
    """The answer to a push: one result per change, in order; the conflicts it logged; ``cursor`` to pull from."""

    changeset_id: str
    cursor: str
    results: list[ChangeResult[R]]
    conflicts: list[Conflict] = []
    warnings: list[Warning] = []


class PullResponse(Struct, Generic[R]):
    """One page of records; pass ``cursor`` back until ``more`` is false."""

    records: list[R]
    cursor: str
    more: bool


class Problem(Struct):
    """An RFC 9457 problem document (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ErrorItem] = []


class Health(Struct):
    """``GET /healthz``: the store is reachable; which server and protocol answer."""

    status: str
    version: str = ""  # the server's package version
    protocol: int = 1
