"""Each merge policy under concurrent edits from two devices (PROTOCOL.md section 3)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from .helpers import World, edit, stamp, violation

A, B = "lamson-h01", "lamson-h02"


def fields_change(collection: str, record_id: str, **fields: dict[str, Any]) -> dict[str, Any]:
    return {"collection": collection, "id": record_id, "fields": fields}


async def _seed_violation(world: World, ms: int = 1_686_200_000_000) -> dict[str, Any]:
    answer = await world.officer_a.push_ok([violation("v1", "lam-son", A, ms=ms, fine_vnd=500_000)])
    return answer["results"][0]["record"]["stamps"]  # type: ignore[no-any-return]


async def _record(world: World, record_id: str = "v1") -> dict[str, Any]:
    return next(r for r in await world.supervisor.pull_all() if r["id"] == record_id)


async def _conflicts(db_url: str) -> list[tuple[str, str | None, str]]:
    from . import storedb

    return await storedb.rows(db_url, "SELECT kind, field, winner FROM conflicts ORDER BY id")  # type: ignore[return-value]


# -- lww ------------------------------------------------------------------------


async def test_lww_concurrent_edits_keep_the_higher_stamp_in_either_order(world: World) -> None:
    stamps = await _seed_violation(world)
    base = stamps["fine_vnd"]
    early = fields_change("violations", "v1", fine_vnd=edit(1_000_000, stamp(A, 1_686_300_000_000), base))
    late = fields_change("violations", "v1", fine_vnd=edit(2_000_000, stamp(B, 1_686_300_000_500), base))
    first = await world.officer_b.push_ok([late])
    second = await world.officer_a.push_ok([early])
    assert first["conflicts"] == []
    (conflict,) = second["conflicts"]
    assert conflict["kind"] == "concurrent_edit" and conflict["field"] == "fine_vnd"
    assert conflict["winner"] == "server"
    assert conflict["server"]["value"] == 2_000_000 and conflict["client"]["value"] == 1_000_000
    assert conflict["id"].startswith("c-")
    assert (await _record(world))["fields"]["fine_vnd"] == 2_000_000


async def test_lww_a_later_concurrent_edit_replaces_and_is_logged_as_won_by_the_client(world: World) -> None:
    stamps = await _seed_violation(world)
    base = stamps["fine_vnd"]
    await world.officer_a.push_ok([fields_change("violations", "v1", fine_vnd=edit(1_000_000, stamp(A, 1_686_300_000_000), base))])
    answer = await world.officer_b.push_ok(
        [fields_change("violations", "v1", fine_vnd=edit(2_000_000, stamp(B, 1_686_300_000_500), base))]
    )
    assert answer["conflicts"][0]["winner"] == "client"
    assert (await _record(world))["fields"]["fine_vnd"] == 2_000_000


async def test_a_clean_edit_on_the_latest_base_is_no_conflict(world: World) -> None:
    stamps = await _seed_violation(world)
    answer = await world.officer_b.push_ok(
        [fields_change("violations", "v1", fine_vnd=edit(900_000, stamp(B, 1_686_300_000_000), stamps["fine_vnd"]))]
    )
    assert answer["conflicts"] == []
    assert (await _record(world))["fields"]["fine_vnd"] == 900_000


async def test_two_devices_writing_the_same_value_concurrently_is_no_conflict(world: World) -> None:
    stamps = await _seed_violation(world)
    base = stamps["fine_vnd"]
    await world.officer_a.push_ok([fields_change("violations", "v1", fine_vnd=edit(1_000_000, stamp(A, 1_686_300_000_000), base))])
    answer = await world.officer_b.push_ok([fields_change("violations", "v1", fine_vnd=edit(1_000_000, stamp(B, 1_686_300_000_500), base))])
    assert answer["conflicts"] == []  # they agree: nothing for a supervisor to review
    assert (await _record(world))["stamps"]["fine_vnd"] == stamp(B, 1_686_300_000_500)


async def test_one_devices_own_sequential_edits_are_no_conflict(world: World) -> None:
    stamps = await _seed_violation(world)
    base = stamps["fine_vnd"]
    # the device edits twice offline, both based on what it last saw; the second is its own later edit
    await world.officer_a.push_ok([fields_change("violations", "v1", fine_vnd=edit(1, stamp(A, 1_686_300_000_000), base))])
    answer = await world.officer_a.push_ok([fields_change("violations", "v1", fine_vnd=edit(2, stamp(A, 1_686_300_000_100), base))])
    assert answer["conflicts"] == []
    assert (await _record(world))["fields"]["fine_vnd"] == 2


async def test_edits_of_different_fields_both_survive(world: World) -> None:
    stamps = await _seed_violation(world)
    await world.officer_a.push_ok(
        [fields_change("violations", "v1", fine_vnd=edit(3_000_000, stamp(A, 1_686_300_000_000), stamps["fine_vnd"]))]
    )
    answer = await world.officer_b.push_ok(
        [fields_change("violations", "v1", description=edit("Không có bình chữa cháy", stamp(B, 1_686_300_000_001)))]
    )
    assert answer["conflicts"] == []
    record = await _record(world)
    assert record["fields"]["fine_vnd"] == 3_000_000
    assert record["fields"]["description"] == "Không có bình chữa cháy"


@pytest.mark.parametrize("order", ["ascending", "descending"])
async def test_lww_two_values_under_one_stamp_end_with_the_higher_json_encoding_in_either_order(world: World, order: str) -> None:
    # a device that reused a stamp: PROTOCOL.md section 3 orders the values by their JSON encoding
    await _seed_violation(world)
    ts = stamp(B, 1_686_300_000_000)
    values = [1_000_000, 2_000_000] if order == "ascending" else [2_000_000, 1_000_000]
    for value in values:
        await world.officer_b.push_ok([fields_change("violations", "v1", fine_vnd=edit(value, ts))])
    assert (await _record(world))["fields"]["fine_vnd"] == 2_000_000  # b"2000000" > b"1000000"


# -- first ----------------------------------------------------------------------


async def test_first_keeps_the_earliest_value_whatever_the_order(world: World) -> None:
    # B's check_id is stamped earlier but arrives later: it still wins
    await _seed_violation(world, ms=1_686_200_000_000)
    answer = await world.officer_b.push_ok(
        [fields_change("violations", "v1", check_id=edit("chk-early", stamp(B, 1_686_100_000_000)))]
    )
    (conflict,) = answer["conflicts"]
    assert (conflict["kind"], conflict["winner"]) == ("immutable", "client")
    answer = await world.officer_a.push_ok(
        [fields_change("violations", "v1", check_id=edit("chk-late", stamp(A, 1_686_400_000_000)))]
    )
    (conflict,) = answer["conflicts"]
    assert (conflict["kind"], conflict["winner"]) == ("immutable", "server")
    assert (await _record(world))["fields"]["check_id"] == "chk-early"


@pytest.mark.parametrize("order", ["ascending", "descending"])
async def test_first_the_same_value_stamped_earlier_keeps_the_earlier_stamp_in_either_order(world: World, order: str) -> None:
    await _seed_violation(world, ms=1_686_200_000_000)
    early, late = stamp(B, 1_686_100_000_000), stamp(A, 1_686_300_000_000)
    pushes = [(world.officer_b, early), (world.officer_a, late)]
    for api, ts in pushes if order == "ascending" else reversed(pushes):
        await api.push_ok([fields_change("violations", "v1", check_id=edit("chk-1", ts))])
    record = await _record(world)
    assert (record["fields"]["check_id"], record["stamps"]["check_id"]) == ("chk-1", early)


@pytest.mark.parametrize("order", ["ascending", "descending"])
async def test_first_two_values_under_one_stamp_keep_the_lower_json_encoding_in_either_order(world: World, order: str) -> None:
    await _seed_violation(world, ms=1_686_200_000_000)
    ts = stamp(B, 1_686_100_000_000)  # earlier than the creation: the write-once value changes
    values = ["chk-a", "chk-b"] if order == "ascending" else ["chk-b", "chk-a"]
    for value in values:
        await world.officer_b.push_ok([fields_change("violations", "v1", check_id=edit(value, ts))])
    assert (await _record(world))["fields"]["check_id"] == "chk-a"


# -- rank -----------------------------------------------------------------------


async def test_rank_keeps_the_higher_status_and_logs_the_step_back(world: World) -> None:
    stamps = await _seed_violation(world)
    base = stamps["status"]
    await world.officer_a.push_ok([fields_change("violations", "v1", status=edit("fined", stamp(A, 1_686_300_000_000), base))])
    answer = await world.officer_b.push_ok(
        [fields_change("violations", "v1", status=edit("notified", stamp(B, 1_686_300_009_000), base))]
    )
    (conflict,) = answer["conflicts"]
    assert (conflict["kind"], conflict["winner"]) == ("rank", "server")
    assert conflict["server"]["value"] == "fined" and conflict["client"]["value"] == "notified"
    assert (await _record(world))["fields"]["status"] == "fined"


async def test_rank_a_higher_status_wins_even_with_an_older_stamp(world: World) -> None:
    stamps = await _seed_violation(world)
    base = stamps["status"]
    await world.officer_b.push_ok([fields_change("violations", "v1", status=edit("notified", stamp(B, 1_686_300_009_000), base))])
    answer = await world.officer_a.push_ok([fields_change("violations", "v1", status=edit("resolved", stamp(A, 1_686_300_000_000), base))])
    assert answer["conflicts"][0]["winner"] == "client"
    assert (await _record(world))["fields"]["status"] == "resolved"


async def test_rank_equal_ranks_are_ordered_by_stamp(world: World) -> None:
    stamps = await _seed_violation(world)
    base = stamps["status"]
    await world.officer_a.push_ok([fields_change("violations", "v1", status=edit("dismissed", stamp(A, 1_686_300_000_900), base))])
    await world.officer_b.push_ok([fields_change("violations", "v1", status=edit("resolved", stamp(B, 1_686_300_000_100), base))])
    assert (await _record(world))["fields"]["status"] == "dismissed"


@pytest.mark.parametrize("order", ["ascending", "descending"])
async def test_rank_equal_ranks_under_one_stamp_end_with_the_higher_json_encoding_in_either_order(world: World, order: str) -> None:
    stamps = await _seed_violation(world)
    ts = stamp(B, 1_686_300_000_000)
    values = ["dismissed", "resolved"] if order == "ascending" else ["resolved", "dismissed"]
    for value in values:
        await world.officer_b.push_ok([fields_change("violations", "v1", status=edit(value, ts, stamps["status"]))])
    assert (await _record(world))["fields"]["status"] == "resolved"


# -- set ------------------------------------------------------------------------


async def test_set_adds_and_removes_of_different_elements_both_survive(world: World) -> None:
    ts = stamp(A, 1_686_200_000_000)
    created = violation("v1", "lam-son", A, ms=1_686_200_000_000)
    created["fields"]["photos"] = {"add": ["sha256:" + "a" * 64, "sha256:" + "b" * 64], "remove": [], "ts": ts}
    answer = await world.officer_a.push_ok([created])
    base = answer["results"][0]["record"]["stamps"]["photos"]
    await world.officer_a.push_ok([fields_change("violations", "v1", photos={"add": ["sha256:" + "c" * 64], "remove": ["sha256:" + "a" * 64], "ts": stamp(A, 1_686_300_000_000), "base": base})])
    answer = await world.officer_b.push_ok([fields_change("violations", "v1", photos={"add": ["sha256:" + "d" * 64], "remove": ["sha256:" + "b" * 64], "ts": stamp(B, 1_686_300_000_100), "base": base})])
    assert answer["conflicts"] == []
    assert (await _record(world))["fields"]["photos"] == ["sha256:" + "c" * 64, "sha256:" + "d" * 64]


async def test_set_for_one_element_the_higher_stamp_wins_in_either_order(world: World) -> None:
    created = violation("v1", "lam-son", A, ms=1_686_200_000_000)
    created["fields"]["photos"] = {"add": ["sha256:" + "a" * 64], "ts": stamp(A, 1_686_200_000_000)}
    answer = await world.officer_a.push_ok([created])
    base = answer["results"][0]["record"]["stamps"]["photos"]
    # B removes (later stamp) first; A re-adds with an earlier stamp afterwards: the remove stands
    await world.officer_b.push_ok([fields_change("violations", "v1", photos={"remove": ["sha256:" + "a" * 64], "ts": stamp(B, 1_686_300_000_500), "base": base})])
    answer = await world.officer_a.push_ok([fields_change("violations", "v1", photos={"add": ["sha256:" + "a" * 64], "ts": stamp(A, 1_686_300_000_000), "base": base})])
    assert (await _record(world))["fields"]["photos"] == []
    assert answer["conflicts"][0]["kind"] == "concurrent_edit" and answer["conflicts"][0]["winner"] == "server"


# -- delete ---------------------------------------------------------------------


async def test_a_later_delete_wins_over_an_earlier_concurrent_edit_in_either_order(world: World) -> None:
    stamps = await _seed_violation(world)
    delete = {"collection": "violations", "id": "v1", "delete": {"ts": stamp(A, 1_686_300_000_900), "base": stamps["status"]}}
    change = fields_change("violations", "v1", description=edit("ghi chú", stamp(B, 1_686_300_000_100)))
    await world.officer_b.push_ok([change])
    answer = await world.officer_a.push_ok([delete])
    assert answer["conflicts"][0]["kind"] == "delete" and answer["conflicts"][0]["winner"] == "client"
    record = await _record(world)
    assert record["deleted"] is True
    assert record["fields"]["description"] == "ghi chú"  # fields keep their values while deleted


async def test_an_edit_arriving_after_a_later_delete_loses_and_is_logged(world: World) -> None:
    stamps = await _seed_violation(world)
    await world.officer_a.push_ok([{"collection": "violations", "id": "v1", "delete": {"ts": stamp(A, 1_686_300_000_900), "base": stamps["status"]}}])
    answer = await world.officer_b.push_ok([fields_change("violations", "v1", description=edit("muộn", stamp(B, 1_686_300_000_100)))])
    assert answer["results"][0]["status"] == "applied"
    assert answer["results"][0]["record"]["deleted"] is True
    (conflict,) = answer["conflicts"]
    assert (conflict["kind"], conflict["winner"], conflict["field"]) == ("delete", "server", None)
    assert conflict["server"]["deleted"] is True and conflict["client"]["value"] == {"description": "muộn"}


async def test_an_edit_stamped_after_the_delete_brings_the_record_back(world: World) -> None:
    stamps = await _seed_violation(world)
    await world.officer_a.push_ok([{"collection": "violations", "id": "v1", "delete": {"ts": stamp(A, 1_686_300_000_000), "base": stamps["status"]}}])
    assert (await _record(world))["deleted"] is True
    answer = await world.officer_b.push_ok([fields_change("violations", "v1", fine_vnd=edit(7, stamp(B, 1_686_300_000_500)))])
    assert answer["conflicts"][0]["winner"] == "client"
    record = await _record(world)
    assert record["deleted"] is False and record["fields"]["fine_vnd"] == 7


async def test_a_delete_stamped_before_a_newer_edit_does_not_delete(world: World) -> None:
    stamps = await _seed_violation(world)
    await world.officer_b.push_ok([fields_change("violations", "v1", fine_vnd=edit(9, stamp(B, 1_686_300_000_500), stamps["fine_vnd"]))])
    answer = await world.officer_a.push_ok([{"collection": "violations", "id": "v1", "delete": {"ts": stamp(A, 1_686_300_000_000), "base": stamps["status"]}}])
    assert answer["conflicts"][0]["kind"] == "delete" and answer["conflicts"][0]["winner"] == "server"
    assert (await _record(world))["deleted"] is False


async def test_deleted_records_are_pulled_as_tombstones(world: World) -> None:
    stamps = await _seed_violation(world)
    await world.officer_a.push_ok([{"collection": "violations", "id": "v1", "delete": {"ts": stamp(A, 1_686_300_000_000), "base": stamps["status"]}}])
    (record,) = await world.officer_b.pull_all()
    assert record["deleted"] is True and record["id"] == "v1"


# -- clock skew -----------------------------------------------------------------


async def test_a_device_a_day_ahead_loses_to_an_honest_later_edit(world: World) -> None:
    now_ms = time.time_ns() // 1_000_000
    answer = await world.officer_a.push_ok([violation("v1", "lam-son", A, ms=now_ms - 60_000, fine_vnd=100)])
    base = answer["results"][0]["record"]["stamps"]["fine_vnd"]
    skewed = await world.officer_b.push_ok(
        [fields_change("violations", "v1", fine_vnd=edit(999, stamp(B, now_ms + 86_400_000), base))]
    )
    (warning,) = skewed["warnings"]
    assert warning["code"] == "clock_skew" and "lamson-h02" in warning["detail"]
    applied_stamp = skewed["results"][0]["record"]["stamps"]["fine_vnd"]
    assert applied_stamp.endswith("-server") and int(applied_stamp[:13]) < now_ms + 600_000
    time.sleep(0.01)
    honest = await world.officer_a.push_ok(
        [fields_change("violations", "v1", fine_vnd=edit(555, stamp(A, time.time_ns() // 1_000_000 + 5), base))]
    )
    assert honest["warnings"] == []
    assert (await _record(world))["fields"]["fine_vnd"] == 555


async def test_a_stamp_within_the_skew_window_is_trusted(world: World) -> None:
    now_ms = time.time_ns() // 1_000_000
    answer = await world.officer_a.push_ok([violation("v1", "lam-son", A, ms=now_ms + 5 * 60_000)])
    assert answer["warnings"] == []
    assert answer["results"][0]["record"]["stamps"]["status"].endswith(A)


async def test_conflicts_are_kept_in_the_store(world: World, db_url: str) -> None:
    stamps = await _seed_violation(world)
    base = stamps["fine_vnd"]
    await world.officer_b.push_ok([fields_change("violations", "v1", fine_vnd=edit(2, stamp(B, 1_686_300_000_500), base))])
    await world.officer_a.push_ok([fields_change("violations", "v1", fine_vnd=edit(1, stamp(A, 1_686_300_000_000), base))])
    assert await _conflicts(db_url) == [("concurrent_edit", "fine_vnd", "server")]
