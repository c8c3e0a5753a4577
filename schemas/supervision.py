"""What supervisors read: reports, targets, conflict review, history, search, fleet health
(PROTOCOL.md sections 6, 6c and 6d)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from msgspec import Struct, field

from ._constraints import Id
from .wire import Conflict

__all__ = [
    "CheckRow",
    "ChecksReport",
    "ConflictList",
    "DeviceHealth",
    "FieldChange",
    "FleetHealth",
    "GroupBy",
    "HistoryEntry",
    "PremisesHit",
    "RecordHistory",
    "Resolution",
    "SearchResults",
    "SummaryReport",
    "TargetProgress",
    "TargetsReport",
]

GroupBy = Literal["ward", "team", "officer", "premises_kind", "check_kind", "day", "week", "month"]


class SummaryReport(Struct, kw_only=True, rename={"from_": "from"}):
    """Counts over live records of the caller's wards (or ``ward``) in a period.

    Keys of the ``*_by_*`` maps are the enum values that occur."""

    wards: list[str]
    from_: dt.date | None = None
    to: dt.date | None = None
    checks: int = 0
    premises_checked: int = 0
    premises_checked_by_kind: dict[str, int] = {}
    violations_recorded: int = 0
    violations_by_category: dict[str, int] = {}
    violations_by_status: dict[str, int] = {}
    fines_vnd: int = 0
    tips_received: int = 0
    tips_by_status: dict[str, int] = {}
    patrols: int = 0
    patrol_hours: float = 0.0
    fire_safety_groups: int = 0
    public_fire_points: int = 0


class CheckRow(Struct, kw_only=True):
    """One group of checks: how many, at how many distinct premises, and the
    violations recorded at those checks. ``key_name`` is what people read: the
    ward's, team's or officer's name (the id itself when none is known), and the
    key itself for the other groupings (kinds, days, weeks, months)."""

    key: str
    key_name: str = ""
    checks: int
    premises: int
    violations: int


class ChecksReport(Struct, kw_only=True, rename={"from_": "from"}):
    """Checks grouped by ``group_by`` over the caller's wards (or ``ward``) in a period."""

    group_by: GroupBy
    wards: list[str]
    from_: dt.date | None = None
    to: dt.date | None = None
    rows: list[CheckRow] = []


class TargetProgress(Struct, kw_only=True):
    """One target and what was achieved against it."""

    id: str
    ward_id: str
    metric: str
    period: str
    target: int
    achieved: float
    #: achieved / target x 100, rounded to one decimal
    percent: float


class TargetsReport(Struct, kw_only=True):
    """The targets of the caller's wards (or ``ward``) for a period."""

    wards: list[str]
    period: str | None = None
    targets: list[TargetProgress] = []


class ConflictList(Struct, kw_only=True):
    """One page of conflicts, oldest first."""

    conflicts: list[Conflict]
    #: pass as ``after`` for the next page; None when this is the last
    next: str | None = None


class Resolution(Struct, kw_only=True, forbid_unknown_fields=True):
    """A supervisor's decision: keep the stored value, take the other side's, or set one."""

    choice: Literal["kept", "other", "value"]
    value: Any = None


class FieldChange(Struct):
    """A field's value before and after one edit."""

    old: Any
    new: Any


class HistoryEntry(Struct, kw_only=True):
    """One applied change set's effect on a record: who, when, from which device, which fields."""

    seq: int
    at: str
    user_id: str
    device_id: str
    changeset_id: str
    changes: dict[str, FieldChange] = {}
    #: the record's deleted flag, when this edit changed it
    deleted: FieldChange | None = None


class RecordHistory(Struct, kw_only=True):
    """Every applied edit of one record, oldest first."""

    collection: str
    id: str
    ward_id: str
    edits: list[HistoryEntry] = []


class PremisesHit(Struct, kw_only=True):
    """A premises that matched a search."""

    id: str
    ward_id: str
    name: str
    kind: str
    address: str | None = None
    owner_name: str | None = None
    #: higher is better; comparable within one answer only
    score: float = 0.0


class SearchResults(Struct, kw_only=True):
    """Premises matching ``query``, best first."""

    query: str
    results: list[PremisesHit] = []


class DeviceHealth(Struct, kw_only=True):
    """One device as it last pushed and pulled (times RFC 3339, UTC)."""

    device_id: Id
    user_id: str
    wards: list[str] = []
    revoked: bool = False
    last_push_at: str | None = None
    last_pull_at: str | None = None
    client: str | None = None
    client_version: str | None = None
    schema: int | None = None
    #: changes waiting on the device, as it last said
    pending: int | None = None
    #: device clock minus server clock, from the stamps it last sent (ms)
    clock_offset_ms: int | None = None
    rejected: int = 0


class FleetHealth(Struct, kw_only=True):
    """Every device of the caller's wards."""

    devices: list[DeviceHealth] = field(default_factory=list)
