"""A hostile officer's attacks (issue 11) and what the server answers now.

Each test is one attack, tried through the real HTTP server on both stores. Stamps
here are of today (the devices are registered today, and the server checks stamps
against that: PROTOCOL.md section 3), unlike the rest of the suite's June 2023 ones.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from typing import Any

import pytest

from sync_server.http.observability import MAX_LOGGED_PATH, _safe_url
from sync_server.settings import Settings

from ..helpers import Api, World, cursor_epoch, edit

_counter = itertools.count(1)


@pytest.fixture
def settings(db_url: str, tmp_path: Any, request: pytest.FixtureRequest) -> Settings:
    """Default settings (the registration bound on), with this test's ``@pytest.mark.settings(...)``."""
    marker = request.node.get_closest_marker("settings")
    blob_dir = "" if db_url.startswith("sqlite:") else str(tmp_path / "blobs")
    return Settings(db_url=db_url, blob_dir=blob_dir, **(marker.kwargs if marker else {}))


def now_stamp(node: str, ms: int | None = None) -> str:
    """A stamp of now (or of ``ms``), never the same twice in a test run."""
    return f"{(ms if ms is not None else time.time_ns() // 1_000_000):013d}-{next(_counter) % 65536:04x}-{node}"


def new_premises(record_id: str, ward: str, node: str, **fields: Any) -> dict[str, Any]:
    ts = now_stamp(node)
    values = {"ward_id": ward, "name": "Nhà trọ Lê Lợi", "kind": "boarding_house", **fields}
    return {"collection": "premises", "id": record_id, "fields": {k: edit(v, ts) for k, v in values.items()}}


async def pulled(api: Api, record_id: str) -> dict[str, Any] | None:
    return next((r for r in await api.pull_all() if r["id"] == record_id), None)


def results(answer: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(status, first error code) of each change."""
    return [(r["status"], r["errors"][0]["code"] if r.get("errors") else None) for r in answer["results"]]


# -- 1. limits: a set of 2,000 elements, a record of 256 KiB ------------------------------


async def test_tags_pushed_past_2000_elements_are_refused_too_large_and_the_rest_of_the_change_set_applies(world: World) -> None:
    a = world.officer_a
    await a.push_ok([new_premises("p-tags", "lam-son", "lamson-h01")])

    def tags(*names: str) -> dict[str, Any]:
        return {"collection": "premises", "id": "p-tags", "fields": {"tags": {"add": list(names), "remove": [], "ts": now_stamp("lamson-h01")}}}

    first, second = tags(*(f"t{n}" for n in range(1_000))), tags(*(f"t{n}" for n in range(1_000, 2_000)))
    answer = await a.push_ok([first, second, tags("t-extra"), new_premises("p-other", "lam-son", "lamson-h01")])
    assert results(answer) == [("applied", None), ("applied", None), ("rejected", "too_large"), ("applied", None)]
    record = await pulled(a, "p-tags")
    assert record is not None and len(record["fields"]["tags"]) == 2_000 and "t-extra" not in record["fields"]["tags"]
    # one that leaves the count as it is still applies (a swap), and one that lowers it
    swap = {"collection": "premises", "id": "p-tags", "fields": {"tags": {"add": ["t-new"], "remove": ["t0"], "ts": now_stamp("lamson-h01")}}}
    assert results(await a.push_ok([swap, tags("t-2001")])) == [("applied", None), ("rejected", "too_large")]


@pytest.mark.settings(max_record_bytes=1_024)
async def test_a_change_that_grows_a_record_past_its_byte_limit_is_refused_and_the_record_stays(world: World) -> None:
    a = world.officer_a
    await a.push_ok([new_premises("p-big", "lam-son", "lamson-h01")])
    before = await pulled(a, "p-big")
    ts = now_stamp("lamson-h01")
    grow = {"collection": "premises", "id": "p-big", "fields": {"address": edit("đ" * 250, ts), "owner_name": edit("Nguyễn " * 60, ts)}}
    answer = await a.push_ok([grow, {"collection": "premises", "id": "p-big", "fields": {"rooms": edit(4, now_stamp("lamson-h01"))}}])
    assert results(answer) == [("rejected", "too_large"), ("applied", None)]
    after = await pulled(a, "p-big")
    assert before is not None and after is not None
    assert "address" not in after["fields"] and after["fields"]["rooms"] == 4
    # a new record past the limit is refused the same way
    answer = await a.push_ok([new_premises("p-huge", "lam-son", "lamson-h01", address="x" * 500, owner_name="y" * 500)])
    assert results(answer) == [("rejected", "too_large")]


# -- 3. stamps must name the pushing device --------------------------------------------------


@pytest.mark.parametrize("node", ["server", "lamson-h02", "sup-laptop"])
async def test_a_stamp_naming_another_node_is_refused_invalid(world: World, node: str) -> None:
    a = world.officer_a
    await a.push_ok([new_premises("p-forge", "lam-son", "lamson-h01")])
    forged = {"collection": "premises", "id": "p-forge", "fields": {"name": edit("Giả mạo", now_stamp(node))}}
    forged_delete = {"collection": "premises", "id": "p-forge", "delete": {"ts": now_stamp(node), "base": None}}
    forged_set = {"collection": "premises", "id": "p-forge", "fields": {"tags": {"add": ["x"], "remove": [], "ts": now_stamp(node)}}}
    answer = await a.push_ok([forged, forged_delete, forged_set])
    assert results(answer) == [("rejected", "invalid")] * 3
    record = await pulled(a, "p-forge")
    assert record is not None and record["fields"]["name"] == "Nhà trọ Lê Lợi" and not record["deleted"]


async def test_a_supervisors_resolution_cannot_be_overwritten_silently_with_a_server_stamp(world: World) -> None:
    """The original attack: a stamp of node ``server`` after the resolution, base anything."""
    a, b, sup = world.officer_a, world.officer_b, world.supervisor
    created = await a.push_ok([{"collection": "violations", "id": "v-res", "fields": {
        k: edit(v, now_stamp("lamson-h01")) for k, v in
        {"ward_id": "lam-son", "check_id": "chk-1", "premises_id": "prem-1", "category": "fire_safety", "status": "open", "fine_vnd": 500_000}.items()}}])  # fmt: skip
    base = created["results"][0]["record"]["stamps"]["fine_vnd"]
    await b.push_ok([{"collection": "violations", "id": "v-res", "fields": {"fine_vnd": edit(2_000_000, now_stamp("lamson-h02"), base)}}])
    answer = await a.push_ok([{"collection": "violations", "id": "v-res", "fields": {"fine_vnd": edit(1_000_000, now_stamp("lamson-h01"), base)}}])
    (conflict,) = answer["conflicts"]
    response = await sup.http.post(f"/v1/conflicts/{conflict['id']}/resolve", json={"choice": "value", "value": 1_500_000})
    assert response.status_code == 200, response.text
    resolved = await pulled(a, "v-res")
    assert resolved is not None and resolved["stamps"]["fine_vnd"].endswith("-server")

    later = (time.time_ns() // 1_000_000) + 1_000
    attack = {"collection": "violations", "id": "v-res", "fields": {"fine_vnd": edit(0, now_stamp("server", later), resolved["stamps"]["fine_vnd"])}}
    assert results(await a.push_ok([attack])) == [("rejected", "invalid")]
    after = await pulled(a, "v-res")
    assert after is not None and after["fields"]["fine_vnd"] == 1_500_000
    # the honest way is seen: an edit of its own that had not seen the resolution is a conflict
    honest = {"collection": "violations", "id": "v-res", "fields": {"fine_vnd": edit(0, now_stamp("lamson-h01", later), base)}}
    answer = await a.push_ok([honest])
    assert [c["kind"] for c in answer["conflicts"]] == ["concurrent_edit"]


# -- 3/4. stamps before the device's registration; write-once fields ------------------------


async def test_a_stamp_before_the_devices_registration_is_applied_at_server_time_with_a_clock_skew_warning(world: World) -> None:
    a = world.officer_a
    old = now_stamp("lamson-h01", 1_577_836_800_000)  # 2020: a phone whose clock reset
    answer = await a.push_ok([{"collection": "premises", "id": "p-old", "fields": {
        k: edit(v, old) for k, v in {"ward_id": "lam-son", "name": "Nhà trọ", "kind": "boarding_house"}.items()}}])  # fmt: skip
    assert [w["code"] for w in answer["warnings"]] == ["clock_skew"]
    record = answer["results"][0]["record"]
    assert all(ts.endswith("-server") and ts > old for ts in record["stamps"].values())


async def test_write_once_fields_cannot_be_rewritten_with_a_stamp_of_time_zero(world: World) -> None:
    a = world.officer_a
    await a.push_ok([{"collection": "checks", "id": "chk-w1", "fields": {
        k: edit(v, now_stamp("lamson-h01")) for k, v in
        {"ward_id": "lam-son", "premises_id": "p-1", "kind": "residence", "started_at": "2026-11-20T09:00:00+07:00"}.items()}}])  # fmt: skip
    zero = "0000000000000-0000-lamson-h01"
    rewrite = {"collection": "checks", "id": "chk-w1", "fields": {"created_by": edit("u-hung", zero), "premises_id": edit("p-2", zero)}}
    answer = await a.push_ok([rewrite])
    assert [w["code"] for w in answer["warnings"]] == ["clock_skew"]
    assert sorted((c["field"], c["kind"], c["winner"]) for c in answer["conflicts"]) == [
        ("created_by", "immutable", "server"),
        ("premises_id", "immutable", "server"),
    ]
    record = await pulled(a, "chk-w1")
    assert record is not None and record["fields"]["created_by"] == "u-ngoc" and record["fields"]["premises_id"] == "p-1"


# -- 4. references to another ward's records ------------------------------------------------


async def test_a_reference_to_a_record_of_another_ward_is_refused_and_one_not_yet_held_is_accepted(world: World) -> None:
    sup, a = world.supervisor, world.officer_a
    await sup.push_ok([new_premises("p-phu", "phu-son", "sup-laptop")])
    await a.push_ok([new_premises("p-lam", "lam-son", "lamson-h01")])

    def check(record_id: str, premises_id: str, node: str) -> dict[str, Any]:
        values = {"ward_id": "lam-son", "premises_id": premises_id, "kind": "residence", "started_at": "2026-11-20T09:00:00+07:00"}
        return {"collection": "checks", "id": record_id, "fields": {k: edit(v, now_stamp(node)) for k, v in values.items()}}

    def violation(record_id: str, check_id: str, premises_id: str) -> dict[str, Any]:
        values = {"ward_id": "lam-son", "check_id": check_id, "premises_id": premises_id, "category": "fire_safety", "status": "open"}
        return {"collection": "violations", "id": record_id, "fields": {k: edit(v, now_stamp("lamson-h01")) for k, v in values.items()}}

    # a supervisor of both wards, in one change set: the premises of the other ward is refused
    answer = await sup.push_ok([check("chk-x", "p-phu", "sup-laptop"), check("chk-ok", "p-lam", "sup-laptop")])
    assert results(answer) == [("rejected", "invalid"), ("applied", None)]
    # an officer guessing an id of a ward he cannot see: refused, naming nothing of it
    answer = await a.push_ok([check("chk-y", "p-phu", "lamson-h01"), violation("v-x", "chk-ok", "p-phu"), check("chk-later", "p-not-yet", "lamson-h01")])
    assert results(answer) == [("rejected", "invalid"), ("rejected", "invalid"), ("applied", None)]
    assert all("phu-son" not in r["errors"][0]["detail"] for r in answer["results"][:2])
    assert await pulled(sup, "chk-x") is None and await pulled(sup, "chk-y") is None


async def test_a_change_to_a_record_of_another_ward_is_forbidden_without_naming_that_ward(world: World) -> None:
    await world.officer_c.push_ok([new_premises("p-c", "phu-son", "phuson-h01")])
    answer = await world.officer_a.push_ok([{"collection": "premises", "id": "p-c", "fields": {"name": edit("X", now_stamp("lamson-h01"))}}])
    assert results(answer) == [("rejected", "forbidden")]
    assert "phu-son" not in answer["results"][0]["errors"][0]["detail"]


# -- 6. patterns match whole; numbers that do not fit; logged paths -----------------------------


async def test_an_id_or_stamp_with_a_trailing_newline_is_invalid_and_nothing_is_stored(world: World) -> None:
    a = world.officer_a
    bad_id = new_premises("pa-nl\n", "lam-son", "lamson-h01")
    bad_stamp = new_premises("pa-ok", "lam-son", "lamson-h01")
    bad_stamp["fields"]["name"]["ts"] += "\n"
    answer = await a.push_ok([bad_id, bad_stamp])
    assert results(answer) == [("rejected", "invalid"), ("rejected", "invalid")]
    assert await a.pull_all() == []
    response = await a.push([new_premises("pa-2", "lam-son", "lamson-h01")], changeset_id="cs-1\n")
    assert response.status_code == 422
    assert await a.pull_all() == []


async def test_a_cursor_position_past_any_integer_is_400(world: World) -> None:
    a = world.officer_a
    await a.push_ok([new_premises("p-cur", "lam-son", "lamson-h01")])
    cursor = (await a.http.get("/v1/sync/pull")).json()["cursor"]
    epoch = cursor_epoch(cursor)
    for position in ("99999999999999999999999", "9223372036854775808", "٣"):
        forged = base64.urlsafe_b64encode(f"{epoch}:{position}".encode()).decode().rstrip("=")
        response = await a.http.get("/v1/sync/pull", params={"cursor": forged})
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    response = await a.http.get("/v1/sync/pull", params={"limit": "99999999999999999999999"})
    assert response.status_code == 400


def test_a_long_path_is_logged_cut_short() -> None:
    logged = _safe_url("/v1/records/premises/" + "x" * 60_000, b"q=" + b"y" * 10_000)
    assert len(logged) == MAX_LOGGED_PATH + 1 and logged.endswith("…")
    assert _safe_url("/v1/sync/pull", b"") == "/v1/sync/pull"


# -- 7. a conflict resolved twice at once ----------------------------------------------------------


async def test_two_resolutions_of_one_conflict_at_the_same_moment_give_one_200_and_one_409(world: World) -> None:
    a, b, sup = world.officer_a, world.officer_b, world.supervisor
    for round_ in range(4):
        record_id = f"v-race-{round_}"
        created = await a.push_ok([{"collection": "violations", "id": record_id, "fields": {
            k: edit(v, now_stamp("lamson-h01")) for k, v in
            {"ward_id": "lam-son", "check_id": "chk-1", "premises_id": "prem-1", "category": "fire_safety", "status": "open", "fine_vnd": 1}.items()}}])  # fmt: skip
        base = created["results"][0]["record"]["stamps"]["fine_vnd"]
        await b.push_ok([{"collection": "violations", "id": record_id, "fields": {"fine_vnd": edit(2, now_stamp("lamson-h02"), base)}}])
        answer = await a.push_ok([{"collection": "violations", "id": record_id, "fields": {"fine_vnd": edit(3, now_stamp("lamson-h01"), base)}}])
        (conflict,) = answer["conflicts"]
        path = f"/v1/conflicts/{conflict['id']}/resolve"
        first, second = await asyncio.gather(
            sup.http.post(path, json={"choice": "value", "value": 100}), sup.http.post(path, json={"choice": "value", "value": 200})
        )
        assert sorted([first.status_code, second.status_code]) == [200, 409], (first.text, second.text)
        history = (await sup.http.get(f"/v1/records/violations/{record_id}/history")).json()
        resolutions = [e for e in history["edits"] if e["device_id"] == "sup-laptop"]
        assert len(resolutions) == 1
        winner = 100 if first.status_code == 200 else 200
        record = await pulled(sup, record_id)
        assert record is not None and record["fields"]["fine_vnd"] == winner



# -- 2. fair use: limits per authenticated device, slow bodies ---------------------------------


async def _slow_push(base_url: str, authorization: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A push whose body never comes whole: headers and a first few bytes, then silence."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"POST /v1/sync/push HTTP/1.1\r\nHost: {host}\r\nAuthorization: {authorization}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    )
    writer.write(head.encode() + b'{"device_id": "lamson-h01", ')
    await writer.drain()
    return reader, writer


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass


async def _status(reader: asyncio.StreamReader, timeout: float) -> tuple[int, dict[str, str]]:
    async with asyncio.timeout(timeout):
        status = int((await reader.readline()).split()[1])
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
    return status, headers


@pytest.mark.settings(max_inflight=8, max_inflight_per_device=3, body_timeout_s=2.0)
async def test_one_device_holding_slow_bodies_under_many_header_spellings_cannot_make_another_devices_push_fail(world: World) -> None:
    token = world.officer_a.token
    hostile = [await _slow_push(world.base_url, "Bearer" + " " * n + f"{token}") for n in range(1, 9)]
    try:
        await asyncio.sleep(0.3)  # every one of them is in the server's hands
        other = await world.officer_b.push([new_premises("p-fair", "lam-son", "lamson-h02")])
        assert other.status_code == 200, other.text
        answers = await asyncio.gather(*(_status(reader, 10) for reader, _ in hostile))
        statuses = sorted(status for status, _ in answers)
        assert statuses == [408] * 3 + [429] * 5  # 3 in flight until their body is late, the rest refused at once
        assert all(int(headers["retry-after"]) >= 1 for status, headers in answers if status == 429)
    finally:
        for _, writer in hostile:
            await _close(writer)


@pytest.mark.settings(device_rate_per_s=0.5, device_burst=20)
async def test_a_device_past_its_rate_gets_429_with_retry_after_and_the_others_do_not(world: World) -> None:
    answers = [await world.officer_a.http.get("/v1/sync/pull") for _ in range(21)]
    assert [r.status_code for r in answers] == [200] * 20 + [429]
    assert answers[-1].headers["content-type"].startswith("application/problem+json")
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert (await world.officer_b.http.get("/v1/sync/pull")).status_code == 200
    # a garbled spelling of the same token is the same device
    again = await world.officer_a.http.get("/v1/sync/pull", headers={"Authorization": f"bearer    {world.officer_a.token}"})
    assert again.status_code == 429


@pytest.mark.settings(body_timeout_s=1.0, blob_min_bytes_per_window=100)
async def test_a_slow_but_moving_blob_upload_is_not_cut_and_a_stalled_one_is(world: World) -> None:
    import hashlib

    data = b"x" * 1_000
    blob_id = "sha256:" + hashlib.sha256(data).hexdigest()

    async def trickle(pause: float) -> Any:
        for start in range(0, len(data), 200):
            yield data[start : start + 200]
            await asyncio.sleep(pause)

    moving = await world.officer_a.http.put(f"/v1/blobs/{blob_id}", content=trickle(0.4), headers={"Content-Length": str(len(data))})
    assert moving.status_code in (200, 201), moving.text  # 2 s in all, over the 1 s body timeout: each second brought 500 bytes
    other = b"y" * 1_000
    other_id = "sha256:" + hashlib.sha256(other).hexdigest()
    host, port = world.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            f"PUT /v1/blobs/{other_id} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {world.officer_a.token}\r\n"
            "Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n".encode() + other[:10]
        )
        await writer.drain()
        status, _ = await _status(reader, 10)
        assert status == 408  # 10 bytes in a window that needs 100
    finally:
        await _close(writer)


# -- 5. blobs: a quota for what no record names; expiry ------------------------------------------


def _blob(fill: bytes, size: int = 1_000) -> tuple[str, bytes]:
    import hashlib

    data = fill * size
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def _violation_naming(record_id: str, *blob_ids: str) -> dict[str, Any]:
    ts = now_stamp("lamson-h01")
    values = {"ward_id": "lam-son", "check_id": "chk-1", "premises_id": "prem-1", "category": "fire_safety", "status": "open"}
    fields: dict[str, Any] = {k: edit(v, ts) for k, v in values.items()}
    fields["photos"] = {"add": list(blob_ids), "remove": [], "ts": ts}
    return {"collection": "violations", "id": record_id, "fields": fields}


@pytest.mark.settings(blob_quota_bytes=1_500)
async def test_blobs_no_record_names_count_against_their_uploaders_quota(world: World) -> None:
    a, b = world.officer_a, world.officer_b
    first_id, first = _blob(b"a")
    second_id, second = _blob(b"b")
    assert (await a.http.put(f"/v1/blobs/{first_id}", content=first)).status_code == 201
    refused = await a.http.put(f"/v1/blobs/{second_id}", content=second)
    assert refused.status_code == 413 and refused.headers["content-type"].startswith("application/problem+json")
    chunk = await a.http.put(f"/v1/blobs/{second_id}", content=second[:10], headers={"Content-Range": "bytes 0-9/1000"})
    assert chunk.status_code == 413  # a resumable upload is held to it from its first chunk
    assert (await b.http.put(f"/v1/blobs/{second_id}", content=second)).status_code == 201  # another officer's quota
    # once a record names the first, it no longer counts
    await a.push_ok([_violation_naming("v-photo", first_id)])
    third_id, third = _blob(b"c")
    assert (await a.http.put(f"/v1/blobs/{third_id}", content=third)).status_code == 201


@pytest.mark.settings(blob_quota_bytes=1_500, blob_unnamed_ttl_s=1.0)
async def test_a_blob_no_record_names_expires_and_frees_its_quota(world: World) -> None:
    a = world.officer_a
    first_id, first = _blob(b"a")
    second_id, second = _blob(b"b")
    assert (await a.http.put(f"/v1/blobs/{first_id}", content=first)).status_code == 201
    assert (await a.http.put(f"/v1/blobs/{second_id}", content=second)).status_code == 413
    async with asyncio.timeout(10):
        while (await a.http.put(f"/v1/blobs/{second_id}", content=second)).status_code != 201:
            await asyncio.sleep(0.3)
    # the expired one is gone: a record naming it now finds it missing
    await a.push_ok([_violation_naming("v-late", first_id)])
    missing = (await a.http.get("/v1/blobs/missing")).json()["ids"]
    assert first_id in missing


@pytest.mark.settings(blob_staging_ttl_s=2.0)
async def test_an_unfinished_upload_expires_after_it_began_however_often_it_is_topped_up(world: World) -> None:
    a = world.officer_a
    blob_id, data = _blob(b"s")
    offset = 0
    started = time.monotonic()
    async with asyncio.timeout(15):
        while True:
            answer = await a.http.put(f"/v1/blobs/{blob_id}", content=data[offset : offset + 10], headers={"Content-Range": f"bytes {offset}-{offset + 9}/1000"})
            if answer.status_code == 409:
                break
            assert answer.status_code == 202, answer.text
            offset += 10
            await asyncio.sleep(0.3)
    assert answer.headers["upload-offset"] == "0"  # dropped whole: the upload starts over
    assert time.monotonic() - started >= 2.0
