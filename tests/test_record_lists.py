"""Record lists (PROTOCOL.md section 6, ``GET /v1/records/{collection}``): the live
records of one collection, filtered, sorted, paged and scoped; and as CSV and XLSX
files a person opens in Excel (BOM, Vietnamese intact, formula cells neutralised)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator
from typing import Any

import openpyxl
import pytest

from .dataset import Dataset, build, local_day
from .helpers import Api, World, edit, stamp

PROBLEM = "application/problem+json"


@pytest.fixture
async def data(world: World) -> AsyncIterator[Dataset]:
    yield await build(world)


async def _all(api: Api, collection: str, **params: Any) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 7, **({"cursor": cursor} if cursor else {})}
        response = await api.http.get(f"/v1/records/{collection}", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["records"]) <= 7
        records += page["records"]
        cursor = page["next"]
        if cursor is None:
            return records


async def test_paging_a_list_yields_every_live_record_of_the_ward_once_newest_first(world: World, data: Dataset) -> None:
    listed = await _all(world.supervisor, "violations", ward="lam-son")
    expected = {r.id for r in data.live("violations", {"lam-son"})}
    assert [r["id"] for r in listed if r["id"] in expected] == [r["id"] for r in listed]
    assert len(listed) == len(expected) and {r["id"] for r in listed} == expected
    days = [local_day(r["fields"]["created_at"]) for r in listed]
    assert days == sorted(days, reverse=True)
    ascending = await _all(world.supervisor, "violations", ward="lam-son", sort="date")
    assert [local_day(r["fields"]["created_at"]) for r in ascending] == sorted(days)


@pytest.mark.parametrize(
    ("collection", "params", "keep"),
    [
        ("violations", {"status": "fined"}, lambda r: r.fields["status"] == "fined"),
        ("violations", {"category": "fire_safety", "from": "2023-06-01", "to": "2023-06-30"},
         lambda r: r.fields["category"] == "fire_safety" and dt.date(2023, 6, 1) <= local_day(r.fields["created_at"]) <= dt.date(2023, 6, 30)),
        ("checks", {"kind": "residence"}, lambda r: r.fields["kind"] == "residence"),
        # the officer of a check is its officer_id, or its author (as in the reports)
        ("checks", {"officer": "u-hung"}, lambda r: (r.fields.get("officer_id") or r.fields["created_by"]) == "u-hung"),
        ("tips", {"status": "new"}, lambda r: r.fields["status"] == "new"),
        ("premises", {"kind": "karaoke"}, lambda r: r.fields["kind"] == "karaoke"),
        ("patrols", {"to": "2023-06-10"}, lambda r: local_day(r.fields["started_at"]) <= dt.date(2023, 6, 10)),
    ],
)
async def test_a_filtered_list_holds_exactly_the_records_a_person_would_pick(
    world: World, data: Dataset, collection: str, params: dict[str, str], keep: Any
) -> None:
    listed = await _all(world.supervisor, collection, **params)
    expected = {r.id for r in data.live(collection, {"lam-son", "phu-son"}) if keep(r)}
    assert expected and {r["id"] for r in listed} == expected and len(listed) == len(expected)


async def test_a_list_names_the_ward_team_officer_and_premises_it_refers_to(world: World, data: Dataset) -> None:
    listed = await _all(world.supervisor, "checks", ward="lam-son")
    named = next(r for r in listed if r["fields"].get("officer_id") == "u-ngoc" and "ghost" not in r["fields"]["premises_id"])
    premises = data.by_id()[named["fields"]["premises_id"]]
    assert named["names"]["ward_id"] == "Phường Lam Sơn"
    assert named["names"]["officer_id"] == "Lê Văn Ngọc"
    assert named["names"]["premises_id"] == premises.fields["name"]
    assert named["names"]["team_id"].startswith("Tổ tuần tra")


async def test_premises_are_listed_by_name(world: World, data: Dataset) -> None:
    listed = await _all(world.supervisor, "premises", ward="phu-son")
    names = [r["fields"]["name"] for r in listed]
    assert names == sorted(names) and len(names) == len(data.live("premises", {"phu-son"}))


async def test_officers_may_not_list_and_a_supervisor_sees_only_his_wards(world: World, data: Dataset) -> None:
    assert (await world.officer_a.http.get("/v1/records/violations")).status_code == 403
    response = await world.admin.http.post("/v1/admin/users", json={"id": "u-ls", "name": "Lam Sơn", "role": "supervisor", "ward_ids": ["lam-son"]})
    assert response.status_code == 201
    token = (await world.admin.http.post("/v1/admin/devices", json={"device_id": "ls-pc", "user_id": "u-ls"})).json()["token"]
    ls = Api(world.base_url, token, "ls-pc")
    try:
        assert (await ls.http.get("/v1/records/violations", params={"ward": "phu-son"})).status_code == 403
        listed = await _all(ls, "violations")
        assert listed and {r["ward_id"] for r in listed} == {"lam-son"}
        files = await ls.http.get("/v1/records/violations", params={"format": "csv"})
        assert "phu-son" not in files.text and "Phú Sơn" not in files.content.decode("utf-8-sig")
    finally:
        await ls.aclose()


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/v1/records/targets", {}, 404),
        ("/v1/records/nothing", {}, 404),
        ("/v1/records/violations", {"status": "burnt"}, 422),
        ("/v1/records/premises", {"status": "open"}, 422),
        ("/v1/records/premises", {"from": "2023-01-01"}, 422),
        ("/v1/records/violations", {"sort": "name"}, 422),
        ("/v1/records/violations", {"cursor": "garbage!"}, 400),
        ("/v1/records/violations", {"limit": "100000000000000000000"}, 400),
        ("/v1/records/violations", {"from": "2023-07-01", "to": "2023-06-01"}, 422),
    ],
)
async def test_a_list_request_that_cannot_be_answered_is_a_problem(world: World, path: str, params: dict[str, str], status: int) -> None:
    response = await world.supervisor.http.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_a_cursor_of_another_sort_order_is_refused(world: World, data: Dataset) -> None:
    page = (await world.supervisor.http.get("/v1/records/violations", params={"limit": 2})).json()
    response = await world.supervisor.http.get("/v1/records/violations", params={"limit": 2, "cursor": page["next"], "sort": "date"})
    assert response.status_code == 400


async def _hostile_premises(world: World) -> None:
    ts = stamp("lamson-h01")
    change = {
        "collection": "premises",
        "id": "evil-1",
        "fields": {
            "ward_id": edit("lam-son", ts),
            "name": edit('=HYPERLINK("http://evil.example","Nhà trọ Bà Triệu")', ts),
            "kind": edit("boarding_house", ts),
            "address": edit("+84 Lê Lợi, Đông Hương", ts),
            "owner_name": edit("@Nguyễn Văn Đức", ts),
            "owner_phone": edit("-1+1", ts),
            "rooms": edit(-0 + 12, ts),
        },
    }
    await world.officer_a.push_ok([change])


async def test_a_list_as_csv_is_an_excel_ready_file_with_formulas_neutralised(world: World) -> None:
    await _hostile_premises(world)
    response = await world.supervisor.http.get("/v1/records/premises", params={"ward": "lam-son", "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith('attachment; filename="premises-lam-son-')
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Mã", "Tên cơ sở", "Loại hình"]
    row = next(r for r in rows if r[0] == "evil-1")
    assert row[1] == '\'=HYPERLINK("http://evil.example","Nhà trọ Bà Triệu")'
    assert row[3] == "'+84 Lê Lợi, Đông Hương" and row[4] == "'@Nguyễn Văn Đức" and row[5] == "'-1+1"
    assert row[2] == "Nhà trọ" and row[6] == "12" and row[8] == "Phường Lam Sơn"  # people's words, not codes
    same = await world.supervisor.http.get("/v1/records/premises", params={"ward": "lam-son"}, headers={"Accept": "text/csv"})
    assert same.content == response.content


async def test_a_list_as_xlsx_opens_with_vietnamese_intact_and_no_formula(world: World) -> None:
    await _hostile_premises(world)
    response = await world.supervisor.http.get("/v1/records/premises", params={"ward": "lam-son", "format": "xlsx", "lang": "en"})
    assert response.status_code == 200
    assert response.headers["content-disposition"].endswith('.xlsx"')
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("Id", "Name", "Kind")
    row = next(r for r in rows if r[0] == "evil-1")
    assert row[1] == '\'=HYPERLINK("http://evil.example","Nhà trọ Bà Triệu")' and row[4] == "'@Nguyễn Văn Đức"
    assert row[6] == 12  # numbers stay numbers
    cell = next(c for c in sheet.iter_rows() if c[0].value == "evil-1")[1]
    assert cell.data_type == "s"


async def test_a_reports_file_neutralises_a_key_that_looks_like_a_formula(world: World) -> None:
    assert (await world.admin.http.post("/v1/admin/teams", json={"id": "-t9", "ward_id": "lam-son", "name": "Tổ 9"})).status_code == 201
    ts = stamp("lamson-h01")
    fields = {"ward_id": "lam-son", "premises_id": "p-1", "kind": "residence", "started_at": "2023-06-01T09:00:00+07:00", "team_id": "-t9"}
    await world.officer_a.push_ok([{"collection": "checks", "id": "c-9", "fields": {k: edit(v, ts) for k, v in fields.items()}}])
    response = await world.supervisor.http.get("/v1/reports/checks", params={"group_by": "team", "format": "csv"})
    assert response.content.startswith(b"\xef\xbb\xbf") and "attachment" in response.headers["content-disposition"]
    assert ["'-t9", "Tổ 9", "1", "1", "0"] in list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    book = await world.supervisor.http.get("/v1/reports/checks", params={"group_by": "team", "format": "xlsx"})
    sheet = openpyxl.load_workbook(io.BytesIO(book.content)).active
    assert sheet is not None and ("'-t9", "Tổ 9", 1, 1, 0) in list(sheet.iter_rows(values_only=True))
