"""The wire on a slow link (PROTOCOL.md 1, 4, 5): compression, each record once,
``Prefer: return=minimal``, compact stamps, pages bounded in bytes, long polls."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from schemas.compact import expand_stamps
from sync_server.loopback import LoopbackServer
from sync_server.settings import Settings

from .helpers import World, edit, make_world, premises, stamp, violation

pytestmark = pytest.mark.filterwarnings("error")


async def _some_records(world: World, count: int = 20) -> None:
    await world.officer_a.push_ok([premises(f"p{n}", "lam-son", "lamson-h01") for n in range(count)])


@pytest.mark.parametrize("offered, expected", [("gzip", "gzip"), ("br", "br"), ("gzip, deflate, br", "br"), ("identity", None)])
async def test_an_answer_over_1_kib_is_compressed_whenever_the_client_offers_an_encoding(
    world: World, offered: str, expected: str | None
) -> None:
    await _some_records(world)
    pull = await world.officer_b.http.get("/v1/sync/pull", headers={"Accept-Encoding": offered})
    body = {"device_id": "lamson-h01", "changeset_id": "cz", "changes": [premises("q1", "lam-son", "lamson-h01")] * 8}
    push = await world.officer_a.http.post("/v1/sync/push", json=body, headers={"Accept-Encoding": offered})
    report = await world.supervisor.http.get("/v1/reports/checks", params={"group_by": "day"}, headers={"Accept-Encoding": offered})
    for response in (pull, push):
        assert response.status_code == 200, response.text
        assert len(response.content) > 1024
        assert response.headers.get("content-encoding") == expected
    assert report.status_code == 200
    if len(report.content) > 1024:
        assert report.headers.get("content-encoding") == expected
    assert len(pull.json()["records"]) == 20


async def test_a_small_answer_is_not_compressed(world: World) -> None:
    response = await world.officer_a.http.get("/v1/sync/pull", headers={"Accept-Encoding": "gzip"})
    assert len(response.content) < 1024 and "content-encoding" not in response.headers


async def test_a_problem_answer_over_1_kib_is_compressed_too(world: World) -> None:
    params = {"limit": "x" * 300, "wait": "y" * 300, "max_bytes": "z" * 300}
    response = await world.officer_a.http.get("/v1/sync/pull", params=params, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 400 and response.headers["content-type"].startswith("application/problem+json")
    assert len(response.content) > 1024 and response.headers.get("content-encoding") == "gzip"


async def test_ten_changes_to_one_record_answer_the_record_once_and_so_does_a_retry(world: World) -> None:
    changes = [premises("p1", "lam-son", "lamson-h01")]
    changes += [{"collection": "premises", "id": "p1", "fields": {"rooms": edit(n, stamp("lamson-h01"))}} for n in range(10)]
    first = await world.officer_a.push_ok(changes, "ten")
    again = await world.officer_a.push_ok(changes, "ten")
    for answer in (first, again):
        assert [r["status"] for r in answer["results"]] == ["applied"] * 11
        assert [("record" in r) for r in answer["results"]] == [False] * 10 + [True]
        assert {r["seq"] for r in answer["results"]} == {answer["results"][-1]["record"]["seq"]}
        assert answer["results"][-1]["record"]["fields"]["rooms"] == 9
    assert first == again


async def test_return_minimal_answers_a_record_the_device_made_alone_as_its_seq(world: World) -> None:
    kept = violation("v1", "lam-son", "lamson-h01", fine_vnd=1_500_000)
    kept["fields"]["created_by"] = edit("u-ngoc", kept["fields"]["ward_id"]["ts"])
    kept["fields"]["created_at"] = edit("2023-06-08T08:00:00.000Z", kept["fields"]["ward_id"]["ts"])
    body = {"device_id": "lamson-h01", "changeset_id": "min", "changes": [kept]}
    response = await world.officer_a.http.post("/v1/sync/push", json=body, headers={"Prefer": "return=minimal"})
    assert response.status_code == 200, response.text
    assert response.headers["preference-applied"] == "return=minimal"
    (result,) = response.json()["results"]
    assert result["status"] == "applied" and isinstance(result["seq"], int) and "record" not in result
    # the same change set without the preference: the default answer, whole
    plain = await world.officer_a.http.post("/v1/sync/push", json=body)
    assert "preference-applied" not in plain.headers
    assert plain.json()["results"][0]["record"]["fields"]["fine_vnd"] == 1_500_000


async def test_return_minimal_still_answers_whole_a_record_the_merge_changed(world: World) -> None:
    answer = await world.officer_a.push_ok([violation("v1", "lam-son", "lamson-h01")])
    base = answer["results"][0]["record"]["stamps"]["status"]
    await world.officer_b.push_ok([{"collection": "violations", "id": "v1", "fields": {"status": edit("fined", stamp("lamson-h02"), base)}}])
    # a's concurrent edit of status (a lower rank) loses; its edit of description stands beside b's status
    late = {"status": edit("notified", stamp("lamson-h01"), base), "description": edit("ghi chú", stamp("lamson-h01"))}
    body = {"device_id": "lamson-h01", "changeset_id": "lost", "changes": [{"collection": "violations", "id": "v1", "fields": late}]}
    response = await world.officer_a.http.post("/v1/sync/push", json=body, headers={"Prefer": "return=minimal"})
    (result,) = response.json()["results"]
    assert "record" in result, response.text
    assert result["record"]["fields"]["status"] == "fined" and result["record"]["fields"]["description"] == "ghi chú"
    assert response.json()["conflicts"]


async def test_compact_stamps_carry_one_stamp_and_expand_to_the_full_map(world: World) -> None:
    answer = await world.officer_a.push_ok([violation("v1", "lam-son", "lamson-h01")])
    base = answer["results"][0]["record"]["stamps"]["status"]
    await world.officer_a.push_ok([{"collection": "violations", "id": "v1", "fields": {"status": edit("fined", stamp("lamson-h01"), base)}}])
    full = await world.officer_b.http.get("/v1/sync/pull")
    compact = await world.officer_b.http.get("/v1/sync/pull", params={"stamps": "compact"})
    (plain,) = full.json()["records"]
    (small,) = compact.json()["records"]
    assert small["stamp"] == base and list(small["stamps"]) == ["status"]
    assert expand_stamps(small["fields"], small["stamp"], small["stamps"]) == plain["stamps"]
    assert len(compact.content) < len(full.content)
    packed = await world.officer_b.http.get("/v1/sync/pull", params={"stamps": "compact"}, headers={"Accept": "application/msgpack"})
    assert msgspec.msgpack.decode(packed.content)["records"][0]["stamp"] == base


async def test_a_push_answer_with_compact_stamps(world: World) -> None:
    body = {"device_id": "lamson-h01", "changeset_id": "cs", "changes": [premises("p1", "lam-son", "lamson-h01")]}
    response = await world.officer_a.http.post("/v1/sync/push", json=body, params={"stamps": "compact"})
    record = response.json()["results"][0]["record"]
    assert record["stamps"] == {} and record["stamp"].endswith("-lamson-h01")


async def test_a_pull_page_stops_at_the_byte_budget_but_never_below_one_record(world: World) -> None:
    await _some_records(world, 10)
    one = await world.officer_b.http.get("/v1/sync/pull", params={"max_bytes": 1})
    assert len(one.json()["records"]) == 1 and one.json()["more"] is True
    seen: list[str] = []
    cursor = ""
    while True:
        page = (await world.officer_b.http.get("/v1/sync/pull", params={"cursor": cursor, "max_bytes": 600})).json()
        assert 1 <= len(page["records"]) <= 3
        seen += [r["id"] for r in page["records"]]
        cursor = page["cursor"]
        if not page["more"]:
            break
    assert seen == [f"p{n}" for n in range(10)]


async def test_pull_pages_are_bounded_by_the_servers_byte_limit(settings: Settings, admin_token: str) -> None:
    small = msgspec.structs.replace(settings, max_page_bytes=2_000)
    server = LoopbackServer(small)
    await server.start()
    world = await make_world(server.url, admin_token)
    try:
        await _some_records(world, 12)
        page = (await world.officer_b.http.get("/v1/sync/pull", params={"max_bytes": 10**9})).json()
        assert 1 < len(page["records"]) < 12 and page["more"] is True
        assert len(msgspec.json.encode(page["records"])) <= 2_000
    finally:
        for api in world.all():
            await api.aclose()
        await server.stop()


@pytest.mark.parametrize("wait", [-1, 61, "x"])
async def test_a_wait_outside_0_to_60_is_refused(world: World, wait: Any) -> None:
    response = await world.officer_a.http.get("/v1/sync/pull", params={"wait": wait})
    assert response.status_code in (400, 422)


async def test_a_long_poll_returns_soon_after_another_device_pushes(world: World) -> None:
    await _some_records(world, 1)
    head = (await world.officer_b.http.get("/v1/sync/pull")).json()["cursor"]

    async def push_later() -> float:
        await asyncio.sleep(0.6)
        await world.officer_a.push_ok([premises("late", "lam-son", "lamson-h01")])
        return time.monotonic()

    started = time.monotonic()
    pushing = asyncio.create_task(push_later())
    response = await world.officer_b.http.get("/v1/sync/pull", params={"cursor": head, "wait": 5})
    answered = time.monotonic()
    pushed = await pushing
    assert [r["id"] for r in response.json()["records"]] == ["late"]
    assert answered - pushed < 1.0 and answered - started < 3.0


async def test_a_long_poll_with_nothing_new_ends_when_its_time_is_up(world: World) -> None:
    started = time.monotonic()
    response = await world.officer_b.http.get("/v1/sync/pull", params={"wait": 1})
    assert response.json()["records"] == [] and 0.9 < time.monotonic() - started < 3


def test_serve_keeps_idle_connections_open_for_75_seconds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """uvicorn's default (5 s) ended a handheld's connection while its last answer was
    still crossing a 2G link, so each sync paid for a new TCP handshake."""
    from sync_server import cli

    seen: dict[str, Any] = {}
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: seen.update(kwargs))
    for name in Settings.__struct_fields__:  # serve exports its settings for the workers
        monkeypatch.delenv(f"PATROL_SYNC_{name.upper()}", raising=False)
        monkeypatch.setenv(f"PATROL_SYNC_{name.upper()}", "")
        monkeypatch.delenv(f"PATROL_SYNC_{name.upper()}")
    cli.main(["serve", "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert seen["timeout_keep_alive"] == 75


async def test_a_pull_of_large_records_stops_at_4_mib_a_page(world: World) -> None:
    """Patrols with a route of 5,000 points (~230 KB each): 20 of them are over 4 MiB."""
    route = [[21.0 + n / 1e5, 105.0 + n / 1e5, "2023-06-08T08:00:00Z"] for n in range(5_000)]
    ts = stamp("lamson-h01")
    patrols = [
        {
            "collection": "patrols",
            "id": f"pt{n}",
            "fields": {"ward_id": edit("lam-son", ts), "team_id": edit("ls-t1", ts), "started_at": edit("2023-06-08T08:00:00Z", ts), "route": edit(route, ts)},
        }
        for n in range(20)
    ]
    answer = await world.officer_a.push_ok(patrols)
    assert all(r["status"] == "applied" for r in answer["results"]), answer["results"][0]
    response = await world.officer_b.http.get("/v1/sync/pull")
    page = response.json()
    assert 1 < len(page["records"]) < 20 and page["more"] is True
    assert len(response.content) <= 4 * 1024 * 1024
    rest = (await world.officer_b.http.get("/v1/sync/pull", params={"cursor": page["cursor"]})).json()
    assert len(page["records"]) + len(rest["records"]) == 20 and rest["more"] is False


async def _minimal(world: World, changes: list[dict[str, Any]], changeset_id: str, **headers: str) -> Any:
    body = {"device_id": "lamson-h01", "changeset_id": changeset_id, "changes": changes}
    response = await world.officer_a.http.post("/v1/sync/push", json=body, headers={"Prefer": "return=minimal", **headers})
    assert response.status_code == 200, response.text
    return response


async def test_return_minimal_answers_seq_alone_for_an_edit_of_a_record_that_stood_as_the_devices_own(world: World) -> None:
    made = (await _minimal(world, [premises("p1", "lam-son", "lamson-h01")], "made")).json()
    ts = made["results"][0]["record"]["stamps"]["name"]  # whole: the server filled created_by and created_at
    again = {"name": edit("Nhà trọ Ngọc", stamp("lamson-h01"), ts), "tags": {"add": ["karaoke"], "remove": [], "ts": stamp("lamson-h01")}}
    response = await _minimal(world, [{"collection": "premises", "id": "p1", "fields": again}], "again")
    assert response.headers["preference-applied"] == "return=minimal"
    (result,) = response.json()["results"]
    assert result["status"] == "applied" and "record" not in result, response.text
    (pulled,) = await world.officer_b.pull_all()
    assert pulled["seq"] == result["seq"] and pulled["fields"]["name"] == "Nhà trọ Ngọc" and pulled["fields"]["tags"] == ["karaoke"]


async def test_return_minimal_answers_whole_an_edit_of_a_record_another_device_touched_since(world: World) -> None:
    made = (await _minimal(world, [premises("p1", "lam-son", "lamson-h01")], "made")).json()
    ts = made["results"][0]["record"]["stamps"]["name"]
    await world.officer_b.push_ok([{"collection": "premises", "id": "p1", "fields": {"address": edit("12 Lê Lợi", stamp("lamson-h02"))}}])
    response = await _minimal(world, [{"collection": "premises", "id": "p1", "fields": {"name": edit("Nhà trọ Ngọc", stamp("lamson-h01"), ts)}}], "after-b")
    (result,) = response.json()["results"]
    assert result["record"]["fields"]["address"] == "12 Lê Lợi"  # the device may not hold it: whole


async def test_a_minimal_answer_is_the_same_on_a_retry_and_a_push_that_did_not_ask_stays_whole(world: World) -> None:
    made = (await _minimal(world, [premises("p1", "lam-son", "lamson-h01")], "made")).json()
    ts = made["results"][0]["record"]["stamps"]["name"]
    edit_p1 = [{"collection": "premises", "id": "p1", "fields": {"name": edit("Nhà trọ Ngọc", stamp("lamson-h01"), ts)}}]
    first = await _minimal(world, edit_p1, "twice")
    retry = await _minimal(world, edit_p1, "twice")
    assert first.content == retry.content and "record" not in first.json()["results"][0]
    plain = await world.officer_a.push_ok(edit_p1, "twice")
    assert "record" in plain["results"][0]  # the same stored answer, whole
    unasked = [{"collection": "premises", "id": "p1", "fields": {"rooms": edit(4, stamp("lamson-h01"))}}]
    await world.officer_a.push_ok(unasked, "unasked")
    later = await _minimal(world, unasked, "unasked")
    assert "record" in later.json()["results"][0] and "preference-applied" not in later.headers


async def test_messagepack_answers_push_and_pull_but_a_problem_stays_json(world: World) -> None:
    packed = {"Accept": "application/msgpack"}
    body = {"device_id": "lamson-h01", "changeset_id": "mp", "changes": [premises("p1", "lam-son", "lamson-h01")]}
    push = await world.officer_a.http.post("/v1/sync/push", json=body, headers={**packed, "Prefer": "return=minimal"}, params={"stamps": "compact"})
    assert push.headers["content-type"].startswith("application/msgpack")
    assert msgspec.msgpack.decode(push.content)["results"][0]["status"] == "applied"
    pull = await world.officer_b.http.get("/v1/sync/pull", headers=packed, params={"stamps": "compact"})
    assert pull.headers["content-type"].startswith("application/msgpack")
    assert [r["id"] for r in msgspec.msgpack.decode(pull.content)["records"]] == ["p1"]
    refused = await world.officer_b.http.get("/v1/sync/pull", headers=packed, params={"cursor": "%%%"})
    assert refused.status_code == 400 and refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["status"] == 400
