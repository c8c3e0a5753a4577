"""The SDK over an emulated 2G link (``tests/linkemu.py``): slow each way, a round trip
of delay, connections cut at random bytes. Faster than the field (256 kbit/s) so the
tests stay short; ``bench/field_link.py`` runs the field's 64 kbit/s."""

from __future__ import annotations

import datetime as dt
import hashlib
import urllib.parse
from typing import Any

import httpx

from client_sdk import AsyncPatrolClient, RetryPolicy, SyncReport, new_id
from schemas import Check, Premises, Violation

from ..helpers import World
from ..linkemu import Link
from .conftest import MakeClient
from .test_sync import device_state, server_state

RETRY = RetryPolicy(attempts=6, base_delay=0.01, max_delay=0.05)


def _port(world: World) -> int:
    port = urllib.parse.urlsplit(world.base_url).port
    assert port is not None
    return port


async def _day(client: AsyncPatrolClient, officer: str, checks: int = 40, violations: int = 15) -> list[str]:
    """An officer's day: premises checked, some with a violation."""
    made: list[str] = []
    start = dt.datetime(2023, 6, 8, 8, 0, tzinfo=dt.UTC)
    for n in range(checks):
        p = await client.create(Premises(id=new_id(), ward_id="lam-son", name=f"Cơ sở {officer} số {n}", kind="shop", address=f"{n} Lê Lợi"))
        c = await client.create(
            Check(id=new_id(), ward_id="lam-son", premises_id=p.id, kind="residence", started_at=start + dt.timedelta(minutes=10 * n), notes="Kiểm tra định kỳ")
        )
        made += [p.id, c.id]
        if n < violations:
            v = await client.create(
                Violation(id=new_id(), ward_id="lam-son", check_id=c.id, premises_id=p.id, category="fire_safety", status="open", description="Thiếu bình chữa cháy")
            )
            made.append(v.id)
    return made


async def _sync_until_done(client: AsyncPatrolClient, rounds: int = 25) -> list[SyncReport]:
    reports: list[SyncReport] = []
    for _ in range(rounds):
        try:
            reports.append(await client.sync())
        except Exception as exc:  # a sync cut short: the next one resumes
            report = getattr(exc, "report", None)
            if report is None:
                raise
            continue
        if await client.pending_count() == 0 and not await client.unsent_blobs():
            return reports
    raise AssertionError(f"still not synced after {rounds} rounds")


async def test_a_day_syncs_over_a_link_that_cuts_exchanges_and_nothing_is_lost_or_doubled(make_client: MakeClient, world: World) -> None:
    async with make_client(world.officer_b, name="colleague") as colleague:
        theirs = await _day(colleague, "b", checks=20, violations=15)
        await colleague.sync()
    async with Link(_port(world), up_kbit=256, down_kbit=256, rtt_ms=100, cut_mean_bytes=20_000, seed=7) as link:
        async with make_client(world.officer_a, base_url=link.url, retry=RETRY, max_changes=10, page_size=20) as h01:
            mine = await _day(h01, "a")
            await _sync_until_done(h01)
            on_server = await server_state(world, "lam-son")
            assert {i for _, i in on_server} == set(mine) | set(theirs)
            assert await device_state(h01) == on_server
        assert link.cuts >= 2, (link.cuts, link.connections)
    # each record was applied once: one edit in its history, however often its change set was resent
    for record_id in mine[:: max(1, len(mine) // 8)]:
        collection = next(c for c, i in on_server if i == record_id)
        history = (await world.supervisor.http.get(f"/v1/records/{collection}/{record_id}/history")).json()
        assert len(history["edits"]) == 1, history


async def test_a_photo_resumes_over_cuts_while_the_days_records_are_already_on_the_server(make_client: MakeClient, world: World) -> None:
    big = b"\xff\xd8\xff\xe0" + hashlib.shake_256(b"a scene photo").digest(200 * 1024)
    photo_id = "sha256:" + hashlib.sha256(big).hexdigest()
    async with Link(_port(world), up_kbit=256, down_kbit=256, rtt_ms=100, cut_mean_bytes=80_000, seed=3) as link:
        async with make_client(world.officer_a, base_url=link.url, retry=RETRY) as h01:
            made = await _day(h01, "a", checks=10, violations=3)
            await h01.add(Violation, made[2], "photos", await h01.put_blob(big))
            reports = await _sync_until_done(h01)
        assert link.cuts >= 1
    assert reports[0].pushed == 23  # the records went on the first sync that got through
    assert (await world.officer_b.http.get(f"/v1/blobs/{photo_id}")).content == big
    on_server = await server_state(world, "lam-son")
    assert {i for _, i in on_server} == set(made)


async def test_an_answer_crosses_the_link_compressed_whenever_the_client_offers_it(make_client: MakeClient, world: World) -> None:
    async with make_client(world.officer_a) as h01:
        await _day(h01, "a", checks=20, violations=5)
        await h01.sync()
    sizes: dict[str, int] = {}
    async with Link(_port(world), up_kbit=2048, down_kbit=2048, rtt_ms=20) as link:
        assert world.officer_b.token is not None
        headers: dict[str, Any] = {"Authorization": f"Bearer {world.officer_b.token}"}
        async with httpx.AsyncClient(base_url=link.url, headers=headers) as http:
            for offered in ("identity", "gzip", "br"):
                before = link.down_bytes
                response = await http.get("/v1/sync/pull", headers={"Accept-Encoding": offered})
                assert len(response.json()["records"]) == 45
                sizes[offered] = link.down_bytes - before
    assert sizes["gzip"] * 4 < sizes["identity"] and sizes["br"] * 4 < sizes["identity"], sizes


async def test_an_idle_sync_crosses_the_link_in_under_300_bytes_each_way(make_client: MakeClient, world: World) -> None:
    async with Link(_port(world), up_kbit=2048, down_kbit=2048, rtt_ms=20) as link:
        async with make_client(world.officer_a, base_url=link.url) as h01:
            await h01.sync()
            await _day(h01, "a", checks=3, violations=1)
            await h01.sync()
            before = link.counters()
            report = await h01.sync()
            up, down = (after - was for after, was in zip(link.counters(), before, strict=True))
    assert (report.pushed, report.pulled) == (0, 0)
    assert 0 < up < 300 and 0 < down < 300, (up, down)
