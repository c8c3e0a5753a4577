"""The SDK's wire options (``WireOptions``) against a real server: gzip, minimal answers,
compact stamps, MessagePack, and the plain protocol still working."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import pytest

from client_sdk import AsyncPatrolClient, WireOptions, new_id
from schemas import Check, Premises

from ..helpers import World
from .conftest import MakeClient, transport_of
from .test_sync import device_state, server_state


def premises(name: str, **extra: Any) -> Premises:
    return Premises(id=new_id(), ward_id="lam-son", name=name, kind="boarding_house", **extra)


async def _day(client: AsyncPatrolClient) -> None:
    for n in range(5):
        p = await client.create(premises(f"Nhà trọ số {n}", tags=["karaoke", f"t{n}"], rooms=n))
        await client.create(Check(id=new_id(), ward_id="lam-son", premises_id=p.id, kind="residence", started_at=dt.datetime(2023, 6, 1, 8, n, tzinfo=dt.UTC)))


@pytest.mark.parametrize(
    "wire",
    [WireOptions(), WireOptions(msgpack=True), WireOptions(msgpack_answers=True), WireOptions.plain()],
    ids=["default", "msgpack", "msgpack-answers", "plain"],
)
async def test_after_a_push_alone_the_device_holds_exactly_what_the_server_holds(
    make_client: MakeClient, world: World, forward: Any, wire: WireOptions
) -> None:
    http = forward(None)
    async with make_client(world.officer_a, http=http, wire=wire) as h01:
        await _day(h01)
        report = await h01.sync(pull=False)
        assert report.pushed == 10
        assert await device_state(h01) == await server_state(world, "lam-son")
    (push,) = [r for r in transport_of(http).seen if r.url.path == "/v1/sync/push"]
    assert (push.headers.get("prefer") == "return=minimal") is wire.minimal
    assert (push.headers.get("content-encoding") == "gzip") is wire.gzip
    assert push.headers["content-type"] == ("application/msgpack" if wire.msgpack else "application/json")
    assert (push.headers.get("accept") == "application/msgpack") is wire.msgpack_answers


async def test_a_minimal_answer_is_much_smaller_than_the_default_one(world: World) -> None:
    ts = "1686200000000-0000-lamson-h01"
    changes = [
        {"collection": "premises", "id": f"p{n}", "fields": {name: {"value": value, "ts": ts} for name, value in values.items()}}
        for n in range(20)
        for values in [{"ward_id": "lam-son", "name": f"Nhà {n}", "kind": "shop", "created_by": "u-ngoc", "created_at": "2023-06-08T04:53:20Z"}]
    ]
    body = {"device_id": "lamson-h01", "changeset_id": "m1", "changes": changes}
    minimal = await world.officer_a.http.post("/v1/sync/push", json=body, headers={"Prefer": "return=minimal"})
    whole = await world.officer_a.http.post("/v1/sync/push", json=body)
    assert len(minimal.content) * 3 < len(whole.content)
    assert all("record" not in r for r in minimal.json()["results"])


async def test_a_device_pulls_compact_stamps_into_the_same_state_as_full_ones(make_client: MakeClient, world: World) -> None:
    async with make_client(world.officer_a) as h01:
        await _day(h01)
        await h01.sync()
        first = (await h01.find(Premises))[0]
        await h01.update(Premises, first.id, rooms=40)
        await h01.sync()
    async with make_client(world.officer_b, name="compact") as compact, make_client(world.officer_b, name="full", wire=WireOptions.plain()) as full:
        await compact.sync()
        await full.sync()
        assert await device_state(compact) == await device_state(full) == await server_state(world, "lam-son")
        stamps = [msgspec.json.encode(r.stamps) async for r in compact.pulled_records()]
        assert stamps == [msgspec.json.encode(r.stamps) async for r in full.pulled_records()]


async def test_a_device_pulls_back_none_of_its_own_records_and_still_holds_what_the_server_holds(make_client: MakeClient, world: World) -> None:
    async with make_client(world.officer_a) as h01, make_client(world.officer_b) as h02:
        await h01.sync()  # enrolled: it has a cursor (from none, a pull brings everything)
        await _day(h01)
        first = await h01.sync()
        assert (first.pushed, first.pulled) == (10, 0)  # (its own ten came back before own=skip)
        assert (await h02.sync()).pulled == 10
        mine = await h01.find(Premises)
        await h02.update(Premises, mine[0].id, name="Nhà trọ đổi tên")
        await h02.remove(Premises, mine[1].id, "tags", "karaoke")
        await h02.create(premises("Nhà trọ của Hùng"))
        await h02.sync()
        await h01.update(Premises, mine[2].id, rooms=12)
        second = await h01.sync()
        assert second.pulled == 3  # what the colleague touched or made, not its own edit
        assert await device_state(h01) == await server_state(world, "lam-son")
        assert (await h01.get(Premises, mine[1].id)).tags == ["t1"]


async def test_an_sdk_without_skip_own_pulls_its_own_records_back(make_client: MakeClient, world: World) -> None:
    async with make_client(world.officer_a, wire=WireOptions(skip_own=False)) as h01:
        await h01.sync()
        await _day(h01)
        assert (await h01.sync()).pulled == 10
        assert await device_state(h01) == await server_state(world, "lam-son")


async def test_a_device_that_lost_its_local_database_pulls_all_its_own_records_again(make_client: MakeClient, world: World) -> None:
    async with make_client(world.officer_a) as h01:
        await _day(h01)
        await h01.sync()
    async with make_client(world.officer_a, name="wiped") as again:
        assert (await again.sync()).pulled == 10
        assert await device_state(again) == await server_state(world, "lam-son")


async def test_a_device_pulls_messagepack_answers_into_the_same_state_as_json_ones(make_client: MakeClient, world: World) -> None:
    async with make_client(world.officer_a) as h01:
        await _day(h01)
        await h01.sync()
    async with make_client(world.officer_b, name="packed", wire=WireOptions(msgpack_answers=True)) as packed, make_client(world.officer_b, name="json") as json:
        assert (await packed.sync()).pulled == (await json.sync()).pulled == 10
        assert await device_state(packed) == await device_state(json) == await server_state(world, "lam-son")
        assert [r.stamps async for r in packed.pulled_records()] == [r.stamps async for r in json.pulled_records()]
