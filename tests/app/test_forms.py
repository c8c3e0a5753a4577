"""The officer's other forms, built from the server's JSON Schema: each one's record is
accepted by the server as is, and a value the schema refuses never leaves the phone."""

from __future__ import annotations

import pytest

from ..helpers import World
from .conftest import App, new_device, server_records

pytestmark = pytest.mark.asyncio(loop_scope="module")

FORMS = {
    "patrols": {"fills": {"team_id": "ls-t1", "notes": "Tuần tra khu phố 3"}, "selects": {}},
    "tips": {"fills": {"summary": "Có người lạ thuê trọ không khai báo tạm trú"}, "selects": {"channel": "zalo"}},
    "safety_groups": {"fills": {"name": "Tổ liên gia số 5", "leader_name": "Nguyễn Văn Bình", "households": "12", "established_on": "2026-11-30"}, "selects": {"kind": "fire_safety"}},
    "fire_points": {"fills": {"name": "Điểm chữa cháy ngõ 41", "address": "41 Hàng Đồng", "equipment": "bình bột, vòi nước"}, "selects": {}},
}


async def test_each_form_makes_a_record_the_server_accepts(app: App, app_world: World) -> None:
    await app.open()
    await app.enrol_with_token(await new_device(app_world), "u-ngoc")
    await app.wait_idle()
    for collection, form in FORMS.items():
        await app.page.goto(f"{app.base_url}/app/#new/{collection}")
        await app.page.wait_for_selector(f"[data-testid=form-{collection}]")
        for name, value in form["fills"].items():
            await app.page.fill(f"#f-{name}", value)
        for name, value in form["selects"].items():
            await app.page.select_option(f"#f-{name}", value)
        await app.page.click("[data-testid=save]")
        await app.page.wait_for_function("!location.hash.startsWith('#new')")
    await app.wait_idle()
    await app.sync()
    assert await app.pending() == 0
    assert await app.page.evaluate("window.patrolApp.local.deadLetters().then((d) => d.length)") == 0
    made = {r["collection"]: r["fields"] for r in (await server_records(app_world.supervisor)).values() if r["fields"].get("created_by") == "u-ngoc"}
    assert made["patrols"]["team_id"] == "ls-t1" and made["patrols"]["started_at"].endswith("+07:00")
    assert made["tips"]["status"] == "new" and made["tips"]["channel"] == "zalo"
    assert made["safety_groups"]["households"] == 12 and made["safety_groups"]["established_on"] == "2026-11-30"
    assert made["fire_points"]["equipment"] == ["bình bột", "vòi nước"]


async def test_a_value_the_schema_refuses_is_shown_and_never_queued(app: App, app_world: World) -> None:
    await app.open()
    await app.enrol_with_token(await new_device(app_world), "u-ngoc")
    await app.wait_idle()
    await app.page.goto(f"{app.base_url}/app/#new/premises")
    await app.page.wait_for_selector("[data-testid=form-premises]")
    await app.page.fill("#f-name", "Nhà trọ Sai Số")
    await app.page.fill("#f-rooms", "-3")
    await app.page.fill("#f-lat", "123")
    await app.page.click("[data-testid=save]")
    error = await app.page.locator("[data-testid=form-error]").inner_text()
    assert "Số phòng" in error and "Vĩ độ" in error
    await app.page.fill("#f-name", "")
    await app.page.fill("#f-rooms", "3")
    await app.page.fill("#f-lat", "19.8")
    await app.page.click("[data-testid=save]")
    assert "Tên" in await app.page.locator("[data-testid=form-error]").inner_text()
    assert await app.pending() == 0


async def test_a_change_the_server_rejects_becomes_a_dead_letter_shown_on_the_sync_page(app: App, app_world: World) -> None:
    await app.open()
    await app.enrol_with_token(await new_device(app_world), "u-ngoc")
    await app.wait_idle()
    # not through a form (the forms check required fields): a check of a ward out of scope
    await app.page.evaluate("""window.patrolApp.local.create("checks", {ward_id: "phu-son", premises_id: "p-x", kind: "residence", started_at: "2026-11-30T09:00:00+07:00"})""")
    await app.sync()
    assert await app.pending() == 0
    await app.page.goto(f"{app.base_url}/app/#sync")
    await app.page.wait_for_selector("[data-testid=dead-letters] .row")
    rows = await app.page.locator("[data-testid=dead-letters] .row").all_inner_texts()
    # the refusal says why (scope) and, deliberately, nothing of the other ward (PROTOCOL.md 2)
    assert len(rows) == 1 and "Kiểm tra" in rows[0] and "not in your scope" in rows[0] and "phu-son" not in rows[0]
    await app.page.wait_for_selector("#status a:has-text('1 bị từ chối')")


async def test_an_officer_fixes_refused_changes_in_their_forms_and_resends_them_or_discards_one(app: App, app_world: World) -> None:
    await app.open()
    await app.enrol_with_token(await new_device(app_world), "u-ngoc")
    await app.wait_idle()
    make = """([ward, n]) => window.patrolApp.local.create("checks", {ward_id: ward, premises_id: "p-x", kind: "residence",
        started_at: "2026-11-30T09:00:00+07:00", residents_present: n})"""
    bad_value = await app.page.evaluate(make, ["lam-son", -2])  # not through a form: the forms check this
    bad_ward = await app.page.evaluate(make, ["phu-son", 3])
    dropped = await app.page.evaluate(make, ["phu-son", 4])
    await app.sync()
    letters = {d["record_id"]: d["n"] for d in await app.page.evaluate("window.patrolApp.local.deadLetters()")}
    assert set(letters) == {bad_value, bad_ward, dropped}

    # the server's refusal under the field it names; corrected and resent
    await app.page.goto(f"{app.base_url}/app/#sync")
    await app.page.click(f"[data-testid=fix][href='#fix/{letters[bad_value]}']")
    await app.page.wait_for_selector("[data-testid=form-checks]")
    assert ">= 0" in await app.page.locator("label.field:has(#f-residents_present) .error-text").inner_text()
    await app.page.fill("#f-residents_present", "2")
    await app.page.click("[data-testid=save]")
    await app.page.wait_for_function("location.hash === '#sync'")
    # refused for its ward: resent to the device's own ward, picked by name
    await app.page.goto(f"{app.base_url}/app/#fix/{letters[bad_ward]}")
    await app.page.wait_for_selector("[data-testid=form-checks]")
    assert "not in your scope" in await app.page.locator("[data-testid=form-checks]").inner_text()
    assert await app.page.input_value("#f-ward_id") == "lam-son"
    assert await app.page.locator("#f-ward_id option:checked").inner_text() == "Phường Lam Sơn"
    await app.page.click("[data-testid=save]")
    await app.page.wait_for_function("location.hash === '#sync'")
    # and one given up
    await app.page.goto(f"{app.base_url}/app/#fix/{letters[dropped]}")
    await app.page.click("[data-testid=discard]")
    await app.page.wait_for_function("location.hash === '#sync'")

    await app.sync()
    on_server = await server_records(app_world.supervisor)
    assert on_server[bad_value]["fields"]["residents_present"] == 2
    assert on_server[bad_ward]["ward_id"] == "lam-son" and on_server[bad_ward]["fields"]["residents_present"] == 3
    assert dropped not in on_server
    assert await app.pending() == 0
    assert await app.page.evaluate("window.patrolApp.local.deadLetters().then((d) => d.length)") == 0
