"""Pull (PROTOCOL.md section 5): scope, order, pages, cursors, nothing skipped."""

from __future__ import annotations

import asyncio
import base64
import random
from typing import Any

import pytest

from . import storedb
from .helpers import Api, World, cursor_epoch, edit, premises, stamp, violation

PROBLEM = "application/problem+json"


async def test_a_record_changed_many_times_comes_once_as_it_now_stands(world: World) -> None:
    await world.officer_a.push_ok([premises("p1", "lam-son", "lamson-h01")])
    last = None
    for rooms in range(10):
        ts = stamp("lamson-h01")
        await world.officer_a.push_ok([{"collection": "premises", "id": "p1", "fields": {"rooms": edit(rooms, ts, last)}}])
        last = ts
    records = await world.officer_b.pull_all()
    assert len(records) == 1
    assert records[0]["fields"]["rooms"] == 9


async def test_records_come_in_commit_order_with_rising_seq(world: World) -> None:
    for i in range(5):
        await world.officer_a.push_ok([premises(f"p{i}", "lam-son", "lamson-h01")])
    await world.officer_a.push_ok([{"collection": "premises", "id": "p1", "fields": {"rooms": edit(3, stamp("lamson-h01"))}}])
    records = await world.officer_b.pull_all()
    assert [r["id"] for r in records] == ["p0", "p2", "p3", "p4", "p1"]
    seqs = [r["seq"] for r in records]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5


async def test_pages_follow_the_limit_until_more_is_false(world: World) -> None:
    await world.officer_a.push_ok([premises(f"p{i}", "lam-son", "lamson-h01") for i in range(5)])
    pages = []
    cursor = ""
    while True:
        page = (await world.officer_b.http.get("/v1/sync/pull", params={"cursor": cursor, "limit": 2})).json()
        pages.append([r["id"] for r in page["records"]])
        cursor = page["cursor"]
        if not page["more"]:
            break
    assert pages == [["p0", "p1"], ["p2", "p3"], ["p4"]]
    again = (await world.officer_b.http.get("/v1/sync/pull", params={"cursor": cursor})).json()
    assert again == {"records": [], "cursor": cursor, "more": False}


async def test_a_client_that_pulled_everything_gets_only_newer_changes(world: World) -> None:
    await world.officer_a.push_ok([premises("p1", "lam-son", "lamson-h01")])
    page = (await world.officer_b.http.get("/v1/sync/pull")).json()
    await world.officer_a.push_ok([premises("p2", "lam-son", "lamson-h01")])
    later = (await world.officer_b.http.get("/v1/sync/pull", params={"cursor": page["cursor"]})).json()
    assert [r["id"] for r in later["records"]] == ["p2"]


async def test_the_collections_filter(world: World) -> None:
    await world.officer_a.push_ok([premises("p1", "lam-son", "lamson-h01"), violation("v1", "lam-son", "lamson-h01")])
    assert [r["id"] for r in await world.officer_b.pull_all(collections="violations")] == ["v1"]
    assert len(await world.officer_b.pull_all(collections="violations,premises")) == 2
    response = await world.officer_b.http.get("/v1/sync/pull", params={"collections": "violations,ufo"})
    assert response.status_code == 400 and response.headers["content-type"].startswith(PROBLEM)


@pytest.mark.parametrize("cursor", ["%%%", "bm90LWEtY3Vyc29y", base64.urlsafe_b64encode(b"x:-5").decode(), "a" * 150])
async def test_an_unreadable_cursor_is_400(world: World, cursor: str) -> None:
    response = await world.officer_b.http.get("/v1/sync/pull", params={"cursor": cursor})
    assert response.status_code in (400, 410)
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_a_cursor_from_another_epoch_is_410(world: World) -> None:
    await world.officer_a.push_ok([premises("p1", "lam-son", "lamson-h01")])
    foreign = base64.urlsafe_b64encode(b"0000000000000000:1").decode().rstrip("=")
    response = await world.officer_b.http.get("/v1/sync/pull", params={"cursor": foreign})
    assert response.status_code == 410
    assert response.json()["type"].endswith("cursor-expired")


async def test_a_cursor_ahead_of_the_store_is_410(world: World) -> None:
    page = (await world.officer_b.http.get("/v1/sync/pull")).json()
    epoch = cursor_epoch(page["cursor"])
    ahead = base64.urlsafe_b64encode(f"{epoch}:999999".encode()).decode().rstrip("=")
    response = await world.officer_b.http.get("/v1/sync/pull", params={"cursor": ahead})
    assert response.status_code == 410


@pytest.mark.parametrize("limit", ["0", "1001", "-3", "many"])
async def test_a_limit_out_of_bounds_is_refused(world: World, limit: str) -> None:
    response = await world.officer_b.http.get("/v1/sync/pull", params={"limit": limit})
    assert response.status_code in (400, 422)
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_a_user_with_no_ward_sees_nothing(world: World) -> None:
    await world.officer_a.push_ok([premises("p1", "lam-son", "lamson-h01")])
    await world.admin.http.post("/v1/admin/users", json={"id": "u-new", "name": "Mới", "role": "officer"})
    token = (await world.admin.http.post("/v1/admin/devices", json={"device_id": "new-h1", "user_id": "u-new"})).json()["token"]
    api = Api(world.base_url, token, "new-h1")
    try:
        assert await api.pull_all() == []
    finally:
        await api.aclose()


async def test_a_reader_paging_while_writers_commit_misses_nothing(world: World, db_url: str) -> None:
    """Four writers create and edit records while a reader pages with tiny pages.
    After a last pass the reader holds every record in its final state."""
    writers = [(world.officer_a, "lamson-h01"), (world.officer_b, "lamson-h02")]
    rng = random.Random(7)
    done = asyncio.Event()

    async def write(api: Api, node: str, tag: str) -> None:
        ids: list[str] = []
        for round_ in range(25):
            batch: list[dict[str, Any]] = []
            for i in range(rng.randint(1, 6)):
                record_id = f"{tag}-{round_}-{i}"
                ids.append(record_id)
                batch.append(premises(record_id, "lam-son", node))
            for record_id in rng.sample(ids, min(3, len(ids))):
                batch.append({"collection": "premises", "id": record_id, "fields": {"rooms": edit(rng.randint(0, 99), stamp(node))}})
            await api.push_ok(batch)
            await asyncio.sleep(0)

    async def read() -> dict[str, dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        cursor = ""
        while True:
            writers_finished = done.is_set()  # before the request: its answer then covers every write
            response = await world.supervisor.http.get("/v1/sync/pull", params={"cursor": cursor, "limit": 3})
            page = response.json()
            for record in page["records"]:
                previous = seen.get(record["id"])
                assert previous is None or previous["seq"] < record["seq"]
                seen[record["id"]] = record
            cursor = page["cursor"]
            if not page["more"]:
                if writers_finished:
                    return seen
                await asyncio.sleep(0.001)

    async def writers_then_done() -> None:
        await asyncio.gather(*(write(api, node, f"{node}-{k}") for k in range(2) for api, node in writers))
        done.set()

    seen, _ = await asyncio.gather(read(), writers_then_done())
    final = {row[0]: row[1] for row in await storedb.rows(db_url, "SELECT id, seq FROM records")}
    assert {k: v["seq"] for k, v in seen.items()} == final
    assert len(final) > 100



async def test_pulls_never_read_an_older_snapshot_than_the_last_answer(world: World, db_url: str) -> None:
    """Every pull starts from a snapshot at least as new as the one before it.

    Token lookups share the SQLite store's reader connections with the pulls; if one of
    them held its statement open across an await, a pull on that connection would read
    that older snapshot, find its own cursor ahead of the store and answer 410 as if the
    store had been restored from a backup.  Three round-robin readers and many lookups make
    the interleaving frequent; the server writes meanwhile.
    """
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite reader connections; PostgreSQL reads through its own pool")
    from sync_server.services.identity import hash_token
    from sync_server.stores.sqlite.store import SqliteStore

    assert world.officer_b.token is not None
    token_hash = hash_token(world.officer_b.token)
    store = SqliteStore(db_url, readers=3)
    await store.open()
    stop = asyncio.Event()

    async def write() -> None:
        try:
            for i in range(80):
                await world.officer_a.push_ok([premises(f"s{i}", "lam-son", "lamson-h01")])
        finally:
            stop.set()

    async def chase() -> int:
        cursor, pulls = None, 0
        while not stop.is_set():
            page = await store.pull(None, cursor, 3, None)  # raised CursorExpired on a stale snapshot
            cursor, pulls = page.cursor, pulls + 1
            await asyncio.sleep(0)
        return pulls

    async def lookups() -> None:
        while not stop.is_set():
            assert await store.principal(token_hash) is not None

    try:
        _, pulls, *_ = await asyncio.gather(write(), chase(), *(lookups() for _ in range(20)))
    finally:
        await store.close()
    assert pulls > 10


async def test_a_cursor_of_the_first_form_is_still_read(world: World) -> None:
    await world.officer_a.push_ok([premises("p1", "lam-son", "lamson-h01"), premises("p2", "lam-son", "lamson-h01")])
    first = (await world.officer_b.http.get("/v1/sync/pull", params={"limit": 1})).json()
    assert "." in first["cursor"] and len(first["cursor"]) < 20  # the short form: an idle sync sends it every time
    position = int(first["cursor"].split(".")[1], 36)
    old = base64.urlsafe_b64encode(f"{cursor_epoch(first['cursor'])}:{position}".encode()).decode().rstrip("=")
    for cursor in (first["cursor"], old):
        page = (await world.officer_b.http.get("/v1/sync/pull", params={"cursor": cursor})).json()
        assert [r["id"] for r in page["records"]] == ["p2"]
