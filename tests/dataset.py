"""A random but reproducible set of records in two wards, pushed through the API,
and the figures a person would count from it (DOMAIN.md, "Reports"), computed here
from the records themselves, never from the server's answers."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import random
from typing import Any
from zoneinfo import ZoneInfo

from .helpers import Api, World

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
PREMISES_KINDS = ["boarding_house", "lodging", "karaoke", "bar", "apartment_block", "shop", "other"]
CHECK_KINDS = ["residence", "fire_safety", "public_order", "business_conditions"]
CATEGORIES = ["residence_registration", "fire_safety", "public_order", "traffic", "drugs", "business_license", "other"]
STATUSES = ["open", "notified", "fined", "resolved", "dismissed"]
TIP_STATUSES = ["new", "verifying", "actioned", "closed"]
STREETS = ["Lê Lợi", "Trần Phú", "Đường Bà Triệu", "Nguyễn Trãi", "Phan Chu Trinh", "Hàm Nghi"]


@dataclasses.dataclass
class Rec:
    collection: str
    id: str
    ward: str
    fields: dict[str, Any]
    deleted: bool = False


@dataclasses.dataclass
class Dataset:
    records: list[Rec]

    def live(self, collection: str, wards: set[str]) -> list[Rec]:
        return [r for r in self.records if r.collection == collection and r.ward in wards and not r.deleted]

    def by_id(self) -> dict[str, Rec]:
        return {r.id: r for r in self.records}


def local_day(value: str) -> dt.date:
    return dt.datetime.fromisoformat(value).astimezone(ZONE).date()


def in_period(day: dt.date | None, start: dt.date | None, end: dt.date | None, undated_counts: bool = False) -> bool:
    if day is None:
        return undated_counts or (start is None and end is None)
    return (start is None or day >= start) and (end is None or day <= end)


def _stamp(api: Api, n: int) -> str:
    return f"{1_686_200_000_000 + n:013d}-0000-{api.device_id}"


async def build(world: World, seed: int = 5) -> Dataset:
    """About 250 records over lam-son (officers a and b) and phu-son (officer c); some deleted."""
    rng = random.Random(seed)
    counter = [0]

    def ts(api: Api) -> str:
        counter[0] += 1
        return _stamp(api, counter[0])

    records: list[Rec] = []
    writers = {"lam-son": [world.officer_a, world.officer_b], "phu-son": [world.officer_c]}
    users = {world.officer_a.device_id: "u-ngoc", world.officer_b.device_id: "u-hung", world.officer_c.device_id: "u-lan"}
    teams = {"lam-son": ["ls-t1", "ls-t2"], "phu-son": ["ps-t1"]}
    batches: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)

    def add(api: Api, collection: str, ward: str, fields: dict[str, Any], record_id: str) -> Rec:
        stamp = ts(api)
        fields = {"ward_id": ward, "created_by": users[api.device_id], **fields}
        batches[api.device_id].append(
            {"collection": collection, "id": record_id, "fields": {k: {"value": v, "ts": stamp} for k, v in fields.items()}}
        )
        rec = Rec(collection, record_id, ward, fields)
        records.append(rec)
        return rec

    def when(month: int) -> str:
        day, hour = rng.randint(1, 28), rng.choice([0, 6, 9, 14, 23])
        offset = rng.choice(["+07:00", "Z", "+07:00"])
        return f"2023-{month:02d}-{day:02d}T{hour:02d}:{rng.randint(0, 59):02d}:00{offset}"

    for ward, apis in writers.items():
        premises = []
        for i in range(30):
            api = rng.choice(apis)
            name = f"{rng.choice(['Nhà trọ', 'Nhà nghỉ', 'Karaoke', 'Quán'])} {rng.choice(STREETS)} {i}"
            premises.append(
                add(api, "premises", ward, {"name": name, "kind": rng.choice(PREMISES_KINDS), "address": f"{i} {rng.choice(STREETS)}", "created_at": when(5)}, f"{ward}-prem-{i}")
            )
        checks = []
        for i in range(60):
            api = rng.choice(apis)
            fields = {
                "premises_id": rng.choice(premises).id if rng.random() > 0.05 else f"{ward}-ghost-{i}",
                "kind": rng.choice(CHECK_KINDS),
                "started_at": when(rng.choice([5, 6, 6, 7])),
                "team_id": rng.choice(teams[ward]),
                "created_at": when(6),
            }
            if rng.random() < 0.5:
                fields["officer_id"] = rng.choice(["u-ngoc", "u-hung", "u-lan"])
            checks.append(add(api, "checks", ward, fields, f"{ward}-chk-{i}"))
        for i in range(40):
            api = rng.choice(apis)
            check = rng.choice(checks)
            fields = {
                "check_id": check.id,
                "premises_id": check.fields["premises_id"],
                "category": rng.choice(CATEGORIES),
                "status": rng.choice(STATUSES),
                "created_at": when(rng.choice([5, 6, 7])),
            }
            if rng.random() < 0.7:
                fields["fine_vnd"] = rng.choice([500_000, 1_500_000, 3_000_000, 7_500_000])
            add(api, "violations", ward, fields, f"{ward}-vio-{i}")
        for i in range(15):
            api = rng.choice(apis)
            add(api, "tips", ward, {"received_at": when(rng.choice([5, 6])), "channel": "zalo", "summary": f"Tin báo {i}", "status": rng.choice(TIP_STATUSES)}, f"{ward}-tip-{i}")
        for i in range(10):
            api = rng.choice(apis)
            start = dt.datetime(2023, 6, rng.randint(1, 28), rng.randint(18, 22), tzinfo=ZONE)
            fields = {"team_id": rng.choice(teams[ward]), "started_at": start.isoformat()}
            if rng.random() < 0.8:
                fields["ended_at"] = (start + dt.timedelta(minutes=rng.randint(30, 300))).isoformat()
            add(api, "patrols", ward, fields, f"{ward}-pat-{i}")
        for i in range(12):
            api = rng.choice(apis)
            fields = {"kind": rng.choice(["fire_safety", "fire_safety", "security"]), "name": f"Tổ liên gia {i}"}
            if rng.random() < 0.7:
                fields["established_on"] = f"2023-{rng.choice([5, 6]):02d}-{rng.randint(1, 28):02d}"
            add(api, "safety_groups", ward, fields, f"{ward}-grp-{i}")
        for i in range(6):
            api = rng.choice(apis)
            fields = {"name": f"Điểm chữa cháy {i}"}
            if rng.random() < 0.6:
                fields["established_on"] = f"2023-06-{rng.randint(1, 28):02d}"
            add(api, "fire_points", ward, fields, f"{ward}-fp-{i}")

    for device, changes in batches.items():
        api = next(a for a in world.all() if a.device_id == device)
        answer = await api.push_ok(changes)
        assert all(r["status"] == "applied" for r in answer["results"]), answer
    # some deletes: tombstones never count
    for rec in rng.sample(records, 25):
        api = next(a for a in writers[rec.ward])
        answer = await api.push_ok([{"collection": rec.collection, "id": rec.id, "delete": {"ts": ts(api)}}])
        assert answer["results"][0]["record"]["deleted"] is True
        rec.deleted = True
    return Dataset(records)


def expected_summary(data: Dataset, wards: set[str], start: dt.date | None = None, end: dt.date | None = None) -> dict[str, Any]:
    checks = [c for c in data.live("checks", wards) if in_period(local_day(c.fields["started_at"]), start, end)]
    premises = {p.id: p for p in data.live("premises", wards)}
    checked = {c.fields["premises_id"] for c in checks}
    by_kind: collections.Counter[str] = collections.Counter()
    for premises_id in checked:
        by_kind[premises[premises_id].fields["kind"] if premises_id in premises else "unknown"] += 1
    violations = [v for v in data.live("violations", wards) if in_period(local_day(v.fields["created_at"]), start, end)]
    tips = [t for t in data.live("tips", wards) if in_period(local_day(t.fields["received_at"]), start, end)]
    patrols = [p for p in data.live("patrols", wards) if in_period(local_day(p.fields["started_at"]), start, end)]
    hours = sum(
        (dt.datetime.fromisoformat(p.fields["ended_at"]) - dt.datetime.fromisoformat(p.fields["started_at"])).total_seconds() / 3600
        for p in patrols
        if "ended_at" in p.fields
    )

    def dated(r: Rec) -> bool:
        day = r.fields.get("established_on")
        return in_period(dt.date.fromisoformat(day) if day else None, start, end, undated_counts=True)

    return {
        "checks": len(checks),
        "premises_checked": len(checked),
        "premises_checked_by_kind": dict(by_kind),
        "violations_recorded": len(violations),
        "violations_by_category": dict(collections.Counter(v.fields["category"] for v in violations)),
        "violations_by_status": dict(collections.Counter(v.fields["status"] for v in violations)),
        "fines_vnd": sum(v.fields.get("fine_vnd", 0) for v in violations),
        "tips_received": len(tips),
        "tips_by_status": dict(collections.Counter(t.fields["status"] for t in tips)),
        "patrols": len(patrols),
        "patrol_hours": round(hours, 2),
        "fire_safety_groups": sum(1 for g in data.live("safety_groups", wards) if g.fields["kind"] == "fire_safety" and dated(g)),
        "public_fire_points": sum(1 for f in data.live("fire_points", wards) if dated(f)),
    }


#: display names of the world's wards, teams and officers (``helpers.make_world``): a
#: checks report grouped by them names each key (``key_name``)
_NAMES: dict[str, dict[str, str]] = {
    "ward": {"lam-son": "Phường Lam Sơn", "phu-son": "Phường Phú Sơn"},
    "team": {"ls-t1": "Tổ tuần tra 1", "ls-t2": "Tổ tuần tra 2", "ps-t1": "Tổ tuần tra Phú Sơn"},
    "officer": {"u-ngoc": "Lê Văn Ngọc", "u-hung": "Trần Văn Hùng", "u-lan": "Nguyễn Thị Lan", "u-minh": "Phạm Minh"},
}


def expected_check_rows(data: Dataset, wards: set[str], group_by: str, start: dt.date | None = None, end: dt.date | None = None) -> list[dict[str, Any]]:
    premises = {p.id: p for p in data.live("premises", wards)}
    checks = [c for c in data.live("checks", wards) if in_period(local_day(c.fields["started_at"]), start, end)]
    violations_at: collections.Counter[str] = collections.Counter(v.fields["check_id"] for v in data.live("violations", wards))

    def key(c: Rec) -> str:
        day = local_day(c.fields["started_at"])
        iso = day.isocalendar()
        return {
            "ward": c.ward,
            "team": c.fields.get("team_id") or "unknown",
            "officer": c.fields.get("officer_id") or c.fields.get("created_by") or "unknown",
            "premises_kind": premises[c.fields["premises_id"]].fields["kind"] if c.fields["premises_id"] in premises else "unknown",
            "check_kind": c.fields["kind"],
            "day": day.isoformat(),
            "week": f"{iso[0]}-W{iso[1]:02d}",
            "month": day.isoformat()[:7],
        }[group_by]

    groups: dict[str, list[Rec]] = collections.defaultdict(list)
    for c in checks:
        groups[key(c)].append(c)
    named = _NAMES.get(group_by, {})
    return [
        {"key": k, "key_name": named.get(k, k), "checks": len(cs), "premises": len({c.fields["premises_id"] for c in cs}), "violations": sum(violations_at[c.id] for c in cs)}
        for k, cs in sorted(groups.items())
    ]
