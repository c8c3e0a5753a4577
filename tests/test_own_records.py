"""Pulls that leave out the device's own records (``own=skip``, docs/WIRE.md): a record
that stands wholly as the pulling device's edits made it is not sent back, and every
record something else touched still is: another device's edit, another device's set
element, a server re-stamp, a conflict resolution. From no cursor, everything comes."""

from __future__ import annotations

import time
from typing import Any

from .helpers import Api, World, edit, premises, stamp, violation

A, B = "lamson-h01", "lamson-h02"


async def _pull(api: Api, cursor: str | None, own: str | None = "skip", **params: Any) -> tuple[list[str], str]:
    """Every page after ``cursor``: the ids pulled and the cursor at the end."""
    ids: list[str] = []
    while True:
        query = {"cursor": cursor or "", **params}
        if own is not None:
            query["own"] = own
        response = await api.http.get("/v1/sync/pull", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        ids += [r["id"] for r in page["records"]]
        cursor = page["cursor"]
        if not page["more"]:
            assert cursor is not None
            return ids, cursor


async def _cursor_now(api: Api) -> str:
    return (await _pull(api, None, own=None))[1]


async def test_a_pull_with_own_skip_leaves_out_the_records_the_device_made_alone(world: World) -> None:
    start = await _cursor_now(world.officer_a)
    await world.officer_a.push_ok([premises(f"a{n}", "lam-son", A) for n in range(3)])
    await world.officer_b.push_ok([premises("b1", "lam-son", B)])
    assert (await _pull(world.officer_a, start))[0] == ["b1"]
    assert (await _pull(world.officer_b, start))[0] == ["a0", "a1", "a2"]


async def test_a_client_that_does_not_ask_still_gets_its_own_records(world: World) -> None:
    start = await _cursor_now(world.officer_a)
    await world.officer_a.push_ok([premises("a1", "lam-son", A)])
    for own in (None, "send"):
        assert (await _pull(world.officer_a, start, own=own))[0] == ["a1"]


async def test_a_device_pulling_from_no_cursor_gets_everything_even_its_own_records(world: World) -> None:
    await world.officer_a.push_ok([premises("a1", "lam-son", A), premises("a2", "lam-son", A)])
    assert sorted((await _pull(world.officer_a, None))[0]) == ["a1", "a2"]


async def test_a_page_of_only_own_records_is_empty_but_moves_the_cursor_past_them(world: World) -> None:
    start = await _cursor_now(world.officer_a)
    await world.officer_a.push_ok([premises(f"a{n}", "lam-son", A) for n in range(5)])
    response = await world.officer_a.http.get("/v1/sync/pull", params={"cursor": start, "own": "skip", "limit": 2})
    page = response.json()
    assert page["records"] == [] and page["more"] is True
    ids, end = await _pull(world.officer_a, start, limit=2)
    assert ids == []
    await world.officer_b.push_ok([premises("b1", "lam-son", B)])
    assert (await _pull(world.officer_a, end, own=None))[0] == ["b1"]


async def test_a_record_another_device_edited_comes_back_until_the_device_overwrites_every_trace(world: World) -> None:
    first = await world.officer_a.push_ok([premises("p1", "lam-son", A)])
    base = first["results"][0]["record"]["stamps"]["name"]
    start = await _cursor_now(world.officer_a)
    answer = await world.officer_b.push_ok([{"collection": "premises", "id": "p1", "fields": {"name": edit("Nhà trọ Hùng", stamp(B), base)}}])
    theirs = answer["results"][0]["record"]["stamps"]["name"]
    ids, after_b = await _pull(world.officer_a, start)
    assert ids == ["p1"]
    await world.officer_a.push_ok([{"collection": "premises", "id": "p1", "fields": {"name": edit("Nhà trọ Ngọc", stamp(A), theirs)}}])
    assert (await _pull(world.officer_a, after_b))[0] == []  # wholly its own again, and it had the answer


async def test_another_devices_set_removal_stamped_below_the_devices_later_add_comes_back(world: World) -> None:
    ms = 1_686_200_000_000
    made = premises("p1", "lam-son", A, ms=ms)
    made["fields"]["tags"] = {"add": ["karaoke"], "remove": [], "ts": stamp(A, ms)}
    await world.officer_a.push_ok([made])
    await world.officer_a.push_ok([{"collection": "premises", "id": "p1", "fields": {"tags": {"add": ["bar"], "remove": [], "ts": stamp(A, ms + 20)}}}])
    start = await _cursor_now(world.officer_a)
    removal = {"tags": {"add": [], "remove": ["karaoke"], "ts": stamp(B, ms + 10), "base": stamp(A, ms)}}
    answer = await world.officer_b.push_ok([{"collection": "premises", "id": "p1", "fields": removal}])
    record = answer["results"][0]["record"]
    assert record["fields"]["tags"] == ["bar"] and record["stamps"]["tags"] == stamp(A, ms + 20)  # every field stamp still A's
    assert (await _pull(world.officer_a, start))[0] == ["p1"]


async def test_a_change_the_server_restamped_for_clock_skew_comes_back(world: World) -> None:
    start = await _cursor_now(world.officer_a)
    ahead = int(time.time() * 1000) + 86_400_000
    answer = await world.officer_a.push_ok([premises("p1", "lam-son", A, ms=ahead)])
    assert [w["code"] for w in answer["warnings"]] == ["clock_skew"]
    assert (await _pull(world.officer_a, start))[0] == ["p1"]


async def test_a_conflict_resolution_on_the_devices_own_record_comes_back(world: World) -> None:
    answer = await world.officer_a.push_ok([violation("v1", "lam-son", A, ms=1_686_200_000_000, fine_vnd=500_000)])
    base = answer["results"][0]["record"]["stamps"]["fine_vnd"]
    await world.officer_b.push_ok([{"collection": "violations", "id": "v1", "fields": {"fine_vnd": edit(2_000_000, stamp(B, 1_686_300_000_500), base)}}])
    answer = await world.officer_a.push_ok([{"collection": "violations", "id": "v1", "fields": {"fine_vnd": edit(1_000_000, stamp(A, 1_686_300_000_000), base)}}])
    (conflict,) = answer["conflicts"]
    again = await world.officer_a.push_ok(
        [{"collection": "violations", "id": "v1", "fields": {"fine_vnd": edit(1_000_000, stamp(A, 1_686_400_000_000), stamp(B, 1_686_300_000_500))}}]
    )
    assert all(ts.endswith(A) for ts in again["results"][0]["record"]["stamps"].values())  # wholly A's again
    start = await _cursor_now(world.officer_a)
    assert (await _pull(world.officer_a, start))[0] == []
    resolved = await world.supervisor.http.post(f"/v1/conflicts/{conflict['id']}/resolve", json={"choice": "value", "value": 3_000_000})
    assert resolved.status_code == 200, resolved.text
    assert (await _pull(world.officer_a, start))[0] == ["v1"]


async def test_a_long_poll_is_not_ended_by_the_devices_own_push_and_ends_past_it(world: World) -> None:
    start = await _cursor_now(world.officer_a)
    await world.officer_a.push_ok([premises("a1", "lam-son", A)])
    response = await world.officer_a.http.get("/v1/sync/pull", params={"cursor": start, "own": "skip", "wait": 1})
    page = response.json()
    assert page["records"] == [] and page["more"] is False
    assert (await _pull(world.officer_a, page["cursor"], own=None))[0] == []
