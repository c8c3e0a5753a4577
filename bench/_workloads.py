"""The records the push benchmarks send: a light check and a realistic one (issue 16).

Each workload makes one change (a creating change of a check record, as plain JSON
builtins) from a device and a running number; the same change can be turned into a
PouchDB document (``pouch_doc``) so both servers store the same records.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

__all__ = ["WORKLOADS", "Workload", "pouch_doc"]

#: stamps of the light workload: a fixed time in 2023 (the first bench's records)
T0 = 1_686_200_000_000
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_NOTES = [
    "Kiểm tra nhà trọ, đăng ký tạm trú đầy đủ",
    "Chủ nhà vắng mặt, đã hẹn kiểm tra lại vào tuần sau; người thuê xuất trình giấy tờ tùy thân",
    "Phòng cháy chữa cháy: bình chữa cháy hết hạn ở tầng 2, lối thoát hiểm bị chắn bởi xe máy",
    "Có 3 người chưa khai báo tạm trú; đã hướng dẫn chủ nhà trọ làm thủ tục trên ứng dụng VNeID",
    "Cơ sở karaoke hoạt động quá giờ quy định, đã lập biên bản nhắc nhở lần một",
    "Hộ kinh doanh đầy đủ giấy phép; camera an ninh hoạt động tốt, sổ theo dõi khách lưu trú cập nhật",
]


def uuid7() -> str:
    """A time-ordered id, as the SDK makes them (RFC 9562 UUIDv7)."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((rand >> 68) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def ulid(rng: random.Random) -> str:
    """A ULID with a random time part: keys that spread over the index, not append to it."""
    value = rng.getrandbits(128)
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in range(25, -1, -1))


def _sha(rng: random.Random) -> str:
    return hashlib.sha256(rng.getrandbits(256).to_bytes(32, "big")).hexdigest()


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    change: Callable[[str, int], dict[str, Any]]


def light(device: str, i: int) -> dict[str, Any]:
    ts = f"{T0 + i:013d}-0000-{device}"
    started = f"2023-06-{1 + i % 28:02d}T{8 + i % 10:02d}:15:00+07:00"
    fields = {
        "ward_id": "lam-son",
        "premises_id": f"prem-{i % 5000:05d}",
        "kind": ["residence", "fire_safety", "public_order", "business_conditions"][i % 4],
        "started_at": started,
        "result": "ok" if i % 3 else "violations_found",
        "residents_present": i % 9,
        "notes": "Kiểm tra nhà trọ, đăng ký tạm trú đầy đủ",
    }
    return {"collection": "checks", "id": uuid7(), "fields": {k: {"value": v, "ts": ts} for k, v in fields.items()}}


_rng = random.Random(16)
#: stamps of the realistic workload start at the time the bodies are made (devices
#: registered a moment later: within the server's skew window, so none is restamped)
_NOW = time.time_ns() // 1_000_000


def realistic(device: str, i: int) -> dict[str, Any]:
    """All 15 fields of a check; random SHA-256 or ULID keys; 0-2 photos, 1-3 officers."""
    rng = _rng
    ts = f"{_NOW + i // 50:013d}-{i % 50:04x}-{device}"
    day = 1 + i % 28
    hour = 7 + i % 12
    fields: dict[str, Any] = {
        "ward_id": "lam-son",
        "created_by": f"u-{device[1:]}",
        "created_at": f"2023-06-{day:02d}T{hour:02d}:10:00.000+07:00",
        "premises_id": _sha(rng) if i % 2 else ulid(rng),
        "kind": ["residence", "fire_safety", "public_order", "business_conditions"][i % 4],
        "started_at": f"2023-06-{day:02d}T{hour:02d}:15:00+07:00",
        "team_id": "lam-son-t1",
        "officer_id": f"u-{device[1:]}",
        "finished_at": f"2023-06-{day:02d}T{hour:02d}:{20 + i % 39:02d}:00+07:00",
        "result": ["ok", "violations_found", "ok", "not_reachable"][i % 4],
        "residents_present": rng.randrange(12),
        "unregistered_residents": rng.randrange(3),
        "notes": _NOTES[i % len(_NOTES)],
    }
    photos = ["sha256:" + _sha(rng) for _ in range(i % 3)]
    officers = [f"u-{device[1:]}", *(f"u-{rng.randrange(50):03d}" for _ in range(i % 3))]
    edits: dict[str, Any] = {k: {"value": v, "ts": ts} for k, v in fields.items()}
    if photos:
        edits["photos"] = {"add": photos, "ts": ts}
    edits["officers"] = {"add": sorted(set(officers)), "ts": ts}
    record_id = _sha(rng) if i % 2 == 0 else ulid(rng)
    return {"collection": "checks", "id": record_id, "fields": edits}


_PREMISES = [uuid7() for _ in range(2_000)]


def field(device: str, i: int) -> dict[str, Any]:
    """The realistic check with the ids devices make: the record's a UUIDv7 (``client_sdk``,
    the app), its premises one of a ward's 2,000. Photo ids stay random (content hashes)."""
    change = realistic(device, i)
    change["id"] = uuid7()
    change["fields"]["premises_id"]["value"] = _PREMISES[_rng.randrange(len(_PREMISES))]
    return change


WORKLOADS = {"light": Workload("light", light), "realistic": Workload("realistic", realistic), "field": Workload("field", field)}


def pouch_doc(change: dict[str, Any]) -> dict[str, Any]:
    """The same record as a PouchDB document: the values, the id as ``_id``."""
    doc: dict[str, Any] = {"_id": change["id"], "collection": change["collection"]}
    for name, edit in change["fields"].items():
        doc[name] = edit["value"] if "value" in edit else edit["add"]
    return doc
