"""Screenshots of the officer's flow at phone size: ``python -m tests.app.screenshots``.

Writes ``docs/screenshots/app-*.png`` from a throwaway server with a few premises of
Lam Sơn ward, in real Chromium, offline for the work and online for the sync."""

from __future__ import annotations

import asyncio
import struct
import tempfile
import zlib
from pathlib import Path

from playwright.async_api import async_playwright

from sync_server.services import identity
from sync_server.stores import store_for

from ..helpers import make_world, premises
from .conftest import ARGS, CHROMIUM, PHONE, App, AppServer, new_device

OUT = Path(__file__).parent.parent.parent / "docs" / "screenshots"
HOUSES = [
    ("Nhà trọ Hoa Sen", "boarding_house", "12 Lê Lợi, Lam Sơn"),
    ("Nhà nghỉ Đồng Xuân", "lodging", "25 Trần Phú, Lam Sơn"),
    ("Karaoke Ánh Dương", "karaoke", "8 Nguyễn Trãi, Lam Sơn"),
    ("Nhà trọ Bà Lan", "boarding_house", "41 Hàng Đồng, Lam Sơn"),
    ("Chung cư Lam Sơn Xanh", "apartment_block", "3 Đại lộ Lê Lợi"),
]


def photo(width: int = 320, height: int = 240) -> bytes:
    """A stand-in camera shot: a wall and an extinguisher-red block."""
    rows = []
    for y in range(height):
        row = bytearray(b"\x00")
        for x in range(width):
            inside = 120 < x < 200 and 60 < y < 200
            row += bytes((200, 40, 40) if inside else (150 + y // 6, 140 + y // 8, 120 + x // 8))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b"")


async def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{tmp}/shots.db"
        store = store_for(db_url)
        await store.open()
        admin_token = await identity.bootstrap(store)
        await store.close()
        server = AppServer(db_url)
        await server.start()
        world = await make_world(server.url, admin_token)
        await world.officer_b.push_ok([premises(f"p{i}", "lam-son", "lamson-h02", name=n, kind=k) | {} for i, (n, k, _) in enumerate(HOUSES)])
        await world.officer_b.push_ok([{"collection": "premises", "id": f"p{i}", "fields": {"address": {"value": a, "ts": f"{1686200000100:013d}-0000-lamson-h02"}}} for i, (_, _, a) in enumerate(HOUSES)])
        device = await new_device(world)
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            context = await browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
            app = App(await context.new_page(), server.url)
            await app.open()
            await app.page.screenshot(path=OUT / "app-1-enrol.png")
            await app.enrol_with_token(device, "u-ngoc")
            await app.wait_idle()
            await context.set_offline(True)
            await app.open()
            for kind in ("residence", "fire_safety"):
                await app.record_check("p0", kind, "violations_found" if kind == "fire_safety" else "ok")
            await app.page.goto(f"{server.url}/app/#")
            await app.page.fill("#search", "nha tro")
            await app.page.wait_for_selector("[data-testid=premises-row]")
            await app.page.screenshot(path=OUT / "app-2-search-offline.png")
            await app.page.goto(f"{server.url}/app/#new/violations?premises=p0")
            await app.page.wait_for_selector("[data-testid=form-violations]")
            await app.page.select_option("#f-category", "fire_safety")
            await app.page.fill("#f-description", "Bình chữa cháy hết hạn kiểm định, lối thoát hiểm bị chắn")
            await app.page.fill("#f-fine_vnd", "1500000")
            await app.page.set_input_files("[data-testid=camera]", [{"name": "a.png", "mimeType": "image/png", "buffer": photo()}])
            await app.page.wait_for_selector("[data-testid=thumbs] img")
            await app.page.screenshot(path=OUT / "app-3-violation-form.png", full_page=True)
            await app.page.click("[data-testid=save]")
            await app.page.wait_for_selector("[data-testid=new-check]")
            await app.page.screenshot(path=OUT / "app-4-premises-pending.png")
            await context.set_offline(False)
            await app.page.wait_for_function("window.patrolApp.local.meta.last_sync && window.patrolApp.local.meta.last_sync.pushed > 0")
            await app.wait_idle()
            await app.page.goto(f"{server.url}/app/#sync")
            await app.page.wait_for_selector("[data-testid=pending-count]")
            await app.page.screenshot(path=OUT / "app-5-synced.png")
            # a change the server refused (made here past the form's own checks), opened to fix
            await app.page.evaluate("""window.patrolApp.local.create("checks", {ward_id: "lam-son", premises_id: "p1", kind: "residence",
                started_at: "2026-11-30T09:00:00+07:00", result: "ok", residents_present: -2})""")
            await app.sync()
            n = await app.page.evaluate("window.patrolApp.local.deadLetters().then((d) => d[0].n)")
            await app.page.goto(f"{server.url}/app/#fix/{n}")
            await app.page.wait_for_selector("[data-testid=refusal]")
            await app.page.screenshot(path=OUT / "app-6-fix-refused.png", full_page=True)
            await browser.close()
        for api in world.all():
            await api.aclose()
        await server.stop()


if __name__ == "__main__":
    asyncio.run(main())
