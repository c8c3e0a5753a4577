"""Console sign-in over HTTP (PROTOCOL.md sections 8 and 9), on both stores: passwords
set from the command line, the session cookie, idle expiry, sign-out, CSRF on every
form, the limit on guessing, officers kept out, and another ward's record out of reach."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from sync_server.loopback import LoopbackServer
from sync_server.services import console_sessions as console_auth
from sync_server.services.passwords import hash_password
from sync_server.settings import Settings
from sync_server.stores import store_for

from ..helpers import World, edit, stamp

PASSWORD = "mật-khẩu-Lam-Sơn-2023"


async def _set_password(settings: Settings, user: str, password: str = PASSWORD) -> None:
    store = store_for(settings.db_url)
    await store.open()
    try:
        await store.set_password(user, hash_password(password))
    finally:
        await store.close()


@pytest.fixture
async def browser(server: LoopbackServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as client:
        yield client


@pytest.fixture(autouse=True)
def quick_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console_auth, "_BASE_DELAY_S", 0.001)


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, user: str, password: str = PASSWORD) -> httpx.Response:
    form = await client.get("/console/signin")
    assert form.status_code == 200
    return await client.post("/console/signin", data={"csrf": _csrf(form.text), "user": user, "password": password, "next": "/console/"})


async def test_a_supervisor_signs_in_with_the_password_set_on_the_command_line(world: World, browser: httpx.AsyncClient, settings: Settings) -> None:
    command = [sys.executable, "-m", "sync_server", "admin", "user", "password", "u-minh", "--db", settings.db_url]
    done = subprocess.run(command, input=PASSWORD + "\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert (await browser.get("/console/")).headers["location"].startswith("/console/signin")
    answer = await sign_in(browser, "u-minh")
    assert answer.status_code == 303 and answer.headers["location"] == "/console/"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax") and "Path=/console" in cookie and "Secure" not in cookie
    overview = await browser.get("/console/")
    assert overview.status_code == 200 and "Tổng quan" in overview.text


def test_a_password_is_never_an_argument_and_a_short_one_is_refused(tmp_path: object) -> None:
    db = f"sqlite:///{tmp_path}/cli.db"
    assert subprocess.run([sys.executable, "-m", "sync_server", "admin", "bootstrap", "--db", db], capture_output=True, timeout=60).returncode == 0
    as_argument = subprocess.run([sys.executable, "-m", "sync_server", "admin", "user", "password", "admin", "hunter2hunter2", "--db", db], capture_output=True, text=True, timeout=60)
    assert as_argument.returncode == 2
    short = subprocess.run([sys.executable, "-m", "sync_server", "admin", "user", "password", "admin", "--db", db], input="short\n", capture_output=True, text=True, timeout=60)
    assert short.returncode == 1 and short.stderr.strip() == "patrol-sync: a password needs at least 10 characters"
    nobody = subprocess.run([sys.executable, "-m", "sync_server", "admin", "user", "password", "u-nobody", "--db", db], input=PASSWORD + "\n", capture_output=True, text=True, timeout=60)
    assert nobody.returncode == 1 and "u-nobody" in nobody.stderr and "Traceback" not in nobody.stderr


async def test_an_officer_cannot_sign_in_even_with_his_password(world: World, browser: httpx.AsyncClient, settings: Settings) -> None:
    await _set_password(settings, "u-ngoc")
    answer = await sign_in(browser, "u-ngoc")
    assert answer.status_code == 403 and "set-cookie" not in {k.lower() for k in answer.headers if "ps_session" in answer.headers.get(k, "")}
    assert "ps_session=" not in answer.headers.get("set-cookie", "")
    assert (await browser.get("/console/")).status_code == 303


async def test_a_disabled_supervisor_cannot_sign_in_and_his_open_session_ends(world: World, browser: httpx.AsyncClient, settings: Settings) -> None:
    await _set_password(settings, "u-minh")
    assert (await sign_in(browser, "u-minh")).status_code == 303
    assert (await browser.get("/console/")).status_code == 200
    assert (await world.admin.http.patch("/v1/admin/users/u-minh", json={"disabled": True})).status_code == 200
    assert (await browser.get("/console/")).status_code == 303  # back to the sign-in page
    async with httpx.AsyncClient(base_url=str(browser.base_url), follow_redirects=False, timeout=30) as fresh:
        assert (await sign_in(fresh, "u-minh")).status_code in (401, 403)
    assert (await world.admin.http.patch("/v1/admin/users/u-minh", json={"disabled": False})).status_code == 200
    async with httpx.AsyncClient(base_url=str(browser.base_url), follow_redirects=False, timeout=30) as again:
        assert (await sign_in(again, "u-minh")).status_code == 303


async def test_guessing_is_refused_after_five_failures_even_with_the_right_password(world: World, browser: httpx.AsyncClient, settings: Settings) -> None:
    await _set_password(settings, "u-minh")
    for _ in range(5):
        assert (await sign_in(browser, "u-minh", "wrong-password-123")).status_code == 401
    refused = await sign_in(browser, "u-minh")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert "ps_session=" not in refused.headers.get("set-cookie", "")
    assert (await sign_in(browser, "u-nobody", "whatever-123")).status_code == 429  # the address is limited too


async def test_a_form_without_its_csrf_token_is_refused(world: World, browser: httpx.AsyncClient, settings: Settings) -> None:
    await _set_password(settings, "u-minh")
    form = await browser.get("/console/signin")
    no_token = await browser.post("/console/signin", data={"user": "u-minh", "password": PASSWORD})
    assert no_token.status_code == 403 and "ps_session=" not in no_token.headers.get("set-cookie", "")
    assert form.status_code == 200
    assert (await sign_in(browser, "u-minh")).status_code == 303
    for path in ["/console/signout", "/console/conflicts/c-1/resolve", "/console/admin/password/u-minh", "/console/admin/revoke/lamson-h01"]:
        for data in ({}, {"csrf": "forged"}):
            answer = await browser.post(path, data={**data, "choice": "kept", "password": "new-password-123"})
            assert answer.status_code == 403, (path, answer.text[:200])
    assert (await browser.get("/console/")).status_code == 200  # still signed in: nothing was done


async def test_signing_out_or_idling_ends_the_session(world: World, browser: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    await _set_password(settings, "u-minh")
    assert (await sign_in(browser, "u-minh")).status_code == 303
    page = await browser.get("/console/")
    cookie = browser.cookies.get("ps_session")
    out = await browser.post("/console/signout", data={"csrf": _csrf(page.text)})
    assert out.status_code == 303
    async with httpx.AsyncClient(base_url=str(browser.base_url), cookies={"ps_session": cookie or ""}) as stolen:
        assert (await stolen.get("/console/")).status_code == 303
    assert (await sign_in(browser, "u-minh")).status_code == 303
    assert (await browser.get("/console/")).status_code == 200
    later = console_auth._clock() + console_auth.IDLE_S + 5
    monkeypatch.setattr(console_auth, "_clock", lambda: later)
    assert (await browser.get("/console/")).status_code == 303


async def test_another_wards_record_page_photo_and_list_are_out_of_reach(world: World, browser: httpx.AsyncClient, settings: Settings) -> None:
    response = await world.admin.http.post("/v1/admin/users", json={"id": "u-ls", "name": "Giám sát Lam Sơn", "role": "supervisor", "ward_ids": ["lam-son"]})
    assert response.status_code == 201
    await _set_password(settings, "u-ls")
    photo = b"\x89PNG\r\n\x1a\n" + b"phu-son evidence" * 10
    import hashlib

    blob = "sha256:" + hashlib.sha256(photo).hexdigest()
    assert (await world.officer_c.http.put(f"/v1/blobs/{blob}", content=photo)).status_code in (200, 201)
    ts = stamp("phuson-h01")
    fields = {"ward_id": "phu-son", "check_id": "c-x", "premises_id": "p-x", "category": "drugs", "status": "open", "description": "Phú Sơn only"}
    change = {"collection": "violations", "id": "ps-vio", "fields": {**{k: edit(v, ts) for k, v in fields.items()}, "photos": {"add": [blob], "remove": [], "ts": ts}}}
    await world.officer_c.push_ok([change])
    assert (await sign_in(browser, "u-ls")).status_code == 303
    record = await browser.get("/console/records/violations/ps-vio")
    assert record.status_code == 404 and "Phú Sơn only" not in record.text
    assert (await browser.get(f"/console/blobs/{blob}")).status_code in (403, 404)
    assert (await browser.get("/console/records/violations", params={"ward": "phu-son"})).status_code == 403
    assert "ps-vio" not in (await browser.get("/console/records/violations")).text
    assert "Phú Sơn only" not in (await browser.get("/console/export/violations", params={"format": "csv"})).content.decode("utf-8-sig")
    # the supervisor of both wards sees it, photo included
    await _set_password(settings, "u-minh")
    async with httpx.AsyncClient(base_url=str(browser.base_url), timeout=30) as other:
        assert (await sign_in(other, "u-minh")).status_code == 303
        page = await other.get("/console/records/violations/ps-vio")
        assert page.status_code == 200 and "Phú Sơn only" in page.text and f"/console/blobs/{blob}" in page.text
        image = await other.get(f"/console/blobs/{blob}")
        assert image.status_code == 200 and image.content == photo and image.headers["content-type"] == "image/png"


async def test_the_addresses_a_person_tries_lead_to_the_console_in_vietnamese_or_english(world: World, browser: httpx.AsyncClient, settings: Settings) -> None:
    root = await browser.get("/")
    assert root.status_code == 302 and root.headers["location"] == "/console/"
    assert (await browser.get("/console")).headers["location"].startswith("/console/signin")
    await _set_password(settings, "u-minh")
    assert (await sign_in(browser, "u-minh")).status_code == 303
    assert "<h1>Tổng quan</h1>" in (await browser.get("/console/")).text
    switched = await browser.get("/console/lang/en", params={"next": "/console/records/violations"})
    assert switched.status_code == 303 and switched.headers["location"] == "/console/records/violations"
    page = await browser.get("/console/records/violations")
    assert "<h1>Violations</h1>" in page.text and "Download Excel" in page.text
    assert (await browser.get("/console/lang/en", params={"next": "https://evil.example/"})).headers["location"] == "/console/"


async def test_the_live_stream_says_changed_when_a_device_pushes_and_ends_by_itself(
    world: World, browser: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sync_server.services import pulse as live

    monkeypatch.setattr(live, "LIFETIME_S", 3.0)
    assert (await browser.get("/console/live")).status_code == 303  # signed in only
    await _set_password(settings, "u-minh")
    assert (await sign_in(browser, "u-minh")).status_code == 303
    async with browser.stream("GET", "/console/live") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()
        assert "data: ready" in [await anext(lines) for _ in range(2)]
        ts = stamp("lamson-h01")
        fields = {"ward_id": "lam-son", "name": "Nhà trọ Hạc Thành", "kind": "boarding_house"}
        await world.officer_a.push_ok([{"collection": "premises", "id": "live-p", "fields": {k: edit(v, ts) for k, v in fields.items()}}])
        rest = [line async for line in lines]  # the stream ends after its lifetime
    assert "data: changed" in rest
