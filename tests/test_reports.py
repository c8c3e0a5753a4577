"""Reports (PROTOCOL.md section 6, DOMAIN.md "Reports"): figures equal a count of the records."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator

import pytest

from .dataset import Dataset, build, expected_check_rows, expected_summary
from .helpers import World, edit, stamp

PROBLEM = "application/problem+json"
GROUPS = ["ward", "team", "officer", "premises_kind", "check_kind", "day", "week", "month"]


@pytest.fixture
async def data(world: World) -> AsyncIterator[Dataset]:
    yield await build(world)


def _figures(report: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in report.items() if k not in ("wards", "from", "to")}


async def test_the_summary_over_all_wards_equals_a_count_of_the_records(world: World, data: Dataset) -> None:
    response = await world.supervisor.http.get("/v1/reports/summary")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["wards"] == ["lam-son", "phu-son"]
    assert _figures(report) == expected_summary(data, {"lam-son", "phu-son"})


@pytest.mark.parametrize(("start", "end"), [("2023-06-01", "2023-06-30"), ("2023-05-15", None), (None, "2023-06-10"), ("2023-07-01", "2023-07-31")])
async def test_the_summary_of_one_ward_and_period_equals_a_count_of_the_records(world: World, data: Dataset, start: str | None, end: str | None) -> None:
    params = {"ward": "lam-son"}
    if start:
        params["from"] = start
    if end:
        params["to"] = end
    report = (await world.supervisor.http.get("/v1/reports/summary", params=params)).json()
    expected = expected_summary(data, {"lam-son"}, dt.date.fromisoformat(start) if start else None, dt.date.fromisoformat(end) if end else None)
    assert _figures(report) == expected
    assert report["from"] == start and report["to"] == end


async def test_tombstones_and_other_wards_never_count(world: World, data: Dataset) -> None:
    deleted = [r for r in data.records if r.deleted]
    assert deleted and any(r.collection == "checks" for r in deleted)
    everything = (await world.admin.http.get("/v1/reports/summary")).json()
    lam_son = (await world.admin.http.get("/v1/reports/summary", params={"ward": "lam-son"})).json()
    live_checks = [r for r in data.records if r.collection == "checks" and not r.deleted]
    assert everything["checks"] == len(live_checks)
    assert lam_son["checks"] == sum(1 for r in live_checks if r.ward == "lam-son") < everything["checks"]


@pytest.mark.parametrize("group_by", GROUPS)
async def test_checks_grouped_by_each_key_equal_a_count_of_the_records(world: World, data: Dataset, group_by: str) -> None:
    response = await world.supervisor.http.get("/v1/reports/checks", params={"group_by": group_by})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["group_by"] == group_by
    assert report["rows"] == expected_check_rows(data, {"lam-son", "phu-son"}, group_by)


async def test_checks_of_one_ward_month_by_day(world: World, data: Dataset) -> None:
    params = {"group_by": "day", "ward": "phu-son", "from": "2023-06-01", "to": "2023-06-30"}
    report = (await world.supervisor.http.get("/v1/reports/checks", params=params)).json()
    assert report["rows"] == expected_check_rows(data, {"phu-son"}, "day", dt.date(2023, 6, 1), dt.date(2023, 6, 30))
    assert all(row["key"].startswith("2023-06-") for row in report["rows"])


async def test_checks_as_csv_parse_back_to_the_json_rows(world: World, data: Dataset) -> None:
    json_rows = (await world.supervisor.http.get("/v1/reports/checks", params={"group_by": "premises_kind"})).json()["rows"]
    response = await world.supervisor.http.get("/v1/reports/checks", params={"group_by": "premises_kind"}, headers={"Accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    parsed = [
        {"key": row["key"], "key_name": row["key_name"], "checks": int(row["checks"]), "premises": int(row["premises"]), "violations": int(row["violations"])}
        for row in csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")))
    ]
    assert parsed == json_rows and parsed


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_checks_by_officer_name_each_officer_in_the_file(world: World, data: Dataset, fmt: str) -> None:
    import openpyxl

    response = await world.supervisor.http.get("/v1/reports/checks", params={"group_by": "officer", "format": fmt})
    assert response.status_code == 200
    if fmt == "csv":
        table = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True).active
        assert sheet is not None
        table = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    assert table[0] == ["key", "key_name", "checks", "premises", "violations"]
    names = {row[0]: row[1] for row in table[1:]}
    assert names["u-ngoc"] == "Lê Văn Ngọc" and names["u-lan"] == "Nguyễn Thị Lan"


async def test_a_day_is_the_wards_local_day(world: World) -> None:
    ts = stamp("lamson-h01")
    # 20:30 UTC on 30 June is 03:30 on 1 July in Thanh Hóa
    change = {
        "collection": "checks",
        "id": "late-check",
        "fields": {
            "ward_id": edit("lam-son", ts),
            "premises_id": edit("p-x", ts),
            "kind": edit("residence", ts),
            "started_at": edit("2023-06-30T20:30:00Z", ts),
        },
    }
    await world.officer_a.push_ok([change])
    july = (await world.supervisor.http.get("/v1/reports/summary", params={"from": "2023-07-01", "to": "2023-07-31"})).json()
    june = (await world.supervisor.http.get("/v1/reports/summary", params={"from": "2023-06-01", "to": "2023-06-30"})).json()
    assert (july["checks"], june["checks"]) == (1, 0)
    rows = (await world.supervisor.http.get("/v1/reports/checks", params={"group_by": "day"})).json()["rows"]
    assert rows == [{"key": "2023-07-01", "key_name": "2023-07-01", "checks": 1, "premises": 1, "violations": 0}]


async def _push_targets_and_groups(world: World) -> None:
    ts = stamp("sup-laptop")
    changes = [
        {"collection": "targets", "id": "t-groups", "fields": {"ward_id": edit("lam-son", ts), "metric": edit("fire_safety_groups", ts), "period": edit("2023", ts), "target": edit(20, ts)}},
        {"collection": "targets", "id": "t-points", "fields": {"ward_id": edit("lam-son", ts), "metric": edit("public_fire_points", ts), "period": edit("2023", ts), "target": edit(5, ts)}},
    ]
    for i in range(64):
        changes.append({"collection": "safety_groups", "id": f"g-{i}", "fields": {"ward_id": edit("lam-son", ts), "kind": edit("fire_safety", ts), "name": edit(f"Tổ liên gia PCCC {i}", ts), "established_on": edit(f"2023-{1 + i % 12:02d}-15", ts)}})
    for i in range(5):  # security groups and a group of 2022: not fire-safety groups of 2023
        changes.append({"collection": "safety_groups", "id": f"s-{i}", "fields": {"ward_id": edit("lam-son", ts), "kind": edit("security", ts), "name": edit(f"Tổ an ninh {i}", ts)}})
    changes.append({"collection": "safety_groups", "id": "g-old", "fields": {"ward_id": edit("lam-son", ts), "kind": edit("fire_safety", ts), "name": edit("Tổ cũ", ts), "established_on": edit("2022-12-31", ts)}})
    for i in range(23):
        changes.append({"collection": "fire_points", "id": f"fp-{i}", "fields": {"ward_id": edit("lam-son", ts), "name": edit(f"Điểm chữa cháy công cộng {i}", ts)}})
    answer = await world.supervisor.push_ok(changes)
    assert {r["status"] for r in answer["results"]} == {"applied"}


async def test_targets_report_achieved_per_cent(world: World) -> None:
    await _push_targets_and_groups(world)
    response = await world.supervisor.http.get("/v1/reports/targets", params={"ward": "lam-son", "period": "2023"})
    assert response.status_code == 200, response.text
    targets = {t["metric"]: t for t in response.json()["targets"]}
    assert targets["fire_safety_groups"]["achieved"] == 64 and targets["fire_safety_groups"]["percent"] == 320.0
    assert targets["public_fire_points"]["achieved"] == 23 and targets["public_fire_points"]["percent"] == 460.0
    assert (await world.supervisor.http.get("/v1/reports/targets", params={"period": "2022"})).json()["targets"] == []


async def test_a_monthly_target_counts_that_month(world: World, data: Dataset) -> None:
    ts = stamp("sup-laptop")
    target = {"collection": "targets", "id": "t-june", "fields": {"ward_id": edit("phu-son", ts), "metric": edit("checks", ts), "period": edit("2023-06", ts), "target": edit(7, ts)}}
    await world.supervisor.push_ok([target])
    (progress,) = (await world.supervisor.http.get("/v1/reports/targets", params={"ward": "phu-son"})).json()["targets"]
    achieved = expected_summary(data, {"phu-son"}, dt.date(2023, 6, 1), dt.date(2023, 6, 30))["checks"]
    assert progress["achieved"] == achieved
    assert progress["percent"] == round(achieved / 7 * 100, 1)


@pytest.mark.parametrize("path", ["/v1/reports/summary", "/v1/reports/checks?group_by=ward", "/v1/reports/targets"])
async def test_officers_get_403_on_reports(world: World, path: str) -> None:
    response = await world.officer_a.http.get(path)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_a_ward_outside_the_callers_scope_is_403(world: World) -> None:
    await world.admin.http.post("/v1/admin/wards", json={"id": "hong-linh", "name": "Phường Hồng Lĩnh"})
    response = await world.supervisor.http.get("/v1/reports/summary", params={"ward": "hong-linh"})
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"from": "2023-07-01", "to": "2023-06-01"}, 422),
        ({"from": "yesterday"}, 400),
        ({"group_by": "planet"}, 400),
    ],
)
async def test_bad_report_parameters_are_problems(world: World, params: dict[str, str], status: int) -> None:
    path = "/v1/reports/checks" if "group_by" in params else "/v1/reports/summary"
    response = await world.supervisor.http.get(path, params=params)
    assert response.status_code == status
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_a_report_over_no_records_is_all_zero(world: World) -> None:
    report = (await world.supervisor.http.get("/v1/reports/summary")).json()
    assert report["checks"] == 0 and report["violations_by_status"] == {} and report["patrol_hours"] == 0.0
