"""A poor link: a busy server's Retry-After honoured, a photo upload cut off resumed
where it stopped, and records pulled live while the app is open."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import struct
import time
import zlib

import pytest
from playwright.async_api import Request, Route

from ..helpers import World, premises
from .conftest import App, new_device, server_records

pytestmark = pytest.mark.asyncio(loop_scope="module")


def noisy_png(width: int, height: int) -> bytes:
    """Noise compresses badly: its JPEG needs several upload chunks."""
    raw = b"".join(b"\x00" + os.urandom(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b"")


async def enrolled(app: App, world: World) -> None:
    await app.open()
    await app.enrol_with_token(await new_device(world), "u-ngoc")
    await app.wait_idle()


async def test_a_push_from_a_kib_goes_gzipped_and_lands_and_a_small_one_goes_plain(app: App, app_world: World) -> None:
    await enrolled(app, app_world)
    pushes: list[Request] = []
    app.page.on("request", lambda r: pushes.append(r) if r.url.endswith("/v1/sync/push") else None)
    houses = await app.page.evaluate("""async () => {
        const ids = [];
        for (let i = 0; i < 8; i++) ids.push(await window.patrolApp.local.create("premises",
            {ward_id: "lam-son", name: `Nhà trọ Nén ${i}`, kind: "boarding_house", address: `${i} Đường Trần Phú, Phường Lam Sơn`}));
        return ids; }""")
    await app.sync()
    small = await app.add_premises("Nhà trọ Nhỏ")  # saved: synced at once, alone
    await app.wait_idle()
    assert len(pushes) == 2, [p.url for p in pushes]
    big, little = pushes
    assert (await big.all_headers()).get("content-encoding") == "gzip"
    body = big.post_data_buffer
    assert body is not None
    assert sorted(c["id"] for c in json.loads(gzip.decompress(body))["changes"]) == sorted(houses)
    assert "content-encoding" not in await little.all_headers()
    on_server = await server_records(app_world.supervisor)
    assert {*houses, small} <= set(on_server)
    assert on_server[houses[0]]["fields"]["address"] == "0 Đường Trần Phú, Phường Lam Sơn"


async def test_a_busy_server_is_tried_again_after_its_retry_after(app: App, app_world: World) -> None:
    await enrolled(app, app_world)
    answered: list[float] = []

    async def busy_once(route: Route) -> None:
        answered.append(time.monotonic())
        if len(answered) == 1:
            await route.fulfill(status=503, headers={"Retry-After": "1", "Content-Type": "application/problem+json"}, body='{"type":"about:blank","title":"busy","status":503,"detail":"busy"}')
        else:
            await route.continue_()

    await app.page.route("**/v1/sync/push", busy_once)
    house = await app.add_premises("Nhà trọ Bận Rộn")
    await app.page.wait_for_function("window.patrolApp.syncer.running === null && window.patrolApp.local.meta.last_sync.pushed === 1")
    assert len(answered) == 2 and answered[1] - answered[0] >= 1.0
    assert house in await server_records(app_world.supervisor)


async def test_a_photo_upload_cut_off_resumes_where_it_stopped(app: App, app_world: World) -> None:
    await enrolled(app, app_world)
    ranges: list[str] = []
    cut = [True]

    async def cut_after_first_chunk(route: Route) -> None:
        if route.request.method == "PUT":
            ranges.append(route.request.headers.get("content-range", "whole"))
            if cut[0] and not ranges[-1].startswith("bytes 0-"):
                await route.abort("connectionreset")
                return
        await route.continue_()

    await app.page.route("**/v1/blobs/**", cut_after_first_chunk)
    house = await app.add_premises("Nhà trọ Mất Sóng")
    await app.record_check(house)
    # the check synced before the photo exists: a sync started by the check's save but
    # still ending a long poll would otherwise meet the photo, fail on it and keep the check
    await app.sync()
    await app.page.evaluate("window.patrolApp.syncer.attempts = 1")
    await app.record_violation(house, [noisy_png(1200, 900)], category="fire_safety")
    await app.wait_idle()
    assert await app.pending() == 1  # the violation waits for its photo
    first_try = list(ranges)
    assert first_try[0].startswith("bytes 0-") and len(first_try) == 2

    cut[0] = False
    await app.page.evaluate("window.patrolApp.syncer.attempts = 6")
    await app.sync()
    assert await app.pending() == 0
    resumed = ranges[len(first_try) :]
    assert resumed[0].startswith("bytes 262144-"), resumed  # not from 0 again
    [violation] = [r for r in (await server_records(app_world.supervisor)).values() if r["collection"] == "violations" and r["fields"]["premises_id"] == house]
    [photo] = violation["fields"]["photos"]
    stored = await app_world.supervisor.http.get(f"/v1/blobs/{photo}")
    assert photo == "sha256:" + hashlib.sha256(stored.content).hexdigest() and len(stored.content) > 262144


async def test_records_arrive_while_the_app_is_open_without_a_tap(app: App, app_world: World) -> None:
    await enrolled(app, app_world)
    polls: list[str] = []
    app.page.on("request", lambda r: polls.append(r.url) if "/v1/sync/pull" in r.url and "wait=" in r.url else None)
    await app.page.evaluate("s => { s.features = {wait: true, enrol: false}; s.idlePauseMs = 100; return s.live(); }", await app.page.evaluate_handle("window.patrolApp.syncer"))
    # the other officer pushes once a long poll is out, so that the record comes by it (a
    # push answered before that could reach the phone by a sync still running, no poll done)
    for _ in range(200):
        if polls:
            break
        await asyncio.sleep(0.05)
    assert polls, "the app sent no long poll"
    await app_world.officer_b.push_ok([premises("live-1", "lam-son", "lamson-h02", name="Nhà trọ Trực Tuyến")])
    await app.page.wait_for_function("window.patrolApp.local.get('premises', 'live-1').then(Boolean)", polling=100)
    pulls = await app.page.evaluate("performance.getEntriesByType('resource').filter((e) => e.name.includes('/v1/sync/pull') && e.name.includes('wait=')).length")
    assert pulls >= 1


async def test_a_push_whose_answer_was_lost_is_sent_again_as_is_after_a_reload(app: App, app_world: World) -> None:
    await enrolled(app, app_world)
    bodies: list[str] = []

    async def lose_the_answer(route: Route) -> None:
        bodies.append(route.request.post_data or "")
        await route.fetch()  # the server applies it ...
        await route.abort("connectionreset")  # ... and the answer never reaches the phone

    await app.page.route("**/v1/sync/push", lose_the_answer)
    await app.page.evaluate("window.patrolApp.syncer.attempts = 1")
    await app.page.context.set_offline(True)
    house = await app.add_premises("Nhà trọ Mất Trả Lời")
    await app.page.context.set_offline(False)
    await app.wait_idle()
    await app.sync()
    assert len(bodies) >= 1 and await app.pending() == 1
    await app.page.unroute("**/v1/sync/push")
    resent: list[str] = []
    app.page.on("request", lambda r: resent.append(r.post_data or "") if r.url.endswith("/v1/sync/push") else None)
    await app.page.reload()
    await app.page.wait_for_function("window.patrolApp && window.patrolApp.local")
    await app.wait_idle()
    await app.sync()
    assert await app.pending() == 0
    assert resent[0] == bodies[0]  # the same change set id and body: the server's stored answer
    history = await app_world.supervisor.http.get(f"/v1/records/premises/{house}/history")
    assert history.status_code == 200 and len(history.json()["edits"]) == 1
