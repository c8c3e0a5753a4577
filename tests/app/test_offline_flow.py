"""The officer's day in real Chromium: enrol, work offline, reopen, sync, photos first.

The app shell comes from the service worker once loaded, so a reload with no network
shows the app and its data; edits wait in IndexedDB across a closed page, and one
sync sends them and their photo, which the server then holds exactly.
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from playwright.async_api import BrowserContext

from ..helpers import World, premises
from .conftest import App, AppServer, new_device, png, server_records

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_the_app_is_an_installable_web_app_served_without_a_token(app_server: AppServer) -> None:
    async with httpx.AsyncClient(base_url=app_server.url) as http:
        manifest = (await http.get("/app/manifest.webmanifest")).json()
        assert (manifest["name"], manifest["start_url"], manifest["display"]) == ("Tuần tra", "/app/", "standalone")
        for icon in manifest["icons"]:
            assert (await http.get(icon["src"])).status_code == 200
        worker = await http.get("/app/sw.js")
        assert worker.status_code == 200 and "__VERSION__" not in worker.text
        schema = (await http.get("/app/schema.json")).json()
        assert schema["x-ranks"]["violations"]["status"]["resolved"] > schema["x-ranks"]["violations"]["status"]["open"]


async def test_an_officer_works_offline_reopens_the_app_and_one_sync_sends_everything(
    app: App, phone: BrowserContext, app_world: World
) -> None:
    device = await new_device(app_world)
    house = f"srv-{device.device_id}"
    await app_world.officer_a.push_ok([premises(house, "lam-son", "lamson-h01", name="Nhà trọ Hoa Sen")])
    before = set(await server_records(app_world.supervisor))

    await app.open()
    await app.enrol_with_token(device, "u-ngoc")
    await app.wait_idle()
    assert [p["fields"]["name"] for p in await app.list("premises") if p["id"] == house] == ["Nhà trọ Hoa Sen"]
    await app.page.wait_for_function("navigator.serviceWorker.controller !== null")

    await phone.set_offline(True)
    await app.page.reload()
    await app.page.wait_for_selector("[data-testid=sync]")
    await app.page.fill("#search", "hoa sen")  # offline, without diacritics
    await app.page.wait_for_selector("[data-testid=premises-row]")

    new_house = await app.add_premises("Nhà nghỉ Đồng Xuân", "lodging", "25 Đường Lê Lợi")
    for kind in ("residence", "fire_safety", "public_order"):
        await app.record_check(house, kind, "violations_found" if kind == "fire_safety" else "ok")
    photo = png(64, 48, (200, 30, 30))
    await app.record_violation(house, [photo], fine=1_500_000, category="fire_safety")
    assert await app.pending() == 5

    page = app.page
    app.page = await phone.new_page()
    await page.close()  # the officer closes the app, still offline
    await app.open()
    assert await app.pending() == 5
    assert "5 thay đổi chờ gửi" in await app.page.locator("[data-testid=pending]").inner_text()

    await phone.set_offline(False)  # the network comes back: the app syncs by itself
    await app.page.wait_for_function("window.patrolApp.local.meta.last_sync && window.patrolApp.local.meta.last_sync.ok")
    await app.wait_idle()
    assert await app.pending() == 0

    on_server = await server_records(app_world.supervisor)
    mine = {k: v for k, v in on_server.items() if k not in before}
    assert sorted(r["collection"] for r in mine.values()) == ["checks", "checks", "checks", "premises", "violations"]
    assert on_server[new_house]["fields"]["name"] == "Nhà nghỉ Đồng Xuân"
    assert {r["fields"]["created_by"] for r in mine.values()} == {"u-ngoc"}
    checks = [r for r in mine.values() if r["collection"] == "checks"]
    assert {c["fields"]["premises_id"] for c in checks} == {house}
    violation = next(r for r in mine.values() if r["collection"] == "violations")
    assert violation["fields"]["check_id"] in {c["id"] for c in checks}
    assert violation["fields"]["fine_vnd"] == 1_500_000 and violation["fields"]["status"] == "open"
    [photo_id] = violation["fields"]["photos"]
    stored = await app_world.supervisor.http.get(f"/v1/blobs/{photo_id}")
    assert stored.status_code == 200 and photo_id == "sha256:" + hashlib.sha256(stored.content).hexdigest()
    assert stored.content[:2] == b"\xff\xd8"  # scaled down on the phone to a JPEG
    local: list[dict[str, Any]] = await app.list("violations")
    assert [v["fields"]["photos"] for v in local] == [[photo_id]]
