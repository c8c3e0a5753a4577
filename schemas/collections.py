"""The synced collections of DOMAIN.md, each field with its merge policy.

A collection is declared once, as a msgspec Struct whose annotations carry the
field's type, its constraints and (through ``Annotated``) its merge policy.  The
rest is derived from that declaration: which fields a creating change must carry,
the per-field edit types of the push wire format (``schemas.wire``) and the table
the sync engine merges by (:data:`COLLECTIONS`).

Policies (PROTOCOL.md section 3): ``lww`` unless marked; :data:`FIRST` write-once;
:class:`Rank` ordered values; :data:`SET` an LWW-element set of strings.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import Struct

from ._constraints import (
    PERIOD_PATTERN,
    BlobId,
    Day,
    Element,
    Id,
    Latitude,
    Longitude,
    LongText,
    Name,
    NonNegInt,
    Phone,
    PositiveInt,
    ShortText,
    Timestamp,
)

__all__ = [
    "BLOB_FIELDS",
    "COLLECTIONS",
    "FIRST",
    "SET",
    "CheckKind",
    "CheckResult",
    "Check",
    "CollectionSpec",
    "FieldSpec",
    "FirePoint",
    "Patrol",
    "Policy",
    "Premises",
    "PremisesKind",
    "Rank",
    "Record",
    "SafetyGroup",
    "Target",
    "TargetMetric",
    "Tip",
    "TipChannel",
    "TipStatus",
    "Violation",
    "ViolationCategory",
    "ViolationStatus",
    "collection_of",
]


class Policy(enum.Enum):
    LWW = "lww"
    FIRST = "first"
    RANK = "rank"
    SET = "set"


@dataclasses.dataclass(frozen=True)
class _Marker:
    policy: Policy


FIRST = _Marker(Policy.FIRST)
SET = _Marker(Policy.SET)


@dataclasses.dataclass(frozen=True, init=False)
class Rank(_Marker):
    """Ordered values, lowest first; values grouped in a tuple rank equal."""

    order: Mapping[str, int]

    def __init__(self, *levels: str | tuple[str, ...]) -> None:
        order = {}
        for rank, level in enumerate(levels):
            for value in (level,) if isinstance(level, str) else level:
                order[value] = rank
        object.__setattr__(self, "policy", Policy.RANK)
        object.__setattr__(self, "order", order)


# -- enumerations -------------------------------------------------------------

PremisesKind = Literal["boarding_house", "lodging", "karaoke", "bar", "apartment_block", "shop", "other"]
CheckKind = Literal["residence", "fire_safety", "public_order", "business_conditions"]
CheckResult = Literal["ok", "violations_found", "not_reachable"]
ViolationCategory = Literal[
    "residence_registration", "fire_safety", "public_order", "traffic", "drugs", "business_license", "other"
]
ViolationStatus = Literal["open", "notified", "fined", "resolved", "dismissed"]
TipChannel = Literal["zalo", "phone", "in_person", "hotline", "other"]
TipStatus = Literal["new", "verifying", "actioned", "closed"]
SafetyGroupKind = Literal["fire_safety", "security"]
TargetMetric = Literal[
    "checks",
    "premises_checked",
    "violations_recorded",
    "fines_vnd",
    "tips_received",
    "patrols",
    "patrol_hours",
    "fire_safety_groups",
    "public_fire_points",
]
Period = Annotated[str, msgspec.Meta(pattern=PERIOD_PATTERN, description="2023 or 2023-06")]
RoutePoint = tuple[Latitude, Longitude, Timestamp]

_VIOLATION_RANK = Rank("open", "notified", "fined", ("resolved", "dismissed"))
_TIP_RANK = Rank("new", "verifying", "actioned", "closed")

# -- collections --------------------------------------------------------------


class Record(Struct, kw_only=True):
    """Fields every record has. ``created_by`` and ``created_at`` are set by the
    SDK; a creating change that leaves them out gets the caller and the stamp's
    time from the server."""

    collection: ClassVar[str]
    id: Id
    ward_id: Annotated[Id, FIRST]
    created_by: Annotated[Id, FIRST] | None = None
    created_at: Annotated[Timestamp, FIRST] | None = None


class Premises(Record, kw_only=True):
    collection: ClassVar[str] = "premises"
    name: Name
    kind: PremisesKind
    address: ShortText | None = None
    owner_name: ShortText | None = None
    owner_phone: Phone | None = None
    rooms: NonNegInt | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    tags: Annotated[list[Element], SET] = []
    active: bool | None = None


class Check(Record, kw_only=True):
    collection: ClassVar[str] = "checks"
    premises_id: Annotated[Id, FIRST]
    kind: CheckKind
    started_at: Timestamp
    team_id: Id | None = None
    officer_id: Id | None = None
    finished_at: Timestamp | None = None
    result: CheckResult | None = None
    residents_present: NonNegInt | None = None
    unregistered_residents: NonNegInt | None = None
    notes: LongText | None = None
    photos: Annotated[list[BlobId], SET] = []
    officers: Annotated[list[Element], SET] = []


class Violation(Record, kw_only=True):
    collection: ClassVar[str] = "violations"
    check_id: Annotated[Id, FIRST]
    premises_id: Annotated[Id, FIRST]
    category: ViolationCategory
    status: Annotated[ViolationStatus, _VIOLATION_RANK]
    description: LongText | None = None
    fine_vnd: NonNegInt | None = None
    record_no: ShortText | None = None
    photos: Annotated[list[BlobId], SET] = []


class Patrol(Record, kw_only=True):
    collection: ClassVar[str] = "patrols"
    team_id: Id
    started_at: Timestamp
    ended_at: Timestamp | None = None
    route: Annotated[list[RoutePoint], msgspec.Meta(max_length=20_000)] | None = None
    officers: Annotated[list[Element], SET] = []
    notes: LongText | None = None


class Tip(Record, kw_only=True):
    collection: ClassVar[str] = "tips"
    received_at: Timestamp
    channel: TipChannel
    summary: LongText
    status: Annotated[TipStatus, _TIP_RANK]
    premises_id: Id | None = None


class SafetyGroup(Record, kw_only=True):
    collection: ClassVar[str] = "safety_groups"
    kind: SafetyGroupKind
    name: Name
    leader_name: ShortText | None = None
    households: NonNegInt | None = None
    established_on: Day | None = None


class FirePoint(Record, kw_only=True):
    collection: ClassVar[str] = "fire_points"
    name: Name
    address: ShortText | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    equipment: Annotated[list[Element], SET] = []
    established_on: Day | None = None


class Target(Record, kw_only=True):
    collection: ClassVar[str] = "targets"
    metric: TargetMetric
    period: Period
    target: PositiveInt


# -- the derived table ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    name: str
    type: Any  # the annotated value type, policy marker removed
    policy: Policy
    required: bool
    rank: Mapping[str, int] | None = None
    #: values that decode to something other than JSON builtins (dates, times)
    needs_builtins: bool = False


@dataclasses.dataclass(frozen=True)
class CollectionSpec:
    name: str
    struct: type[Record]
    fields: Mapping[str, FieldSpec]

    @functools.cached_property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields.values() if f.required)


def _strip_marker(annotation: Any) -> tuple[Any, _Marker | None]:
    """Split ``Annotated[T, ..., FIRST]`` (possibly inside ``X | None``) into T and the marker."""
    marker = None
    if typing.get_origin(annotation) is Annotated:
        base, *extras = typing.get_args(annotation)
        markers = [e for e in extras if isinstance(e, _Marker)]
        rest = [e for e in extras if not isinstance(e, _Marker)]
        marker = markers[0] if markers else None
        annotation = Annotated[(base, *rest)] if rest else base
    elif typing.get_origin(annotation) in (typing.Union, types.UnionType):
        parts = [_strip_marker(a) for a in typing.get_args(annotation)]
        marker = next((m for _, m in parts if m is not None), None)
        annotation = typing.Union[tuple(p for p, _ in parts)]
    return annotation, marker


def _needs_builtins(annotation: Any) -> bool:
    """Whether decoded values hold dates or times (encoded back to RFC 3339 text)."""
    if isinstance(annotation, type) and issubclass(annotation, dt.date):
        return True
    return any(_needs_builtins(arg) for arg in typing.get_args(annotation) if not isinstance(arg, (str, msgspec.Meta)))


def _without_none(annotation: Any) -> Any:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Union and type(None) in args:
        rest = tuple(a for a in args if a is not type(None))
        return rest[0] if len(rest) == 1 else typing.Union[rest]
    return annotation


def _spec(struct: type[Record]) -> CollectionSpec:
    hints = typing.get_type_hints(struct, include_extras=True)
    info = msgspec.structs.fields(struct)
    fields = {}
    for f in info:
        if f.name == "id":
            continue
        annotation, marker = _strip_marker(hints[f.name])
        policy = marker.policy if marker else Policy.LWW
        if policy is not Policy.LWW:  # write-once, ranked and set values are never null
            annotation = _without_none(annotation)
        fields[f.name] = FieldSpec(
            name=f.name,
            type=annotation,
            policy=policy,
            required=f.required,
            rank=marker.order if isinstance(marker, Rank) else None,
            needs_builtins=_needs_builtins(annotation),
        )
    return CollectionSpec(name=struct.collection, struct=struct, fields=fields)


#: Every synced collection, by wire name.
COLLECTIONS: Mapping[str, CollectionSpec] = {
    spec.name: spec
    for spec in (_spec(s) for s in (Premises, Check, Violation, Patrol, Tip, SafetyGroup, FirePoint, Target))
}


#: The ``set`` fields whose elements name blobs (PROTOCOL.md section 6b), by collection:
#: the server keeps which records name which blob from them (read scope, missing list).
BLOB_FIELDS: Mapping[str, tuple[str, ...]] = {
    name: names
    for name, spec in COLLECTIONS.items()
    if (names := tuple(f.name for f in spec.fields.values() if f.policy is Policy.SET and typing.get_args(f.type) == (BlobId,)))
}


def collection_of(struct: type[Record]) -> CollectionSpec:
    return COLLECTIONS[struct.collection]

