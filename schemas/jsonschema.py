"""JSON Schema of the wire vocabulary: ``python -m schemas.jsonschema > schema.json``.

For clients written in other languages: every request and answer type, and the
fields of each collection with their types and constraints."""

from __future__ import annotations

import sys
from typing import Any

import msgspec

from .admin import (
    Device,
    DeviceScope,
    DeviceToken,
    EnrolCode,
    EnrolledDevice,
    Enrolment,
    EnrolmentRequest,
    NewDevice,
    NewTeam,
    NewUser,
    NewWard,
    Team,
    TeamUpdate,
    User,
    UserUpdate,
    Ward,
    WardUpdate,
)
from .blobs import BlobReceipt, MissingBlobs
from .collections import COLLECTIONS
from .supervision import ChecksReport, ConflictList, FleetHealth, RecordHistory, Resolution, SearchResults, SummaryReport, TargetsReport
from .wire import Conflict, Health, Problem, PulledRecord, PullResponse, PushRequest, PushResponse

__all__ = ["WIRE_TYPES", "document"]

WIRE_TYPES: tuple[Any, ...] = (
    PushRequest,
    PushResponse[PulledRecord],
    PullResponse[PulledRecord],
    Conflict,
    ConflictList,
    Resolution,
    SummaryReport,
    ChecksReport,
    TargetsReport,
    RecordHistory,
    SearchResults,
    FleetHealth,
    BlobReceipt,
    MissingBlobs,
    Problem,
    Health,
    NewWard,
    Ward,
    NewTeam,
    Team,
    NewUser,
    User,
    NewDevice,
    DeviceToken,
    Device,
    UserUpdate,
    WardUpdate,
    TeamUpdate,
    EnrolmentRequest,
    Enrolment,
    EnrolCode,
    EnrolledDevice,
    DeviceScope,
    *(spec.struct for spec in COLLECTIONS.values()),
)


def document() -> dict[str, Any]:
    refs, defs = msgspec.json.schema_components(WIRE_TYPES)
    policies = {
        name: {f.name: f.policy.value for f in spec.fields.values()} for name, spec in COLLECTIONS.items()
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "patrol-sync wire protocol v1",
        "$defs": defs,
        "x-collections": {name: ref for name, ref in zip(COLLECTIONS, refs[-len(COLLECTIONS) :], strict=True)},
        "x-merge-policies": policies,
    }


def main() -> None:
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(document()).decode(), indent=2) + "\n")


if __name__ == "__main__":
    main()
