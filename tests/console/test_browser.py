"""The console in a real Chromium (PROTOCOL.md section 9): figures equal the API's,
filtered lists exported and parsed back, a conflict resolved in the browser reaches a
handheld, another ward's record stays out of reach, forms need their CSRF token,
officers stay out, the overview updates live, and nothing scrolls sideways at 360 px."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from playwright.sync_api import expect

from client_sdk import PatrolClient
from schemas import Violation
from sync_server.loopback import LoopbackServer
from sync_server.settings import Settings

from ..dataset import Dataset, build
from ..helpers import make_world, stamp
from .conftest import bootstrap, run_async, set_password

PASSWORD = "Lam-Sơn-2023-giám-sát"


@dataclasses.dataclass
class Site:
    url: str
    db_url: str
    tokens: dict[str, str]  # device -> token
    data: Dataset

    def api(self, device: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.tokens[device]}"}, timeout=30)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("console")
    settings = Settings(db_url=f"sqlite:///{folder / 'server.db'}")
    admin_token = bootstrap(settings.db_url)
    server = LoopbackServer(settings)
    server.start_thread()

    async def populate() -> tuple[dict[str, str], Dataset]:
        world = await make_world(server.url, admin_token)
        try:
            data = await build(world)
            answer = await world.admin.http.post("/v1/admin/users", json={"id": "u-ls", "name": "Giám sát Lam Sơn", "role": "supervisor", "ward_ids": ["lam-son"]})
            assert answer.status_code == 201
            return {api.device_id or "": api.token or "" for api in world.all()}, data
        finally:
            for api in world.all():
                await api.aclose()

    tokens, data = run_async(populate)
    for user in ("u-minh", "u-ls", "u-ngoc", "admin"):
        set_password(settings.db_url, user, PASSWORD)
    yield Site(server.url, settings.db_url, tokens, data)
    server.stop_thread()


@pytest.fixture
def page(chromium: Any, site: Site) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True, locale="vi-VN")
    yield context.new_page()
    context.close()


def sign_in(page: Any, site: Site, user: str = "u-minh", then: str = "/console/") -> None:
    page.goto(site.url + then)
    assert "/console/signin" in page.url
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(site.url + then.rstrip("/")) + "/?$"))


def figure(page: Any, name: str) -> int:
    return int(page.inner_text(f"[data-figure={name}]").replace(".", "").replace(" ₫", ""))


def test_the_overview_shows_the_apis_figures_and_targets(page: Any, site: Site) -> None:
    sign_in(page, site)
    with site.api("sup-laptop") as api:
        summary = api.get("/v1/reports/summary").json()
        lam_son = api.get("/v1/reports/summary", params={"ward": "lam-son", "from": "2023-06-01", "to": "2023-06-30"}).json()
    for name in ("checks", "premises_checked", "violations_recorded", "fines_vnd", "tips_received", "fire_safety_groups", "public_fire_points"):
        assert figure(page, name) == summary[name], name
    assert page.inner_text("[data-figure=fines_vnd]").endswith(" ₫") and "." in page.inner_text("[data-figure=fines_vnd]")
    page.select_option("select[name=ward]", "lam-son")
    page.fill("input[name=from]", "2023-06-01")
    page.fill("input[name=to]", "2023-06-30")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"ward=lam-son"))
    assert figure(page, "checks") == lam_son["checks"] and figure(page, "violations_recorded") == lam_son["violations_recorded"]
    assert page.locator("svg.chart rect.bar").count() == 30  # one column a day of June
    assert page.locator("h1").inner_text() == "Tổng quan"


def test_violations_filtered_in_the_browser_export_to_csv_and_xlsx_that_parse_back(page: Any, site: Site, tmp_path: Path) -> None:
    sign_in(page, site, then="/console/records/violations")
    page.select_option("select[name=ward]", "lam-son")
    page.select_option("select[name=status]", "fined")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"status=fined"))
    expected = {r.id for r in site.data.live("violations", {"lam-son"}) if r.fields["status"] == "fined"}
    shown = set(page.locator("table.records tbody tr").evaluate_all("rows => rows.map(r => r.dataset.id)"))
    assert shown == expected
    assert page.locator("table.records tbody tr .badge.status-fined").first.inner_text() == "Đã xử phạt"
    with page.expect_download() as csv_download:
        page.click("text=Tải CSV")
    rows = list(csv.reader(io.StringIO(Path(csv_download.value.path()).read_bytes().decode("utf-8-sig"))))
    assert csv_download.value.suggested_filename.startswith("violations-lam-son-") and csv_download.value.suggested_filename.endswith(".csv")
    assert rows[0][:5] == ["Mã", "Ngày lập", "Cơ sở", "Lĩnh vực vi phạm", "Trạng thái"]
    assert {r[0] for r in rows[1:]} == expected and all(r[4] == "Đã xử phạt" and r[-1] == "Phường Lam Sơn" for r in rows[1:])
    with page.expect_download() as xlsx_download:
        page.click("text=Tải Excel")
    sheet = openpyxl.load_workbook(io.BytesIO(Path(xlsx_download.value.path()).read_bytes())).active
    assert sheet is not None
    table = list(sheet.iter_rows(values_only=True))
    assert [list(map(lambda v: "" if v is None else str(v), r)) for r in table] == rows


def test_a_formula_typed_on_a_handheld_is_plain_text_in_the_exported_file(page: Any, site: Site) -> None:
    ts = stamp("lamson-h01")
    fields = {"ward_id": "lam-son", "name": "=cmd|' /C calc'!A0 Nhà trọ Đông Hương", "kind": "boarding_house", "owner_name": "@SUM(1+1)"}
    with site.api("lamson-h01") as api:
        answer = api.post("/v1/sync/push", json={"device_id": "lamson-h01", "changeset_id": "formula-1",
                                                 "changes": [{"collection": "premises", "id": "formula-prem", "fields": {k: {"value": v, "ts": ts} for k, v in fields.items()}}]})
        assert answer.status_code == 200
    sign_in(page, site, then="/console/records/premises")
    with page.expect_download() as download:
        page.click("text=Tải Excel")
    sheet = openpyxl.load_workbook(io.BytesIO(Path(download.value.path()).read_bytes())).active
    assert sheet is not None
    row = next(r for r in sheet.iter_rows() if r[0].value == "formula-prem")
    assert row[1].value == "'=cmd|' /C calc'!A0 Nhà trọ Đông Hương" and row[1].data_type == "s"
    assert row[4].value == "'@SUM(1+1)"


def test_a_conflict_resolved_in_the_browser_reaches_a_second_device(page: Any, site: Site, tmp_path: Path) -> None:
    with (
        PatrolClient(site.url, token=site.tokens["lamson-h01"], device_id="lamson-h01", user_id="u-ngoc", path=tmp_path / "h01.db") as h01,
        PatrolClient(site.url, token=site.tokens["lamson-h02"], device_id="lamson-h02", user_id="u-hung", path=tmp_path / "h02.db") as h02,
    ):
        record = h01.create(Violation(id="vio-disputed", ward_id="lam-son", check_id="lam-son-chk-1", premises_id="lam-son-prem-1",
                                      category="fire_safety", status="open", description="Bình chữa cháy hết hạn"))
        h01.sync()
        h02.sync()
        h01.update(Violation, record.id, fine_vnd=1_500_000)
        h02.update(Violation, record.id, fine_vnd=2_500_000)
        h01.sync()
        h02.sync()
        with site.api("sup-laptop") as api:
            conflict = next(c for c in api.get("/v1/conflicts", params={"status": "open"}).json()["conflicts"] if c["record_id"] == record.id)
        other = (conflict["client"] if conflict["winner"] == "server" else conflict["server"])["value"]
        sign_in(page, site, then="/console/conflicts")
        card = page.locator(f"li.conflict#{conflict['id']}")
        assert "1.500.000 ₫" in card.inner_text() and "2.500.000 ₫" in card.inner_text()
        card.locator("button[value=other]").click()
        page.wait_for_url(re.compile(r"done=" + conflict["id"]))
        assert page.locator(f"li.conflict#{conflict['id']}").count() == 0
        h01.sync()
        h02.sync()
        assert h01.get(Violation, record.id).fine_vnd == other == h02.get(Violation, record.id).fine_vnd  # type: ignore[union-attr]
    with site.api("sup-laptop") as api:
        assert api.get("/v1/conflicts", params={"status": "resolved"}).json()["conflicts"][-1]["resolved_by"] == "u-minh"


def test_another_wards_record_cannot_be_reached_by_its_address(page: Any, site: Site) -> None:
    sign_in(page, site, user="u-ls")
    answer = page.goto(site.url + "/console/records/premises/phu-son-prem-1")
    assert answer is not None and answer.status == 404
    assert "phu-son-prem-1" not in page.inner_text("main") and "Không tìm thấy" in page.inner_text("main")
    mine = page.goto(site.url + "/console/records/premises/lam-son-prem-1")
    assert mine is not None and mine.status == 200


def test_a_form_posted_without_its_csrf_token_is_refused(page: Any, site: Site) -> None:
    sign_in(page, site)
    status = page.evaluate("""async () => {
        const body = new URLSearchParams({choice: "kept"});
        const r = await fetch("/console/conflicts/c-1/resolve", {method: "POST", body});
        return r.status; }""")
    assert status == 403
    page.goto(site.url + "/console/")
    assert page.locator("[data-figure=checks]").count() == 1  # still signed in


def test_an_officer_cannot_sign_in(page: Any, site: Site) -> None:
    page.goto(site.url + "/console/signin")
    page.fill("input[name=user]", "u-ngoc")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    assert "Cán bộ tuần tra dùng ứng dụng" in page.inner_text(".alert")
    assert not any(c["name"] == "ps_session" for c in page.context.cookies())


def test_the_overview_updates_live_when_a_device_syncs(page: Any, site: Site) -> None:
    sign_in(page, site)
    page.wait_for_selector("body.live-on")
    before = figure(page, "checks")
    shown = page.inner_text("[data-figure=checks]")
    ts = stamp("lamson-h01")
    fields = {"ward_id": "lam-son", "premises_id": "lam-son-prem-2", "kind": "residence", "started_at": "2023-06-15T09:00:00+07:00"}
    with site.api("lamson-h01") as api:
        answer = api.post("/v1/sync/push", json={"device_id": "lamson-h01", "changeset_id": "live-1",
                                                 "changes": [{"collection": "checks", "id": "live-check", "fields": {k: {"value": v, "ts": ts} for k, v in fields.items()}}]})
        assert answer.status_code == 200
    expect(page.locator("[data-figure=checks]")).not_to_have_text(shown, timeout=10_000)
    assert figure(page, "checks") == before + 1


@pytest.mark.parametrize("path", ["/console/", "/console/records/violations", "/console/records/checks", "/console/records/premises/lam-son-prem-1",
                                  "/console/conflicts", "/console/fleet", "/console/search?q=nha+tro", "/console/admin/users"])
def test_at_360_px_no_page_scrolls_sideways(chromium: Any, site: Site, path: str) -> None:
    context = chromium.new_context(viewport={"width": 360, "height": 740}, locale="vi-VN")
    try:
        page = context.new_page()
        sign_in(page, site, user="admin")
        page.goto(site.url + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, path
    finally:
        context.close()
