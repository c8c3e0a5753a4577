"""The console's admin actions over HTTP (PROTOCOL.md sections 2, 7 and 9), on both
stores: disable and enable a user, re-issue a device's token (shown once), and an
enrolment code with its QR code; admins only, CSRF on every form. One check in
Chromium: the enrolment page draws its QR code."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sync_server.loopback import LoopbackServer
from sync_server.services import console_sessions as console_auth
from sync_server.settings import Settings

from ..helpers import World
from .conftest import bootstrap, set_password
from .test_signin import PASSWORD, _csrf, _set_password, sign_in


@pytest.fixture(autouse=True)
def quick_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console_auth, "_BASE_DELAY_S", 0.001)


@pytest.fixture
async def admin(world: World, server: LoopbackServer, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A browser signed in to the console as the bootstrap admin."""
    await _set_password(settings, "admin")
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as client:
        assert (await sign_in(client, "admin")).status_code == 303
        yield client


async def _form(client: httpx.AsyncClient, page: str, action: str) -> httpx.Response:
    """Post the form of ``page`` whose action is ``action``, with the page's CSRF token."""
    shown = await client.get(page)
    assert shown.status_code == 200 and f'action="{action}"' in shown.text, shown.text[:300]
    return await client.post(action, data={"csrf": _csrf(shown.text)})


async def _pull_status(base_url: str, token: str) -> int:
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
        return (await api.get("/v1/sync/pull", params={"cursor": ""})).status_code


async def test_an_admin_disables_a_supervisor_whose_token_and_sign_in_stop_until_enabled(
    world: World, admin: httpx.AsyncClient, settings: Settings
) -> None:
    await _set_password(settings, "u-minh")
    assert world.supervisor.token is not None
    assert await _pull_status(world.base_url, world.supervisor.token) == 200
    done = await _form(admin, "/console/admin/users", "/console/admin/disable/u-minh")
    assert done.status_code == 303
    users = await admin.get(done.headers["location"])
    assert "Đã khoá người dùng u-minh" in users.text and 'action="/console/admin/enable/u-minh"' in users.text
    assert await _pull_status(world.base_url, world.supervisor.token) == 401
    async with httpx.AsyncClient(base_url=world.base_url, follow_redirects=False, timeout=30) as minh:
        assert (await sign_in(minh, "u-minh")).status_code in (401, 403)
    assert (await _form(admin, "/console/admin/users", "/console/admin/enable/u-minh")).status_code == 303
    assert await _pull_status(world.base_url, world.supervisor.token) == 200
    async with httpx.AsyncClient(base_url=world.base_url, follow_redirects=False, timeout=30) as minh:
        assert (await sign_in(minh, "u-minh", PASSWORD)).status_code == 303


async def test_the_last_admin_is_not_disabled_and_the_users_page_says_why(world: World, admin: httpx.AsyncClient) -> None:
    refused = await _form(admin, "/console/admin/users", "/console/admin/disable/admin")
    assert refused.status_code == 303
    page = await admin.get(refused.headers["location"])
    assert page.status_code == 200 and 'role="alert"' in page.text
    assert "Không thể khoá quản trị viên cuối cùng đang hoạt động" in page.text
    assert (await world.admin.http.get("/v1/admin/users")).status_code == 200  # the admin still works


async def test_a_reissued_token_is_shown_once_works_and_the_old_one_stops(world: World, admin: httpx.AsyncClient) -> None:
    old = world.officer_a.token
    assert old is not None and await _pull_status(world.base_url, old) == 200
    answer = await _form(admin, "/console/admin/devices", "/console/admin/reissue/lamson-h01")
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    match = re.search(r"<code data-token>([^<]+)</code>", answer.text)
    assert match, answer.text[:500]
    token = html.unescape(match.group(1))
    assert "Mã truy cập cũ của thiết bị này đã ngừng hoạt động" in answer.text
    assert await _pull_status(world.base_url, token) == 200
    assert await _pull_status(world.base_url, old) == 401
    assert token not in (await admin.get("/console/admin/devices")).text  # shown once, never again


async def test_the_enrolment_page_shows_a_code_and_qr_that_enrol_the_device_once(world: World, admin: httpx.AsyncClient) -> None:
    answer = await _form(admin, "/console/admin/devices", "/console/admin/enrolment/lamson-h02")
    assert answer.status_code == 200
    code = re.search(r"<code class=\"secret\" data-code>([0-9A-Z-]+)</code>", answer.text)
    assert code, answer.text[:500]
    url = f"{world.base_url}/app/#enrol={code.group(1)}"
    assert f'href="{url}"' in answer.text
    assert re.search(r'<svg[^>]*class="qr"', answer.text) and "<script" not in answer.text.split("<main", 1)[-1].split("</main>")[0]
    assert re.search(r"data-expires>\d\d/\d\d/\d{4} \d\d:\d\d<", answer.text)
    async with httpx.AsyncClient(base_url=world.base_url, timeout=30) as anonymous:
        enrolled = await anonymous.post("/v1/enrol", json={"code": code.group(1)})
        assert enrolled.status_code == 200 and enrolled.json()["device_id"] == "lamson-h02"
        assert (await anonymous.post("/v1/enrol", json={"code": code.group(1)})).status_code == 404
    assert await _pull_status(world.base_url, enrolled.json()["token"]) == 200


async def test_a_supervisor_gets_403_on_every_admin_action(world: World, settings: Settings, server: LoopbackServer) -> None:
    await _set_password(settings, "u-minh")
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as minh:
        assert (await sign_in(minh, "u-minh")).status_code == 303
        csrf = _csrf((await minh.get("/console/")).text)
        for path in ["/console/admin/disable/u-ngoc", "/console/admin/enable/u-ngoc", "/console/admin/reissue/lamson-h01", "/console/admin/enrolment/lamson-h01"]:
            answer = await minh.post(path, data={"csrf": csrf})
            assert answer.status_code == 403, (path, answer.text[:200])
    assert world.officer_a.token is not None and await _pull_status(world.base_url, world.officer_a.token) == 200


async def test_an_admin_action_without_its_csrf_token_is_refused(world: World, admin: httpx.AsyncClient) -> None:
    for path in ["/console/admin/disable/u-minh", "/console/admin/enable/u-minh", "/console/admin/reissue/lamson-h01", "/console/admin/enrolment/lamson-h01"]:
        for data in ({}, {"csrf": "forged"}):
            answer = await admin.post(path, data=data)
            assert answer.status_code == 403 and "data-token" not in answer.text and "data-code" not in answer.text, path
    assert world.supervisor.token is not None and await _pull_status(world.base_url, world.supervisor.token) == 200
    assert world.officer_a.token is not None and await _pull_status(world.base_url, world.officer_a.token) == 200

async def test_the_wards_and_teams_pages_list_them_by_name(world: World, admin: httpx.AsyncClient) -> None:
    wards = await admin.get("/console/admin/wards")
    assert wards.status_code == 200 and "Phường Lam Sơn" in wards.text and "Phường Phú Sơn" in wards.text
    teams = await admin.get("/console/admin/teams")
    assert teams.status_code == 200 and "Tổ tuần tra 1" in teams.text and "Tổ tuần tra Phú Sơn" in teams.text


async def test_revoking_a_device_from_the_devices_page_stops_its_token(world: World, admin: httpx.AsyncClient) -> None:
    token = world.officer_c.token
    assert token is not None and await _pull_status(world.base_url, token) == 200
    answer = await _form(admin, "/console/admin/devices", "/console/admin/revoke/phuson-h01")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/console/admin/devices?done=")
    assert await _pull_status(world.base_url, token) == 401
    assert 'action="/console/admin/revoke/phuson-h01"' not in (await admin.get("/console/admin/devices")).text


async def test_an_admin_sets_a_users_password_and_he_signs_in_with_it(world: World, server: LoopbackServer, admin: httpx.AsyncClient) -> None:
    shown = await admin.get("/console/admin/users")
    assert 'action="/console/admin/password/u-minh"' in shown.text
    answer = await admin.post("/console/admin/password/u-minh", data={"csrf": _csrf(shown.text), "password": "Mật-khẩu-mới-của-Minh-1"})
    assert answer.status_code == 303 and answer.headers["location"].startswith("/console/admin/users?done=")
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as minh:
        assert (await sign_in(minh, "u-minh", "Mật-khẩu-mới-của-Minh-1")).status_code == 303


async def test_an_unknown_device_or_user_is_the_consoles_not_found_page(world: World, admin: httpx.AsyncClient) -> None:
    csrf = _csrf((await admin.get("/console/admin/users")).text)
    for path in ["/console/admin/reissue/no-such-device", "/console/admin/enrolment/no-such-device", "/console/admin/disable/no-such-user"]:
        answer = await admin.post(path, data={"csrf": csrf})
        assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html"), (path, answer.text[:200])




def test_in_chromium_the_enrolment_button_shows_the_code_and_an_svg_qr_code(chromium: Any, tmp_path: Path) -> None:
    settings = Settings(db_url=f"sqlite:///{tmp_path / 'server.db'}")
    admin_token = bootstrap(settings.db_url)
    set_password(settings.db_url, "admin", PASSWORD)
    server = LoopbackServer(settings)
    server.start_thread()
    context = chromium.new_context(viewport={"width": 360, "height": 800}, locale="vi-VN")
    try:
        page = context.new_page()
        page.goto(server.url + "/console/admin/devices")
        page.fill("input[name=user]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/console/admin/devices")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.goto(server.url + "/console/admin/users")
        assert page.locator('form[action="/console/admin/disable/admin"] button').is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.goto(server.url + "/console/admin/devices")
        page.locator('tr[data-device="admin-cli"] form[action="/console/admin/enrolment/admin-cli"] button').click()
        page.wait_for_url("**/console/admin/enrolment/admin-cli")
        code = page.locator("[data-code]").inner_text()
        assert re.fullmatch(r"[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}", code)
        qr = page.locator("svg.qr")
        assert qr.count() == 1 and qr.bounding_box()["width"] >= 100
        with httpx.Client(base_url=server.url, timeout=30) as anonymous:
            assert anonymous.post("/v1/enrol", json={"code": code}).json()["device_id"] == "admin-cli"
        assert page.evaluate("document.documentElement.scrollWidth") <= 360  # nothing scrolls sideways on a phone
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=30) as old:
            assert old.get("/v1/admin/users").status_code == 401  # exchanging the code replaced the old token
    finally:
        context.close()
        server.stop_thread()

