"""sync() against a real server: push, pull, convergence, bases, conflicts, bounds."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import httpx
import msgspec

from client_sdk import AsyncPatrolClient, SyncProgress, new_id
from schemas import Check, Premises, Violation

from ..helpers import World
from .conftest import Fault, MakeClient, transport_of

VN = dt.timezone(dt.timedelta(hours=7))
DAY_MS = 86_400_000

State = dict[tuple[str, str], tuple[int, bool, dict[str, Any]]]


async def server_state(world: World, ward: str) -> State:
    records = await world.supervisor.pull_all()
    return {(r["collection"], r["id"]): (r["seq"], r["deleted"], r["fields"]) for r in records if r["ward_id"] == ward}


async def device_state(client: AsyncPatrolClient) -> State:
    return {(r.collection, r.id): (r.seq, r.deleted, r.fields) async for r in client.pulled_records()}


def premises(name: str = "Nhà trọ Lê Lợi", **extra: Any) -> Premises:
    return Premises(id=new_id(), ward_id="lam-son", name=name, kind="boarding_house", **extra)


async def test_a_record_made_offline_reaches_another_device(h01: AsyncPatrolClient, h02: AsyncPatrolClient) -> None:
    p = await h01.create(premises(address="12 Lê Lợi, phường Lam Sơn", tags=["karaoke"]))
    report = await h01.sync()
    assert (report.pushed, report.rejected, report.changesets) == (1, 0, 1)
    assert await h01.pending_count() == 0
    pulled = await h02.sync()
    assert pulled.pulled == 1
    assert await h02.get(Premises, p.id) == p


async def test_two_devices_editing_the_same_records_offline_converge_to_the_servers_state(
    h01: AsyncPatrolClient, h02: AsyncPatrolClient, world: World
) -> None:
    shared = [await h01.create(premises(f"Nhà trọ số {n}", rooms=n, tags=["a"])) for n in range(6)]
    await h01.sync()
    await h02.sync()
    # both offline now; they edit the same records
    await h01.update(Premises, shared[0].id, rooms=10, owner_name="Nguyễn Văn An")
    await h02.update(Premises, shared[0].id, rooms=20, address="5 Trần Phú")
    await h01.add(Premises, shared[1].id, "tags", "b")
    await h02.remove(Premises, shared[1].id, "tags", "a")
    await h02.add(Premises, shared[1].id, "tags", "c")
    await h01.delete(Premises, shared[2].id)
    await h02.update(Premises, shared[2].id, active=False)
    await h02.delete(Premises, shared[3].id)
    await h01.update(Premises, shared[4].id, name="Nhà nghỉ Hạc Thành", kind="lodging")
    mine = await h02.create(premises("Karaoke Phố Cũ"))
    await h02.sync()
    await h01.sync()
    await h02.sync()  # the second device now sees the first one's edits
    state = await server_state(world, "lam-son")
    assert await device_state(h01) == state == await device_state(h02)
    for p in [*shared, mine]:
        assert await h01.get(Premises, p.id) == await h02.get(Premises, p.id)
    tags = await h01.get(Premises, shared[1].id)
    assert tags is not None and tags.tags == ["b", "c"]


async def test_a_device_reads_its_pending_edits_over_what_it_pulled(h01: AsyncPatrolClient, h02: AsyncPatrolClient) -> None:
    p = await h01.create(premises(rooms=1))
    await h01.sync()
    await h02.sync()
    await h02.update(Premises, p.id, address="7 Hàng Đồng")  # pending on h02
    await h01.update(Premises, p.id, rooms=2)
    await h01.sync()
    await h02.sync(push=False)  # a newer base arrives under the pending edit
    got = await h02.get(Premises, p.id)
    assert got is not None and (got.rooms, got.address) == (2, "7 Hàng Đồng")
    assert await h02.pending_count() == 1


async def test_an_edit_after_pulling_anothers_edit_is_not_a_conflict(h01: AsyncPatrolClient, h02: AsyncPatrolClient) -> None:
    p = await h01.create(premises(rooms=1))
    await h01.sync()
    await h02.sync()
    await h02.update(Premises, p.id, rooms=2)
    await h02.sync()
    await h01.sync()
    await h01.update(Premises, p.id, rooms=3)
    report = await h01.sync()
    assert report.conflicts == [] and await h01.reported_conflicts() == []


async def test_conflicts_the_server_reports_are_kept_for_the_app(h01: AsyncPatrolClient, h02: AsyncPatrolClient) -> None:
    v = await h01.create(Violation(id=new_id(), ward_id="lam-son", check_id="c-1", premises_id="p-1", category="fire_safety", status="open"))
    await h01.sync()
    await h02.sync()
    await h01.update(Violation, v.id, status="fined", fine_vnd=1_500_000)
    await h02.update(Violation, v.id, status="notified", fine_vnd=2_000_000)
    await h01.sync()
    report = await h02.sync()
    assert {(c.field, c.kind) for c in report.conflicts} == {("status", "rank"), ("fine_vnd", "concurrent_edit")}
    kept = await h02.reported_conflicts()
    assert kept == report.conflicts
    await h02.dismiss_conflicts([kept[0].id])
    assert await h02.reported_conflicts() == kept[1:]
    got = await h02.get(Violation, v.id)
    assert got is not None and got.status == "fined"  # higher rank wins, whatever the order


async def test_an_edit_made_while_its_change_set_is_in_flight_is_not_lost_with_it(
    make_client: MakeClient, world: World, forward: Callable[[Fault | None], httpx.AsyncClient]
) -> None:
    holder: list[AsyncPatrolClient] = []
    record: list[str] = []

    async def edit_meanwhile(request: httpx.Request, n: int) -> str | None:
        if request.url.path == "/v1/sync/push" and n == 0:
            await holder[0].update(Premises, record[0], rooms=99)
        return None

    http = forward(edit_meanwhile)
    async with make_client(world.officer_a, http=http) as h01:
        holder.append(h01)
        record.append((await h01.create(premises(rooms=1))).id)
        await h01.sync()
        assert await h01.pending_count() == 1  # the edit made meanwhile waits for the next sync
        got = await h01.get(Premises, record[0])
        assert got is not None and got.rooms == 99  # over the base the answer brought
        await h01.sync()
        assert await h01.pending_count() == 0
    pushes = [msgspec.json.decode(r.content) for r in transport_of(http).seen if r.url.path == "/v1/sync/push"]
    assert [p["changes"][0]["fields"]["rooms"]["value"] for p in pushes] == [1, 99]
    state = await server_state(world, "lam-son")
    assert state[("premises", record[0])][2]["rooms"] == 99


async def test_the_outbox_goes_out_in_bounded_change_sets_with_progress(
    make_client: MakeClient, world: World, forward: Callable[[Fault | None], httpx.AsyncClient]
) -> None:
    http = forward(None)
    seen: list[SyncProgress] = []
    async with make_client(world.officer_a, http=http, max_changes=10) as h01:
        async with h01.batch():
            for n in range(35):
                await h01.create(premises(f"Cơ sở {n}"))
        report = await h01.sync(progress=seen.append)
    assert (report.pushed, report.changesets, report.pulled) == (35, 4, 35)
    pushes = [r for r in transport_of(http).seen if r.url.path == "/v1/sync/push"]
    sizes = [len(msgspec.json.decode(r.content)["changes"]) for r in pushes]
    assert sizes == [10, 10, 10, 5]
    assert [p.pushed for p in seen if p.phase == "push"] == [10, 20, 30, 35]
    assert {p.to_push for p in seen if p.phase == "push"} == {35}
    assert seen[-1].phase == "pull" and seen[-1].pulled == 35
    header = pushes[0].headers["x-client"]
    assert header.startswith("patrol-sync-py/") and "schema=1" in header and "pending=35" in header and "clock=" in header


async def test_a_handheld_whose_clock_runs_a_day_ahead_is_warned_and_cannot_win_every_conflict(
    make_client: MakeClient, world: World, h01: AsyncPatrolClient
) -> None:
    ahead = lambda: dt.datetime.now(dt.UTC).timestamp().__int__() * 1000 + DAY_MS  # noqa: E731
    async with make_client(world.officer_b, clock=ahead) as fast:
        p = await h01.create(premises(rooms=1))
        await h01.sync()
        await fast.sync()
        await fast.update(Premises, p.id, rooms=2)
        report = await fast.sync()
        assert [w.code for w in report.warnings] == ["clock_skew"]
        await h01.sync()
        await h01.update(Premises, p.id, rooms=3)  # a later edit, by real time
        await h01.sync()
        await fast.sync()
        got = await fast.get(Premises, p.id)
        assert got is not None and got.rooms == 3


async def test_a_check_edited_on_one_device_and_deleted_on_another_converges(
    h01: AsyncPatrolClient, h02: AsyncPatrolClient, world: World
) -> None:
    p = await h01.create(premises())
    c = await h01.create(Check(id=new_id(), ward_id="lam-son", premises_id=p.id, kind="residence", started_at=dt.datetime(2023, 6, 1, 9, tzinfo=VN)))
    await h01.sync()
    await h02.sync()
    await h01.delete(Check, c.id)
    await h02.update(Check, c.id, notes="Chủ nhà vắng, hẹn kiểm tra lại")
    await h01.sync()
    report = await h02.sync()
    assert [c.kind for c in report.conflicts] == ["delete"]
    await h01.sync()
    assert await device_state(h01) == await server_state(world, "lam-son") == await device_state(h02)
    assert (await h01.get(Check, c.id) is None) == (await h02.get(Check, c.id) is None)


async def test_a_handheld_whose_clock_runs_behind_still_stamps_its_edits_after_what_it_saw(
    make_client: MakeClient, world: World, h01: AsyncPatrolClient
) -> None:
    behind = lambda: int(dt.datetime.now(dt.UTC).timestamp() * 1000) - DAY_MS  # noqa: E731
    async with make_client(world.officer_b, clock=behind) as slow:
        p = await h01.create(premises(rooms=1))
        await h01.sync()
        await slow.sync()
        await slow.update(Premises, p.id, rooms=2)  # its wall clock says yesterday
        report = await slow.sync()
        assert (report.pushed, report.rejected, report.conflicts) == (1, 0, [])
        await h01.sync()
        got = await h01.get(Premises, p.id)
        assert got is not None and got.rooms == 2
