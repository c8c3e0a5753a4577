"""sync() when things go wrong: lost answers, flaky networks, poison changes,
a revoked device, a server restored from backup."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
import pytest

from client_sdk import AuthError, InvalidRequestError, RetryPolicy, ServerResetError, TransportError, new_id
from schemas import Check, NewWard, Premises

from ..helpers import World
from .conftest import Fault, MakeClient, Sleeps, transport_of

Forwarder = Callable[[Fault | None], httpx.AsyncClient]


def premises(name: str = "Nhà trọ Lê Lợi", ward: str = "lam-son", **extra: Any) -> Premises:
    return Premises(id=new_id(), ward_id=ward, name=name, kind="boarding_house", **extra)


def on(path: str, *answers: str | None) -> Fault:
    """Fail the first requests to ``path`` as listed (then let them through)."""
    queue = list(answers)

    async def fault(request: httpx.Request, n: int) -> str | None:
        if request.url.path == path and queue:
            return queue.pop(0)
        return None

    return fault


async def history(world: World, collection: str, record_id: str) -> list[dict[str, Any]]:
    response = await world.supervisor.http.get(f"/v1/records/{collection}/{record_id}/history")
    assert response.status_code == 200, response.text
    return response.json()["edits"]  # type: ignore[no-any-return]


async def test_an_answer_lost_after_the_server_applied_a_change_set_is_retried_without_a_duplicate(
    make_client: MakeClient, world: World, forward: Forwarder, sleeps: Sleeps
) -> None:
    http = forward(on("/v1/sync/push", "after"))
    async with make_client(world.officer_a, http=http) as h01:
        p = await h01.create(premises(rooms=3))
        report = await h01.sync()
        assert (report.pushed, report.retries, report.changesets) == (1, 1, 1)
        assert await h01.pending_count() == 0
    pushes = [r for r in transport_of(http).seen if r.url.path == "/v1/sync/push"]
    assert len(pushes) == 2 and pushes[0].content == pushes[1].content  # the same change set, byte for byte
    assert len(await history(world, "premises", p.id)) == 1  # applied once
    assert len(sleeps.delays) == 1


async def test_network_errors_and_5xx_are_retried_with_growing_jittered_delays(
    make_client: MakeClient, world: World, forward: Forwarder, sleeps: Sleeps
) -> None:
    policy = RetryPolicy(attempts=6, base_delay=0.1, max_delay=10)
    http = forward(on("/v1/sync/push", "before", "503", "500", "after"))
    async with make_client(world.officer_a, http=http, retry=policy) as h01:
        await h01.create(premises())
        report = await h01.sync()
    assert report.retries == 4 and report.pushed == 1
    assert [d <= 0.1 * 2**k for k, d in enumerate(sleeps.delays)] == [True] * 4
    assert len(set(sleeps.delays)) == 4  # jittered


@pytest.mark.parametrize("status", [429, 408])  # 408: the server found the body too slow to arrive
async def test_retry_after_from_the_server_is_honoured(
    make_client: MakeClient, world: World, forward: Forwarder, sleeps: Sleeps, status: int
) -> None:
    class RetryAfter(httpx.AsyncBaseTransport):
        def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
            self.inner = inner
            self.calls = 0

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            self.calls += 1
            if self.calls == 1:
                return httpx.Response(status, headers={"Retry-After": "3"}, json={"type": "t", "title": "Too many", "status": status, "detail": "slow down"})
            return await self.inner.handle_async_request(request)

    inner = transport_of(forward(None))
    async with httpx.AsyncClient(transport=RetryAfter(inner)) as http:
        async with make_client(world.officer_a, http=http, retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=60)) as h01:
            await h01.sync()
    assert sleeps.delays == [3.0]


async def test_a_request_failing_after_every_retry_raises_with_the_partial_report(
    make_client: MakeClient, world: World, forward: Forwarder
) -> None:
    down = True

    async def network(request: httpx.Request, n: int) -> str | None:
        return "before" if down and request.url.path == "/v1/sync/push" else None

    async with make_client(world.officer_a, http=forward(network), max_changes=2) as h01:
        for n in range(3):
            await h01.create(premises(f"Cơ sở {n}"))
        with pytest.raises(TransportError, match="after 5 attempts") as failure:
            await h01.sync()
        assert failure.value.report is not None and failure.value.report.pushed == 0
        assert await h01.pending_count() == 3
        down = False
        report = await h01.sync()
        assert report.pushed == 3 and await h01.pending_count() == 0


async def test_a_4xx_answer_is_not_retried(make_client: MakeClient, world: World, forward: Forwarder, sleeps: Sleeps) -> None:
    async with make_client(world.officer_a, http=forward(on("/v1/sync/pull", "400"))) as h01:
        with pytest.raises(InvalidRequestError, match="400"):
            await h01.sync()
    assert sleeps.delays == []


async def test_a_poison_change_goes_to_the_dead_letters_while_the_rest_syncs(
    h01: Any, world: World
) -> None:
    good = [await h01.create(premises(f"Cơ sở {n}")) for n in range(3)]
    outside = await h01.create(premises("Nhà nghỉ Phú Sơn", ward="phu-son"))  # not this officer's ward
    report = await h01.sync()
    assert (report.pushed, report.rejected) == (3, 1)
    [letter] = await h01.dead_letters()
    assert (letter.collection, letter.record_id) == ("premises", outside.id)
    assert [e.code for e in letter.errors] == ["forbidden"]
    assert letter.change["fields"]["name"]["value"] == "Nhà nghỉ Phú Sơn"
    assert await h01.pending_count() == 0
    assert await h01.get(Premises, outside.id) is None  # it never existed anywhere but here
    server = {r["id"] for r in await world.supervisor.pull_all()}
    assert {p.id for p in good} <= server and outside.id not in server
    # the app fixes it and sends it again
    await h01.requeue_dead_letter(letter.n, ward_id="lam-son")
    assert await h01.dead_letters() == []
    again = await h01.sync()
    assert (again.pushed, again.rejected) == (1, 0)
    fixed = await h01.get(Premises, outside.id)
    assert fixed is not None and fixed.ward_id == "lam-son"


async def test_text_over_the_servers_byte_limit_is_a_dead_letter_not_a_blocked_outbox(h01: Any) -> None:
    await h01.create(premises("Cơ sở 1"))
    bulky = await h01.create(premises("Cơ sở 2"))
    note = "ệ" * 30_000  # 30,000 characters pass the type; 90,000 UTF-8 bytes exceed 64 KiB
    c = await h01.create(Check(id=new_id(), ward_id="lam-son", premises_id=bulky.id, kind="residence", started_at=dt.datetime(2023, 6, 1, tzinfo=dt.UTC), notes=note))
    report = await h01.sync()
    assert (report.pushed, report.rejected) == (2, 1)
    [letter] = await h01.dead_letters()
    assert letter.record_id == c.id and letter.errors[0].code == "too_large"
    await h01.drop_dead_letter(letter.n)
    assert await h01.dead_letters() == []


async def test_a_change_set_refused_whole_is_split_until_the_poison_stands_alone(
    make_client: MakeClient, world: World, forward: Forwarder
) -> None:
    poison: list[str] = []

    async def refuse_poison(request: httpx.Request, n: int) -> str | None:
        if request.url.path == "/v1/sync/push" and poison[0].encode() in request.content:
            return "413"
        return None

    http = forward(refuse_poison)
    async with make_client(world.officer_a, http=http) as h01:
        made = [await h01.create(premises(f"Cơ sở {n}")) for n in range(8)]
        poison.append(made[5].id)
        report = await h01.sync()
        assert (report.pushed, report.rejected) == (7, 1)
        [letter] = await h01.dead_letters()
        assert letter.record_id == made[5].id
    sizes = [len(msgspec.json.decode(r.content)["changes"]) for r in transport_of(http).seen if r.url.path == "/v1/sync/push"]
    assert sizes[0] == 8 and 1 in sizes


async def test_a_changeset_id_the_server_knows_with_another_body_is_sent_again_under_a_new_id(
    make_client: MakeClient, world: World, forward: Forwarder
) -> None:
    http = forward(on("/v1/sync/push", "409"))
    async with make_client(world.officer_a, http=http) as h01:
        await h01.create(premises())
        report = await h01.sync()
    assert report.pushed == 1 and [w.code for w in report.warnings] == ["changeset_reused"]
    ids = [msgspec.json.decode(r.content)["changeset_id"] for r in transport_of(http).seen if r.url.path == "/v1/sync/push"]
    assert len(ids) == 2 and ids[0] != ids[1]


async def test_a_revoked_device_gets_a_clear_error_and_keeps_its_edits(h01: Any, world: World) -> None:
    await h01.create(premises())
    response = await world.admin.http.delete("/v1/admin/devices/lamson-h01")
    assert response.status_code == 204
    with pytest.raises(AuthError, match="401.*revoked") as failure:
        await h01.sync()
    assert failure.value.status == 401
    assert await h01.pending_count() == 1


async def test_a_server_that_keeps_answering_410_raises_server_reset_error(make_client: MakeClient, world: World, forward: Forwarder) -> None:
    async with make_client(world.officer_a, http=forward(on("/v1/sync/pull", "410", "410"))) as h01:
        with pytest.raises(ServerResetError):
            await h01.sync()



async def test_a_refused_request_raises_invalid_request_error_carrying_the_servers_details(make_client: MakeClient, world: World) -> None:
    async with make_client(world.admin) as admin:
        with pytest.raises(InvalidRequestError) as failure:
            await admin.create_ward(NewWard(id="not a valid id!", name="Phường Lam Sơn"))
    error = failure.value
    assert error.status == 400
    assert [(e.field, e.code) for e in error.errors] == [("id", "invalid")]
    assert error.errors == error.problem.errors and "id: invalid" in str(error)
