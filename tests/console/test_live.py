"""The console's live streams (``sync_server/services/pulse.py``): a change committed by
another server process reaches a page's stream, and a session holds only a few streams
at once, outside the requests slots every other request shares."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from sync_server.loopback import LoopbackServer
from sync_server.services import pulse as live
from sync_server.settings import Settings

from .. import storedb
from ..helpers import World, bootstrap_admin, edit, make_world, stamp
from ..serving import ServerProcess
from .test_signin import _set_password, sign_in


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Three request slots: fewer than one session's streams."""
    return Settings(db_url=db_url, blob_dir="" if db_url.startswith("sqlite:") else str(tmp_path / "blobs"), stamps_after_registration=False, max_inflight=3)


def _premises(record_id: str) -> list[dict[str, object]]:
    ts = stamp("lamson-h01")
    fields = {"ward_id": "lam-son", "name": "Nhà trọ Hạc Thành", "kind": "boarding_house"}
    return [{"collection": "premises", "id": record_id, "fields": {k: edit(v, ts) for k, v in fields.items()}}]


_held: list[AsyncIterator[str]] = []  # a line iterator dropped would close its stream


async def _open(client: httpx.AsyncClient, stack: AsyncExitStack) -> httpx.Response:
    response = await stack.enter_async_context(client.stream("GET", "/console/live"))
    if response.status_code == 200:
        lines = response.aiter_lines()
        assert "data: ready" in [await anext(lines) for _ in range(2)]
        _held.append(lines)
    return response


async def test_a_session_holds_a_few_live_streams_and_they_take_no_request_slot(world: World, server: LoopbackServer, settings: Settings) -> None:
    await _set_password(settings, "u-minh")
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as tab, AsyncExitStack() as stack:
        assert (await sign_in(tab, "u-minh")).status_code == 303
        streams = [await _open(tab, stack) for _ in range(live.PER_SESSION)]
        assert [s.status_code for s in streams] == [200] * live.PER_SESSION  # more than the 3 request slots
        assert (await tab.get("/console/")).status_code == 200  # the slots are free for pages
        assert (await world.officer_a.http.get("/v1/sync/pull")).status_code == 200
        refused = await _open(tab, stack)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as other:
            assert (await sign_in(other, "u-minh")).status_code == 303
            async with other.stream("GET", "/console/live") as own:
                assert own.status_code == 200  # another session has a budget of its own
        await streams[0].aclose()
        for _ in range(100):  # the server sees the client go at its next write or keep-alive
            again = await _open(tab, stack)
            if again.status_code == 200:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("a closed stream's place was never given back")
        _held.clear()


# -- two server processes on one PostgreSQL database ----------------------------------


@pytest.fixture
def pg_url(postgres: storedb.Cluster) -> Iterator[str]:
    url = postgres.new_database()
    yield url
    postgres.drop_database(url)


async def _serve(pg_url: str, folder: Path, stack: AsyncExitStack) -> str:
    server = ServerProcess(pg_url, folder / f"server-{len(list(folder.glob('server-*.log')))}.log", args=("--blobs", str(folder / "blobs")), log_level="warning")
    await server.start(timeout=30)
    stack.callback(server.stop)
    return server.url


@pytest.fixture
async def two_servers(pg_url: str, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    async with AsyncExitStack() as stack:
        yield await _serve(pg_url, tmp_path, stack), await _serve(pg_url, tmp_path, stack)


@pytest.mark.slow
async def test_a_change_committed_by_another_server_process_reaches_the_live_stream(two_servers: tuple[str, str], pg_url: str) -> None:
    here, there = two_servers
    world = await make_world(there, await bootstrap_admin(pg_url))  # every device talks to the other process
    try:
        await _set_password(Settings(db_url=pg_url, blob_dir="unused"), "u-minh")
        async with httpx.AsyncClient(base_url=here, follow_redirects=False, timeout=30) as browser:
            assert (await sign_in(browser, "u-minh")).status_code == 303
            async with browser.stream("GET", "/console/live") as stream:
                lines = stream.aiter_lines()
                assert "data: ready" in [await anext(lines) for _ in range(2)]
                await world.officer_a.push_ok(_premises("from-the-other-process"))
                async with asyncio.timeout(10):  # a poll (0.5 s) and the settling (0.3 s), not the 30 s fallback
                    while await anext(lines) != "data: changed":
                        pass
    finally:
        for api in world.all():
            await api.aclose()
