"""Enrolment: a one-time code (the console's QR code) or a device token typed in; a
re-issued token entered the same way keeps the outbox."""

from __future__ import annotations

import httpx
import pytest

from ..helpers import World
from .conftest import App, AppServer, new_device, server_records

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_a_phone_enrols_with_its_token_and_syncs(app: App, app_world: World) -> None:
    device = await new_device(app_world)
    await app.open()
    await app.enrol_with_token(device, "u-ngoc")
    await app.wait_idle()
    meta = await app.page.evaluate("window.patrolApp.local.meta")
    assert (meta["device_id"], meta["user_id"], meta["ward_id"]) == (device.device_id, "u-ngoc", "lam-son")  # from GET /v1/me
    assert meta["last_sync"]["ok"] is True
    assert await app.page.locator("[data-testid=ward]").inner_text() == "Phường Lam Sơn"


async def test_a_reissued_token_entered_again_keeps_the_outbox(app: App, app_server: AppServer, app_world: World) -> None:
    if "/v1/admin/devices/{device_id}/token" not in await _paths(app_server):
        pytest.skip("needs POST /v1/admin/devices/{id}/token (re-issue, another branch)")
    device = await new_device(app_world)
    await app.open()
    await app.enrol_with_token(device, "u-ngoc")
    await app.wait_idle()
    reissued = await app_world.admin.http.post(f"/v1/admin/devices/{device.device_id}/token")
    assert reissued.status_code in (200, 201), reissued.text
    house = await app.add_premises("Nhà trọ Cấp Lại Mã")
    await app.wait_idle()
    assert "Thiết bị bị thu hồi" in await app.message() and await app.pending() == 1
    await app.page.goto(f"{app.base_url}/app/#sync")
    await app.page.click("[data-testid=re-enrol]")
    device.token = reissued.json()["token"]
    await app.enrol_with_token(device, "u-ngoc")
    await app.wait_idle()
    assert await app.pending() == 0
    assert (await server_records(app_world.supervisor))[house]["fields"]["name"] == "Nhà trọ Cấp Lại Mã"


async def _paths(server: AppServer) -> set[str]:
    """The routes this server has (enrolment and re-issue land from other branches)."""
    async with httpx.AsyncClient(base_url=server.url) as http:
        return set((await http.get("/schema/openapi.json")).json()["paths"])


async def test_a_phone_enrols_with_a_one_time_code_that_works_once(app: App, app_server: AppServer, app_world: World) -> None:
    if "/v1/enrol" not in await _paths(app_server):
        pytest.skip("needs POST /v1/enrol (enrolment codes, another branch)")
    device = await new_device(app_world)
    issued = await app_world.admin.http.post(f"/v1/admin/devices/{device.device_id}/enrolment")
    assert issued.status_code in (200, 201), issued.text
    code = issued.json()["code"]
    assert issued.json()["url"].endswith(f"/app/#enrol={code}")
    await app.page.goto(f"{app.base_url}/app/#enrol={code}")
    await app.page.wait_for_function("document.querySelector('#code') && document.querySelector('#code').value !== ''")
    await app.page.click("form:has(#code) button[type=submit]")
    await app.page.wait_for_selector("[data-testid=sync]")
    await app.wait_idle()
    meta = await app.page.evaluate("window.patrolApp.local.meta")
    assert meta["device_id"] == device.device_id and meta["last_sync"]["ok"] is True
    # the ward and the officer from the enrol answer's scope: nothing typed
    assert (meta["user_id"], meta["ward_id"], meta["scope"]["user_name"]) == ("u-ngoc", "lam-son", "Lê Văn Ngọc")
    assert await app.page.locator("[data-testid=ward]").inner_text() == "Phường Lam Sơn"

    second = await app.page.context.new_page()
    await second.goto(f"{app.base_url}/app/#enrol={code}")
    await second.wait_for_selector("#code")
    await second.click("form:has(#code) button[type=submit]")
    await second.wait_for_selector("#enrol-error:has-text('đã dùng')")
