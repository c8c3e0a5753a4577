"""A burst never topples or hangs the server: excess load gets 503 or 429 with
Retry-After at once, and what was accepted is applied whole."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import pytest

from sync_server.services.sync import SyncService
from sync_server.services.writer import PushWriter
from sync_server.settings import Settings
from sync_server.stores import StoreUnavailable

from ..helpers import World, new_id, premises


@pytest.fixture
def settings(db_url: str, request: pytest.FixtureRequest) -> Settings:
    """The root ``settings``, with this test's ``@pytest.mark.settings(...)``."""
    marker = request.node.get_closest_marker("settings")
    return Settings(db_url=db_url, **(marker.kwargs if marker else {}))


def assert_shed(response: httpx.Response, *statuses: int) -> None:
    assert response.status_code in statuses, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) >= 1


@pytest.mark.settings(max_inflight=4)
async def test_a_burst_past_the_in_flight_limit_gets_503_with_retry_after_and_the_server_stays_up(world: World) -> None:
    callers = [world.officer_a, world.officer_b, world.officer_c, world.supervisor]
    started = time.monotonic()
    async with asyncio.timeout(60):  # never a hang
        answers = await asyncio.gather(*(callers[n % 4].http.get("/v1/sync/pull") for n in range(200)))
    statuses = [r.status_code for r in answers]
    assert set(statuses) <= {200, 503}
    assert statuses.count(503) > 0 and statuses.count(200) >= 4
    for response in answers:
        if response.status_code == 503:
            assert_shed(response, 503)
    assert time.monotonic() - started < 30
    async with httpx.AsyncClient(base_url=world.base_url) as anyone:
        assert (await anyone.get("/healthz")).status_code == 200
        metrics = (await anyone.get("/metrics")).text
    assert f'patrol_sync_http_shed_total{{reason="in_flight"}} {float(statuses.count(503))}' in metrics
    assert (await world.officer_a.http.get("/v1/sync/pull")).status_code == 200


@pytest.mark.settings(max_inflight_per_device=2)
async def test_one_device_past_its_share_gets_429_and_the_others_are_served(world: World) -> None:
    async with asyncio.timeout(60):
        mine = asyncio.gather(*(world.officer_a.http.get("/v1/sync/pull") for _ in range(30)))
        others = asyncio.gather(*(api.http.get("/v1/sync/pull") for api in (world.officer_b, world.officer_c)))
        answers, theirs = await asyncio.gather(mine, others)
    statuses = [r.status_code for r in answers]
    assert set(statuses) <= {200, 429} and 429 in statuses and 200 in statuses
    for response in answers:
        if response.status_code == 429:
            assert_shed(response, 429)
    assert [r.status_code for r in theirs] == [200, 200]


@pytest.mark.settings(max_queued_changes=60)
async def test_a_full_push_queue_answers_503_and_applies_only_what_it_accepted(world: World) -> None:
    bodies = [[premises(new_id(), "lam-son", "lamson-h01") for _ in range(20)] for _ in range(30)]
    async with asyncio.timeout(120):
        answers = await asyncio.gather(*(world.officer_a.push(changes, changeset_id=f"burst-{n}") for n, changes in enumerate(bodies)))
    statuses = [r.status_code for r in answers]
    assert set(statuses) <= {200, 503} and 503 in statuses and 200 in statuses
    stored = {r["id"] for r in await world.officer_a.pull_all()}
    for response, changes in zip(answers, bodies, strict=True):
        ids = {c["id"] for c in changes}
        if response.status_code == 200:
            assert ids <= stored
        else:
            assert_shed(response, 503)
            assert not ids & stored  # refused before anything was queued
    for n, (response, changes) in enumerate(zip(answers, bodies, strict=True)):  # the retries, later, go through
        if response.status_code == 503:
            assert (await world.officer_a.push(changes, changeset_id=f"burst-{n}")).status_code == 200
    assert len({r["id"] for r in await world.officer_a.pull_all()}) == 600


@pytest.mark.settings(push_timeout_s=0.2)
async def test_a_push_not_committed_in_time_answers_503_and_its_retry_gets_the_one_answer(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    write = PushWriter._write

    async def slow_write(self: PushWriter, *args: Any) -> Any:
        await asyncio.sleep(0.6)  # a store that stalls (a disk, a lock held elsewhere)
        return await write(self, *args)

    monkeypatch.setattr(PushWriter, "_write", slow_write)
    change = premises(new_id(), "lam-son", "lamson-h01")
    started = time.monotonic()
    late = await world.officer_a.push([change], changeset_id="slow-1")
    assert time.monotonic() - started < 0.55
    assert_shed(late, 503)
    await asyncio.sleep(0.8)  # it commits meanwhile
    monkeypatch.setattr(PushWriter, "_write", write)
    retry = await world.officer_a.push([change], changeset_id="slow-1")
    assert retry.status_code == 200
    again = await world.officer_a.push([change], changeset_id="slow-1")
    assert again.content == retry.content
    history = await world.supervisor.http.get(f"/v1/records/premises/{change['id']}/history")
    assert len(history.json()["edits"]) == 1


@pytest.mark.settings(request_timeout_s=0.3)
async def test_a_request_with_no_answer_by_its_deadline_gets_503_not_a_hang(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    pull = SyncService.pull

    async def stuck_pull(self: SyncService, *args: Any, **kwargs: Any) -> bytes:
        await asyncio.sleep(30)
        return await pull(self, *args, **kwargs)

    monkeypatch.setattr(SyncService, "pull", stuck_pull)
    started = time.monotonic()
    response = await world.officer_a.http.get("/v1/sync/pull")
    assert time.monotonic() - started < 5
    assert_shed(response, 503)
    monkeypatch.setattr(SyncService, "pull", pull)
    assert (await world.officer_a.http.get("/v1/sync/pull")).status_code == 200


async def test_a_push_while_the_store_is_down_answers_503_logs_one_line_and_its_retry_applies(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    write = PushWriter._write

    async def down(self: PushWriter, *args: Any) -> Any:
        raise StoreUnavailable("the database is unavailable: DeadlockDetectedError: deadlock detected")

    monkeypatch.setattr(PushWriter, "_write", down)
    change = premises(new_id(), "lam-son", "lamson-h01")
    with caplog.at_level(logging.WARNING, logger="patrol_sync"):
        refused = await world.officer_a.push([change], changeset_id="down-1")
    assert_shed(refused, 503)
    assert "Traceback" not in refused.text
    lines = [r for r in caplog.records if "down-1" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING and lines[0].exc_info is None  # expected, not a crash
    monkeypatch.setattr(PushWriter, "_write", write)
    assert (await world.officer_a.push([change], changeset_id="down-1")).status_code == 200
    history = await world.supervisor.http.get(f"/v1/records/premises/{change['id']}/history")
    assert len(history.json()["edits"]) == 1
