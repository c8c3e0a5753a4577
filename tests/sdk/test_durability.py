"""Nothing is lost: an app killed mid-sync, and 10,000 records in one sync with bounded memory."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import signal
import sys
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from client_sdk import AsyncPatrolClient, WireOptions, new_id
from schemas import Check, Premises
from sync_server.loopback import free_port

from ..helpers import World
from .conftest import USERS, MakeClient

ROOT = Path(__file__).resolve().parents[2]
NOTE = "Kiểm tra đăng ký tạm trú, phòng cháy chữa cháy; chủ cơ sở ký cam kết. " * 16  # ~1.5 KB
STARTED = dt.datetime(2023, 6, 1, 8, tzinfo=dt.timezone(dt.timedelta(hours=7)))


async def test_an_app_killed_mid_sync_resumes_and_loses_nothing(make_client: MakeClient, world: World, tmp_path: Path) -> None:
    api = world.officer_a
    async with make_client(api) as h01:
        async with h01.batch():
            made = [(await h01.create(Premises(id=new_id(), ward_id="lam-son", name=f"Nhà trọ {n}", kind="boarding_house"))).id for n in range(400)]
    app = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.sdk._killed_app", world.base_url, str(api.token), str(api.device_id), USERS[str(api.device_id)],
        str(tmp_path / "lamson-h01.db"), cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )
    assert app.stdout is not None
    lines = []
    while (line := (await asyncio.wait_for(app.stdout.readline(), 60)).decode().strip()) != "applied-not-settled":
        assert line, f"the app ended early: {lines}"
        lines.append(line)
    app.send_signal(signal.SIGKILL)
    await app.wait()
    assert lines == ["pushed 50", "pushed 100"]
    server = {r["id"]: r["seq"] for r in await world.supervisor.pull_all()}
    assert len(server) == 150  # the third change set was applied; its answer never read
    async with make_client(api, name="lamson-h01") as again:
        assert await again.pending_count() == 300  # 100 settled before the kill
        report = await again.sync()
        assert report.pushed == 300 and await again.pending_count() == 0
    after = {r["id"]: r["seq"] for r in await world.supervisor.pull_all()}
    assert set(after) == set(made)
    assert all(after[i] == seq for i, seq in server.items())  # resent, answered, not applied again


async def _peak_of_sync(client: AsyncPatrolClient, premises_id: str, count: int) -> int:
    """Make ``count`` checks offline, then sync them; the traced memory peak of the sync."""
    async with client.batch():
        for n in range(count):
            await client.create(Check(id=new_id(), ward_id="lam-son", premises_id=premises_id, kind="residence", started_at=STARTED, notes=NOTE, residents_present=n % 9))
    tracemalloc.start()
    try:
        report = await client.sync()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (report.pushed, report.rejected, report.pulled) == (count, 0, count)
    assert await client.pending_count() == 0
    return peak


@contextlib.asynccontextmanager
async def server_process(db_url: str) -> AsyncIterator[str]:
    """The same store served by ``patrol-sync serve`` in its own process, so that the
    memory traced here is the client's alone."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sync_server", "serve", "--db", db_url, "--port", str(port), "--log-level", "warning", cwd=ROOT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(url + "/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        await proc.wait()


async def test_ten_thousand_local_records_sync_in_one_call_with_bounded_memory(
    make_client: MakeClient, world: World, db_url: str
) -> None:
    async with server_process(db_url) as url:
        # its own records pulled back too (skip_own off), so that the pull pages through them all
        async with make_client(world.officer_a, base_url=url, max_changes=250, page_size=250, wire=WireOptions(skip_own=False)) as h01:
            p = await h01.create(Premises(id=new_id(), ward_id="lam-son", name="Nhà trọ Lê Lợi", kind="boarding_house"))
            await h01.sync()
            small = await _peak_of_sync(h01, p.id, 1_000)
            large = await _peak_of_sync(h01, p.id, 10_000)
            assert await h01.count(Check) == 11_000
    # a change set and a page at a time: ten times the records, not ten times the memory
    data = 10_000 * len(NOTE.encode())
    assert large < small * 1.25 + 500_000, f"peak {large / 1e6:.1f} MB for 10,000 records, {small / 1e6:.1f} MB for 1,000"
    assert large < data / 2, f"peak {large / 1e6:.1f} MB for {data / 1e6:.1f} MB of notes"
