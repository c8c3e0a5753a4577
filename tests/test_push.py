"""Push (PROTOCOL.md section 4): idempotent, atomic, no poison pills, limits, codecs."""

from __future__ import annotations

import gzip
import unicodedata

import msgspec
import pytest

from . import storedb
from .helpers import World, edit, new_id, premises, stamp, violation

PROBLEM = "application/problem+json"


async def _edits(db_url: str) -> int:
    ((count,),) = await storedb.rows(db_url, "SELECT count(*) FROM edits")
    return int(count)


async def test_a_retried_changeset_is_applied_once_and_answered_the_same(world: World, db_url: str) -> None:
    changes = [premises("p1", "lam-son", "lamson-h01"), violation("v1", "lam-son", "lamson-h01")]
    first = await world.officer_a.push("cs-1" and changes, changeset_id="cs-1")
    again = await world.officer_a.push(changes, changeset_id="cs-1")
    assert first.status_code == again.status_code == 200
    assert first.content == again.content
    assert await _edits(db_url) == 2
    assert len(await world.officer_b.pull_all()) == 2


async def test_a_retry_in_messagepack_of_a_json_changeset_is_the_same_changeset(world: World) -> None:
    changes = [premises("p1", "lam-son", "lamson-h01")]
    body = {"device_id": "lamson-h01", "changeset_id": "cs-mp", "changes": changes}
    first = await world.officer_a.http.post("/v1/sync/push", json=body)
    again = await world.officer_a.http.post(
        "/v1/sync/push", content=msgspec.msgpack.encode(body), headers={"Content-Type": "application/msgpack"}
    )
    assert again.status_code == 200
    assert again.json() == first.json()


async def test_the_same_changeset_id_with_another_body_is_409(world: World) -> None:
    await world.officer_a.push_ok([premises("p1", "lam-son", "lamson-h01")], changeset_id="cs-1")
    response = await world.officer_a.push([premises("p2", "lam-son", "lamson-h01")], changeset_id="cs-1")
    assert response.status_code == 409
    assert response.headers["content-type"].startswith(PROBLEM)
    assert [r["id"] for r in await world.officer_a.pull_all()] == ["p1"]


async def test_changeset_ids_are_per_device(world: World) -> None:
    await world.officer_a.push_ok([premises("p1", "lam-son", "lamson-h01")], changeset_id="cs-1")
    await world.officer_b.push_ok([premises("p2", "lam-son", "lamson-h02")], changeset_id="cs-1")
    assert sorted(r["id"] for r in await world.officer_a.pull_all()) == ["p1", "p2"]


BAD_CHANGES = {
    "unknown collection": ({"collection": "spaceships", "id": "x1", "fields": {}}, "unknown_collection", None),
    "wrong type": (
        {"collection": "violations", "id": "x2", "fields": {"fine_vnd": edit("much", stamp("lamson-h01"))}},
        "invalid",
        "fine_vnd",
    ),
    "out of enum": (
        {"collection": "premises", "id": "x3", "fields": {"kind": edit("castle", stamp("lamson-h01"))}},
        "invalid",
        "kind",
    ),
    "negative count": (
        {"collection": "checks", "id": "x4", "fields": {"residents_present": edit(-1, stamp("lamson-h01"))}},
        "invalid",
        "residents_present",
    ),
    "unknown field": (
        {"collection": "premises", "id": "x5", "fields": {"colour": edit("red", stamp("lamson-h01"))}},
        "invalid",
        "colour",
    ),
    "missing required on create": (
        {"collection": "premises", "id": "x6", "fields": {"ward_id": edit("lam-son", stamp("lamson-h01"))}},
        "invalid",
        "name",
    ),
    "bad stamp": (
        {"collection": "premises", "id": "x7", "fields": {"name": {"value": "A", "ts": "yesterday"}}},
        "invalid",
        "name",
    ),
    "bad record id": ({"collection": "premises", "id": "../../etc", "fields": {}}, "invalid", "id"),
    "stamp older than base": (
        {"collection": "premises", "id": "x8", "fields": {"name": edit("A", stamp("lamson-h01", 1_000_000_000_000), stamp("lamson-h01", 1_600_000_000_000))}},
        "invalid",
        "name",
    ),
    "set value instead of add": (
        {"collection": "checks", "id": "x9", "fields": {"photos": edit(["a"], stamp("lamson-h01"))}},
        "invalid",
        "photos",
    ),
    "delete of a record never created": (
        {"collection": "checks", "id": "x10", "delete": {"ts": stamp("lamson-h01")}},
        "invalid",
        None,
    ),
    "not an object": ("just a string", "invalid", None),
    "naive timestamp": (
        {
            "collection": "tips",
            "id": "x11",
            "fields": {"received_at": edit("2023-06-01T08:00:00", stamp("lamson-h01"))},
        },
        "invalid",
        "received_at",
    ),
}


@pytest.mark.parametrize("name", list(BAD_CHANGES))
async def test_a_bad_change_is_rejected_alone_while_the_others_apply(world: World, name: str) -> None:
    bad, code, field = BAD_CHANGES[name]
    answer = await world.officer_a.push_ok(
        [premises("good-1", "lam-son", "lamson-h01"), bad, premises("good-2", "lam-son", "lamson-h01")]  # type: ignore[list-item]
    )
    statuses = [r["status"] for r in answer["results"]]
    assert statuses == ["applied", "rejected", "applied"]
    (error,) = answer["results"][1]["errors"]
    assert error["code"] == code
    assert error.get("field") == field
    assert error["detail"]
    assert sorted(r["id"] for r in await world.officer_a.pull_all()) == ["good-1", "good-2"]


async def test_a_rejected_change_names_its_collection_and_id(world: World) -> None:
    bad = {"collection": "violations", "id": "v-bad", "fields": {"status": edit("lost", stamp("lamson-h01"))}}
    answer = await world.officer_a.push_ok([bad])
    result = answer["results"][0]
    assert (result["collection"], result["id"], result["status"]) == ("violations", "v-bad", "rejected")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b'{"changeset_id": "c", "changes": []}', 400),
        (b'{"device_id": "lamson-h01", "changes": []}', 400),
        (b'{"device_id": "lamson-h01", "changeset_id": "c", "changes": {}}', 400),
        (b"[]", 400),
        (b'{"device_id": "lamson-h01", "changeset_id": "c", "changes": [], "extra": 1}', 400),
        ("\xff\xfe".encode("latin-1"), 400),
    ],
    ids=["syntax", "no-device", "no-changeset", "changes-not-list", "array", "extra-key", "invalid-utf8"],
)
async def test_a_malformed_envelope_fails_the_whole_request(world: World, body: bytes, status: int) -> None:
    response = await world.officer_a.http.post("/v1/sync/push", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code in (status, 422), response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "Traceback" not in response.text


async def test_too_many_changes_in_one_changeset_is_413(world: World) -> None:
    changes = [premises(f"p{i}", "lam-son", "lamson-h01") for i in range(5001)]
    response = await world.officer_a.push(changes)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith(PROBLEM)
    assert await world.officer_a.pull_all() == []


async def test_a_body_over_8_mib_is_413(world: World) -> None:
    body = b'{"device_id": "lamson-h01", "changeset_id": "c", "changes": [], "pad": "' + b"x" * (8 * 1024 * 1024) + b'"}'
    response = await world.officer_a.http.post("/v1/sync/push", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_a_gzip_bomb_is_refused_by_its_size_after_decompression(world: World) -> None:
    inner = b'{"device_id": "lamson-h01", "changeset_id": "c", "changes": [], "pad": "' + b"0" * (64 * 1024 * 1024) + b'"}'
    bomb = gzip.compress(inner, compresslevel=9)
    assert len(bomb) < 200_000
    response = await world.officer_a.http.post(
        "/v1/sync/push", content=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert response.status_code == 413


async def test_a_gzip_body_is_accepted(world: World) -> None:
    body = msgspec.json.encode({"device_id": "lamson-h01", "changeset_id": "gz", "changes": [premises("p1", "lam-son", "lamson-h01")]})
    response = await world.officer_a.http.post(
        "/v1/sync/push", content=gzip.compress(body), headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert response.status_code == 200
    assert response.json()["results"][0]["status"] == "applied"


@pytest.mark.parametrize("payload", [b"not gzip at all", gzip.compress(b'{"a": 1}')[:-6]], ids=["corrupt", "truncated"])
async def test_a_broken_gzip_body_is_400(world: World, payload: bytes) -> None:
    response = await world.officer_a.http.post(
        "/v1/sync/push", content=payload, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert response.status_code == 400


async def test_an_unsupported_content_type_is_415(world: World) -> None:
    response = await world.officer_a.http.post("/v1/sync/push", content=b"a=b", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415


async def test_messagepack_in_and_out(world: World) -> None:
    body = {"device_id": "lamson-h01", "changeset_id": "mp", "changes": [premises("p1", "lam-son", "lamson-h01")]}
    headers = {"Content-Type": "application/msgpack", "Accept": "application/msgpack"}
    response = await world.officer_a.http.post("/v1/sync/push", content=msgspec.msgpack.encode(body), headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/msgpack")
    answer = msgspec.msgpack.decode(response.content)
    assert answer["results"][0]["record"]["fields"]["name"] == "Nhà trọ Lê Lợi"
    pulled = await world.officer_a.http.get("/v1/sync/pull", headers={"Accept": "application/msgpack"})
    page = msgspec.msgpack.decode(pulled.content)
    assert page["records"][0]["id"] == "p1" and page["more"] is False


async def test_a_bad_change_in_messagepack_is_rejected_alone(world: World) -> None:
    bad = {"collection": "premises", "id": "x", "fields": {"rooms": edit("many", stamp("lamson-h01"))}}
    body = {"device_id": "lamson-h01", "changeset_id": "mp2", "changes": [bad, premises("p1", "lam-son", "lamson-h01")]}
    response = await world.officer_a.http.post(
        "/v1/sync/push", content=msgspec.msgpack.encode(body), headers={"Content-Type": "application/msgpack"}
    )
    assert [r["status"] for r in response.json()["results"]] == ["rejected", "applied"]
    assert response.json()["results"][0]["errors"][0]["field"] == "rooms"


async def test_vietnamese_text_comes_back_byte_exact(world: World) -> None:
    name = "Nhà nghỉ Hoa Hồng – Đường Lê Lợi, phường Lam Sơn"
    assert unicodedata.is_normalized("NFC", name)
    await world.officer_a.push_ok([premises("p1", "lam-son", "lamson-h01", name=name)])
    response = await world.officer_b.http.get("/v1/sync/pull")
    assert name.encode() in response.content
    assert response.json()["records"][0]["fields"]["name"] == name


async def test_decomposed_text_is_stored_composed(world: World) -> None:
    name = unicodedata.normalize("NFD", "Nhà trọ Lê Lợi")
    await world.officer_a.push_ok([premises("p1", "lam-son", "lamson-h01", name=name)])
    (record,) = await world.officer_b.pull_all()
    assert record["fields"]["name"] == unicodedata.normalize("NFC", name)


async def test_a_field_value_over_64_kib_is_rejected_as_too_large(world: World) -> None:
    ts = stamp("lamson-h01")
    change = {
        "collection": "checks",
        "id": "c1",
        "fields": {
            "ward_id": edit("lam-son", ts),
            "premises_id": edit("p1", ts),
            "kind": edit("residence", ts),
            "started_at": edit("2023-06-01T08:00:00+07:00", ts),
            "notes": edit("ồ" * 30_000, ts),  # 90,000 bytes in UTF-8, 30,000 characters
        },
    }
    answer = await world.officer_a.push_ok([change, premises("p1", "lam-son", "lamson-h01")])
    assert answer["results"][0]["status"] == "rejected"
    assert answer["results"][0]["errors"][0] == {"code": "too_large", "detail": answer["results"][0]["errors"][0]["detail"], "field": "notes"}
    assert answer["results"][1]["status"] == "applied"


async def test_an_applied_change_answers_the_record_as_it_now_stands(world: World) -> None:
    answer = await world.officer_a.push_ok([violation("v1", "lam-son", "lamson-h01", fine_vnd=1_500_000)])
    result = answer["results"][0]
    record = result["record"]
    assert result["seq"] == record["seq"]
    assert record["fields"]["fine_vnd"] == 1_500_000 and record["fields"]["status"] == "open"
    assert record["fields"]["created_by"] == "u-ngoc"
    assert record["fields"]["created_at"].startswith("2023-06-08T")
    assert set(record["stamps"]) == set(record["fields"])
    assert record["ward_id"] == "lam-son" and record["deleted"] is False
    assert isinstance(answer["cursor"], str) and answer["cursor"]


async def test_created_by_must_be_the_calling_user(world: World) -> None:
    change = premises("p1", "lam-son", "lamson-h01")
    change["fields"]["created_by"] = edit("u-hung", stamp("lamson-h01"))
    answer = await world.officer_a.push_ok([change])
    assert answer["results"][0]["errors"][0]["code"] == "forbidden"


async def test_a_changeset_is_atomic_when_the_store_fails(world: World, db_url: str) -> None:
    await storedb.fail_inserts_of(db_url, "boom", "disk on fire")  # mid-transaction, after p1 went in
    response = await world.officer_a.push([premises("p1", "lam-son", "lamson-h01"), premises("boom", "lam-son", "lamson-h01")])
    assert response.status_code == 500
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "disk on fire" not in response.text and "Traceback" not in response.text
    assert await world.officer_a.pull_all() == []
    assert await _edits(db_url) == 0
    # the server keeps working after the failed transaction
    await world.officer_a.push_ok([premises("p2", "lam-son", "lamson-h01")])
    assert [r["id"] for r in await world.officer_a.pull_all()] == ["p2"]


async def test_an_empty_changeset_is_fine(world: World) -> None:
    answer = await world.officer_a.push_ok([])
    assert answer["results"] == [] and answer["conflicts"] == []


async def test_two_changes_to_one_record_in_a_changeset_apply_in_order(world: World) -> None:
    ts1, ts2 = stamp("lamson-h01"), stamp("lamson-h01")
    answer = await world.officer_a.push_ok(
        [
            premises("p1", "lam-son", "lamson-h01"),
            {"collection": "premises", "id": "p1", "fields": {"rooms": edit(12, ts1)}},
            {"collection": "premises", "id": "p1", "fields": {"rooms": edit(14, ts2, ts1)}},
        ]
    )
    assert [r["status"] for r in answer["results"]] == ["applied"] * 3
    (record,) = await world.officer_a.pull_all()
    assert record["fields"]["rooms"] == 14
    assert answer["conflicts"] == []


_ = new_id


@pytest.mark.parametrize("field", ["name", "address"])
async def test_a_nul_character_in_text_is_rejected_alone(world: World, field: str) -> None:
    change = premises("p-nul", "lam-son", "lamson-h01")
    change["fields"][field] = edit("Nhà trọ\x00Lê Lợi", stamp("lamson-h01"))
    answer = await world.officer_a.push_ok([change, premises("p-ok", "lam-son", "lamson-h01")])
    assert [r["status"] for r in answer["results"]] == ["rejected", "applied"]
    assert answer["results"][0]["errors"][0]["field"] == field


async def test_a_nul_character_in_an_admin_name_is_a_400(world: World) -> None:
    response = await world.admin.http.post("/v1/admin/wards", json={"id": "w-nul", "name": "Phường\x00X"})
    assert response.status_code == 400


async def test_the_writer_goes_on_when_numbering_a_group_ahead_fails(world: World, store_kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """On SQLite a group is numbered ahead of its write (``stores.OneHopWrites``); if that
    fails, the group takes the ordinary path and the writer goes on (it used to stop, and
    every push after waited for its timeout)."""
    if store_kind != "sqlite":
        pytest.skip("only the SQLite store takes one-hop writes")
    from sync_server.stores.sqlite import SqliteStore

    original = SqliteStore.heads
    calls = 0

    async def failing_once(self: SqliteStore) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("disk I/O error")
        return await original(self)

    monkeypatch.setattr(SqliteStore, "heads", failing_once)
    await world.officer_a.push_ok([premises("p1", "lam-son", "lamson-h01")], changeset_id="cs-1")
    await world.officer_a.push_ok([premises("p2", "lam-son", "lamson-h01")], changeset_id="cs-2")
    assert calls >= 2
    assert sorted(r["id"] for r in await world.officer_b.pull_all()) == ["p1", "p2"]
