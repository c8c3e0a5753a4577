"""Fixtures for the handheld app in real headless Chromium (Playwright).

One server and one browser per test module (module event loop): the server listens on
a fixed port for the whole module, so a restart (a restore from backup) keeps the app's
origin, and with it its IndexedDB and service worker. Each test gets a fresh browser
context (an empty phone) and its own devices, made by the admin on the shared world.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from sync_server.loopback import LoopbackServer, free_port
from sync_server.services import identity
from sync_server.settings import Settings
from sync_server.stores import store_for

from ..helpers import Api, World, make_world

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = {"width": 390, "height": 844}
USERS = {"lamson-h01": "u-ngoc", "lamson-h02": "u-hung", "phuson-h01": "u-lan"}
_serial = itertools.count(1)


class AppServer(LoopbackServer):
    """A real server on a port of its own, restartable on the same port (loopback: a
    secure context, as the service worker needs); ``admin_token`` set by the fixture."""

    admin_token: str

    def __init__(self, db_url: str) -> None:
        # long polls of at most 2 s, and a stop that waits at most 1 s for a long poll the
        # closed phone left open
        super().__init__(Settings(db_url=db_url, blob_dir="", max_wait_s=2.0), port=free_port(), graceful_shutdown_s=1)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AppServer]:
    db_url = f"sqlite:///{tmp_path_factory.mktemp('app') / 'patrol-sync.db'}"
    server = AppServer(db_url)
    store = store_for(db_url)
    await store.open()
    try:
        server.admin_token = await identity.bootstrap(store)
    finally:
        await store.close()
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app_world(app_server: AppServer) -> AsyncIterator[World]:
    world = await make_world(app_server.url, app_server.admin_token)
    yield world
    for api in world.all():
        await api.aclose()


async def new_device(world: World, user: str = "u-ngoc") -> Api:
    """A new handheld of `user`, with its token (each test its own, so none share a log)."""
    device = f"app-{user}-{next(_serial)}"
    response = await world.admin.http.post("/v1/admin/devices", json={"device_id": device, "user_id": user})
    assert response.status_code == 201, response.text
    return Api(world.base_url, response.json()["token"], device)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (Debian: apt-get install chromium; .ci/run installs it)")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        await b.close()


@pytest_asyncio.fixture(loop_scope="module")
async def phone(browser: Browser) -> AsyncIterator[BrowserContext]:
    """An empty phone: its own storage, service workers and network switch."""
    context = await browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    yield context
    await context.close()


class App:
    """The officer's hands on the app (one page)."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.errors: list[str] = []
        page.set_default_timeout(15_000)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    async def open(self, hash_: str = "") -> None:
        await self.page.goto(f"{self.base_url}/app/{hash_}")
        await self.page.wait_for_function("window.patrolApp && window.patrolApp.local")

    async def enrol_with_token(self, api: Api, user: str, ward: str = "lam-son") -> None:
        """Type the device id and token; the app learns ``user`` and ``ward`` from the server."""
        form = self.page.locator("form", has=self.page.locator("input[name=token]"))
        assert api.device_id is not None and api.token is not None
        await form.locator("input[name=device_id]").fill(api.device_id)
        await form.locator("input[name=token]").fill(api.token)
        await form.locator("button[type=submit]").click()
        await self.page.wait_for_selector("[data-testid=sync]")
        learnt = await self.page.evaluate("[window.patrolApp.local.meta.user_id, window.patrolApp.local.meta.ward_id]")
        assert learnt == [user, ward], learnt

    async def wait_idle(self) -> None:
        """Until no sync runs (one started by an edit or by the network coming back)."""
        await self.page.wait_for_function("!window.patrolApp.syncer.running && !window.patrolApp.busy")

    async def sync(self) -> None:
        await self.wait_idle()
        await self.page.click("[data-testid=sync]")
        await self.page.wait_for_timeout(50)
        await self.wait_idle()

    async def pending(self) -> int:
        return int(await self.page.evaluate("window.patrolApp.local.pendingCount()"))

    async def message(self) -> str:
        return await self.page.locator("[data-testid=message]").inner_text()

    async def add_premises(self, name: str, kind: str = "boarding_house", address: str = "") -> str:
        await self.page.goto(f"{self.base_url}/app/#new/premises")
        await self.page.wait_for_selector("[data-testid=form-premises]")
        await self.page.fill("#f-name", name)
        await self.page.select_option("#f-kind", kind)
        if address:
            await self.page.fill("#f-address", address)
        await self.page.click("[data-testid=save]")
        await self.page.wait_for_selector("[data-testid=new-check]")
        return self.page.url.rsplit("/", 1)[1]

    async def record_check(self, premises_id: str, kind: str = "residence", result: str = "ok") -> None:
        await self.page.goto(f"{self.base_url}/app/#new/checks?premises={premises_id}")
        await self.page.wait_for_selector("[data-testid=form-checks]")
        await self.page.select_option("#f-kind", kind)
        await self.page.select_option("#f-result", result)
        await self.page.click("[data-testid=save]")
        await self.page.wait_for_selector("[data-testid=new-check]")

    async def record_violation(self, premises_id: str, photos: list[bytes], fine: int | None = None, **selects: str) -> None:
        await self.page.goto(f"{self.base_url}/app/#new/violations?premises={premises_id}")
        await self.page.wait_for_selector("[data-testid=form-violations]")
        for name, value in selects.items():
            await self.page.select_option(f"#f-{name}", value)
        if fine is not None:
            await self.page.fill("#f-fine_vnd", str(fine))
        if photos:
            files: list[Any] = [{"name": f"photo-{i}.png", "mimeType": "image/png", "buffer": b} for i, b in enumerate(photos)]
            await self.page.set_input_files("[data-testid=camera]", files)
            await self.page.wait_for_function(f"document.querySelectorAll('[data-testid=thumbs] img').length === {len(photos)}")
        await self.page.click("[data-testid=save]")
        await self.page.wait_for_selector("[data-testid=new-check]")

    async def edit(self, collection: str, record_id: str, fills: dict[str, str] | None = None, selects: dict[str, str] | None = None) -> None:
        await self.page.goto(f"{self.base_url}/app/#edit/{collection}/{record_id}")
        await self.page.wait_for_selector(f"[data-testid=form-{collection}]")
        for name, value in (fills or {}).items():
            await self.page.fill(f"#f-{name}", value)
        for name, value in (selects or {}).items():
            await self.page.select_option(f"#f-{name}", value)
        await self.page.click("[data-testid=save]")
        await self.page.wait_for_function("!location.hash.startsWith('#edit')")

    async def get(self, collection: str, record_id: str) -> dict[str, Any] | None:
        return await self.page.evaluate("([c, i]) => window.patrolApp.local.get(c, i)", [collection, record_id])  # type: ignore[no-any-return]

    async def list(self, collection: str) -> list[dict[str, Any]]:
        return list(await self.page.evaluate(f"window.patrolApp.local.list('{collection}')"))


async def open_app(context: BrowserContext, server: AppServer) -> App:
    return App(await context.new_page(), server.url)


@pytest_asyncio.fixture(loop_scope="module")
async def app(phone: BrowserContext, app_server: AppServer) -> AsyncIterator[App]:
    page = await phone.new_page()
    a = App(page, app_server.url)
    yield a
    assert not a.errors, a.errors


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A small solid-colour PNG, the camera's stand-in."""
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


async def server_records(api: Api) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in await api.pull_all()}


__all__ = ["App", "AppServer", "new_device", "open_app", "png", "server_records"]
