"""The app among other clients: convergence with a second phone and the Python SDK,
and a revoked device told so plainly."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser

from client_sdk import AsyncPatrolClient, new_id
from schemas import Check, Premises, Violation

from ..helpers import World
from ..sdk.conftest import FAST
from .conftest import PHONE, App, AppServer, new_device, server_records

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_two_phones_and_an_sdk_device_editing_one_violation_converge(
    app: App, browser: Browser, app_server: AppServer, app_world: World, tmp_path: Path
) -> None:
    sdk_device = await new_device(app_world, "u-minh")
    assert sdk_device.token is not None and sdk_device.device_id is not None
    async with AsyncPatrolClient(app_server.url, token=sdk_device.token, device_id=sdk_device.device_id, user_id="u-minh", path=tmp_path / "sdk.db", retry=FAST) as sdk:
        house = await sdk.create(Premises(id=new_id(), ward_id="lam-son", name="Karaoke Ánh Dương", kind="karaoke"))
        check = await sdk.create(Check(id=new_id(), ward_id="lam-son", premises_id=house.id, kind="fire_safety", started_at="2026-11-30T09:00:00+07:00"))
        found = await sdk.create(Violation(id=new_id(), ward_id="lam-son", check_id=check.id, premises_id=house.id, category="fire_safety", status="open"))
        await sdk.sync()

        second_context = await browser.new_context(viewport=PHONE, is_mobile=True, locale="vi-VN")
        other = App(await second_context.new_page(), app_server.url)
        try:
            for phone, user in ((app, "u-ngoc"), (other, "u-hung")):
                await phone.open()
                await phone.enrol_with_token(await new_device(app_world, user), user)
                await phone.wait_idle()
                assert await phone.get("violations", found.id) is not None
            # all three edit the violation without syncing in between
            await app.page.context.set_offline(True)
            await second_context.set_offline(True)
            await app.edit("violations", found.id, fills={"fine_vnd": "1500000", "record_no": "BB-17"}, selects={"status": "fined"})
            await other.edit("violations", found.id, fills={"fine_vnd": "2000000", "description": "Bình chữa cháy hết hạn"}, selects={"status": "notified"})
            await sdk.update(Violation, found.id, description="Thiếu bình chữa cháy", status="resolved")
            await app.page.context.set_offline(False)
            await second_context.set_offline(False)
            for _ in range(2):  # a second round brings each the others' edits
                await app.sync()
                await other.sync()
                await sdk.sync()
            assert await app.pending() == 0 and await other.pending() == 0
            on_server = (await server_records(app_world.supervisor))[found.id]
            held = await sdk.get(Violation, found.id)
            mine, theirs = await app.get("violations", found.id), await other.get("violations", found.id)
            assert mine is not None and theirs is not None
            assert mine["fields"] == theirs["fields"] == on_server["fields"]
            assert held.status == on_server["fields"]["status"] == "resolved"  # the highest rank
            assert held.description == on_server["fields"]["description"]
            assert on_server["fields"]["record_no"] == "BB-17"
            # the SDK's photo, shown on a phone that never held it: fetched and checked
            photo = await sdk.put_blob(b"\xff\xd8 not really a JPEG")
            await sdk.add(Violation, found.id, "photos", photo)
            await sdk.sync()
            await other.sync()
            await other.page.goto(f"{app_server.url}/app/#edit/violations/{found.id}")
            await other.page.wait_for_selector("[data-testid=thumbs] img")
            kept = await other.page.evaluate("(id) => window.patrolApp.local.getBlob(id).then((b) => b && b.uploaded)", photo)
            assert kept is True
            assert held.fine_vnd == on_server["fields"]["fine_vnd"] == 2_000_000  # the later of the two phones' stamps
            # the phone that pushed second (the network came back on both at once) saw the
            # conflicts the server reported, on its sync page
            counts = [await p.page.evaluate("window.patrolApp.local.conflicts().then((c) => c.length)") for p in (app, other)]
            loser = (app, other)[counts.index(max(counts))]
            await loser.page.goto(f"{app_server.url}/app/#sync")
            await loser.page.wait_for_selector("[data-testid=conflicts] .row")
            shown = await loser.page.locator("[data-testid=conflicts] .row").all_inner_texts()
            assert any("Trạng thái" in row for row in shown), shown
        finally:
            await second_context.close()


async def test_a_revoked_device_is_told_so_and_keeps_its_pending_edits(app: App, app_world: World) -> None:
    device = await new_device(app_world)
    await app.open()
    await app.enrol_with_token(device, "u-ngoc")
    await app.wait_idle()
    response = await app_world.admin.http.delete(f"/v1/admin/devices/{device.device_id}")
    assert response.status_code == 204
    await app.page.context.set_offline(True)
    await app.add_premises("Nhà trọ Bến Ngự")
    await app.page.context.set_offline(False)
    await app.sync()
    assert "Thiết bị bị thu hồi" in await app.message()
    assert await app.pending() == 1
