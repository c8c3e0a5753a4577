"""Several server workers over one PostgreSQL database (``serve --workers 4``).

Forty devices push at once, through whichever worker the kernel hands each
connection to: new records, edits of records they all share, and change sets
sent twice at the same moment (a retry racing its original on another worker).
Readers page with small pages all along. Afterwards: no reader skipped a
version, none saw a record twice in a page or go back, every reader holds what
the server holds, and no change set was applied twice.

A trigger makes each write transaction last 0-100 ms more, unevenly, so that
transactions commit in another order than they took their ids. With it, this
test fails every time (three runs of three) when pulls ignore the horizon of
``stores/postgres/_cursor.py``, and when the store's key locks are left out.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from . import storedb
from .helpers import bootstrap_admin, edit, new_id, premises, stamp
from .serving import ServerProcess

pytestmark = pytest.mark.slow

WORKERS = 4
DEVICES = 40
ROUNDS = 6
SHARED = 12  # records of ward A every device of ward A edits
WARDS = ("lam-son", "phu-son")


@pytest.fixture
def pg_url(postgres: storedb.Cluster) -> Iterator[str]:
    url = postgres.new_database(migrated=False)  # the workers migrate it, all at once
    yield url
    postgres.drop_database(url)


@pytest.fixture
async def workers(pg_url: str, tmp_path: Any) -> AsyncIterator[str]:
    server = ServerProcess(pg_url, tmp_path / "server.log", args=("--workers", str(WORKERS), "--blobs", str(tmp_path / "blobs")), log_level="warning")
    try:
        await server.start(timeout=30)
        yield server.url
    finally:
        server.stop()
    assert "Traceback" not in server.log(), server.log()


async def _setup(url: str, pg_url: str) -> tuple[dict[str, str], dict[str, str]]:
    """Wards, one team each, DEVICES officers with a device each, and three readers."""
    admin_token = await bootstrap_admin(pg_url)
    # Write transactions take their ids in one order and commit in another when
    # they last a little and unevenly, as on a busy server: the case a pull must survive.
    await storedb.execute(
        pg_url,
        """CREATE FUNCTION jitter() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN PERFORM pg_sleep(random() * 0.1); RETURN NULL; END $$;
           CREATE TRIGGER jitter AFTER INSERT OR UPDATE ON records FOR EACH STATEMENT EXECUTE FUNCTION jitter();""",
    )
    devices: dict[str, str] = {}
    readers: dict[str, str] = {"admin": admin_token}
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=60) as http:

        async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            response = await http.post(path, json=body)
            assert response.status_code == 201, response.text
            return response.json()  # type: ignore[no-any-return]

        for ward in WARDS:
            await post("/v1/admin/wards", {"id": ward, "name": ward})
            await post("/v1/admin/teams", {"id": f"{ward}-t", "ward_id": ward, "name": "Tổ"})
        await post("/v1/admin/users", {"id": "u-sup", "name": "Giám sát", "role": "supervisor", "ward_ids": list(WARDS)})
        readers["supervisor"] = (await post("/v1/admin/devices", {"device_id": "sup", "user_id": "u-sup"}))["token"]

        async def officer(i: int) -> None:
            ward = WARDS[i % 2]
            await post("/v1/admin/users", {"id": f"u{i}", "name": f"Cán bộ {i}", "role": "officer", "team_ids": [f"{ward}-t"]})
            devices[f"h{i:02d}"] = (await post("/v1/admin/devices", {"device_id": f"h{i:02d}", "user_id": f"u{i}"}))["token"]

        await asyncio.gather(*(officer(i) for i in range(DEVICES)))
        readers["officer"] = devices["h00"]  # ward lam-son only
    return devices, readers


async def _device(url: str, device: str, token: str, rng: random.Random) -> list[str]:
    """Push ROUNDS change sets; one of them twice at once. Answers the change set ids sent twice."""
    index = int(device[1:])
    ward = WARDS[index % 2]
    twice: list[str] = []
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as a, httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as b:
        for round_ in range(ROUNDS):
            changes: list[dict[str, Any]] = [premises(f"{device}-{round_}-{k}", ward, device) for k in range(rng.randint(1, 3))]
            if ward == "lam-son" and round_ % 2:
                # lam-son devices create the shared records (the first creation wins the
                # immutable fields, the others merge in) and edit them; not every time, or
                # the record locks would line every transaction up
                for shared in rng.sample(range(SHARED), 1):
                    changes.append(premises(f"shared-{shared}", ward, device, name=f"Nhà {shared}"))
                    changes.append({"collection": "premises", "id": f"shared-{shared}", "fields": {"rooms": edit(rng.randint(0, 99), stamp(device))}})
            body = {"device_id": device, "changeset_id": new_id(), "changes": changes}
            if round_ == ROUNDS // 2:
                first, second = await asyncio.gather(a.post("/v1/sync/push", json=body), b.post("/v1/sync/push", json=body))
                assert first.status_code == second.status_code == 200, (first.text, second.text)
                assert first.content == second.content
                twice.append(body["changeset_id"])
            else:
                response = await a.post("/v1/sync/push", json=body)
                assert response.status_code == 200, response.text
            await asyncio.sleep(rng.random() * 0.02)
    return twice


async def _reader(url: str, token: str, limit: int, done: asyncio.Event) -> dict[str, dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    cursor = ""
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        while True:
            writers_finished = done.is_set()  # before the request: its answer then covers every write
            response = await http.get("/v1/sync/pull", params={"cursor": cursor, "limit": limit})
            assert response.status_code == 200, response.text
            page = response.json()
            ids = [r["id"] for r in page["records"]]
            assert len(ids) == len(set(ids)), f"a record twice in one page: {ids}"
            for record in page["records"]:
                previous = seen.get(record["id"])
                assert previous is None or previous["seq"] < record["seq"], "a reader went back to an older version"
                seen[record["id"]] = record
            cursor = page["cursor"]
            if not page["more"]:
                if writers_finished:
                    return seen
                await asyncio.sleep(0.001)


async def test_four_workers_forty_devices_and_paging_readers_skip_nothing_and_converge(workers: str, pg_url: str) -> None:
    devices, readers = await _setup(workers, pg_url)
    rng = random.Random(2023)
    done = asyncio.Event()

    async def all_devices() -> list[list[str]]:
        try:
            return await asyncio.gather(*(_device(workers, d, t, random.Random(rng.random())) for d, t in devices.items()))
        finally:
            done.set()

    reading = [
        _reader(workers, readers["supervisor"], 3, done),
        _reader(workers, readers["officer"], 5, done),
        _reader(workers, readers["admin"], 10, done),
    ]
    twice, *views = await asyncio.gather(all_devices(), *reading)

    stored = {r[0]: (r[1], r[2]) for r in await storedb.rows(pg_url, "SELECT id, seq, ward_id FROM records")}
    assert len(stored) > DEVICES * ROUNDS
    in_ward = {i for i, (_, ward) in stored.items() if ward == "lam-son"}
    for view, scope in zip(views, [set(stored), in_ward, set(stored)], strict=True):
        # nothing skipped: every record in scope, at its final version
        assert {i: r["seq"] for i, r in view.items()} == {i: stored[i][0] for i in scope}
    # convergence: every reader holds what a fresh pull of the server holds
    async with httpx.AsyncClient(base_url=workers, headers={"Authorization": f"Bearer {readers['admin']}"}) as http:
        fresh = (await http.get("/v1/sync/pull", params={"limit": 1000})).json()
    assert not fresh["more"]
    final = {r["id"]: r for r in fresh["records"]}
    assert views[0] == final and views[2] == final
    assert views[1] == {i: r for i, r in final.items() if i in in_ward}
    # a change set sent twice at once was applied once: both got the first answer, byte for byte
    # (checked in _device), and it is stored once
    sent_twice = [c for ids in twice for c in ids]
    assert len(sent_twice) == DEVICES
    counts = await storedb.rows(pg_url, "SELECT changeset_id FROM changesets")
    assert len(counts) == DEVICES * ROUNDS == len({c for (c,) in counts})


async def test_workers_sharing_a_blob_folder_store_each_photo_once_and_resume_across_workers(workers: str, pg_url: str, tmp_path: Any) -> None:
    """Eight devices upload the same six photos at once, each request on a new connection
    (any worker); one device uploads a large photo in chunks, each chunk on a new
    connection too. Every photo is stored once, intact, and nothing is left half-made."""
    devices, _ = await _setup(workers, pg_url)
    lam_son = [t for d, t in sorted(devices.items()) if int(d[1:]) % 2 == 0][:8]
    photos = [hashlib.shake_256(f"ảnh {i}".encode()).digest(300_000) for i in range(6)]
    ids = ["sha256:" + hashlib.sha256(p).hexdigest() for p in photos]

    async def put(token: str, blob_id: str, data: bytes, headers: dict[str, str] | None = None) -> int:
        async with httpx.AsyncClient(base_url=workers, headers={"Authorization": f"Bearer {token}", **(headers or {})}, timeout=60) as http:
            return (await http.put(f"/v1/blobs/{blob_id}", content=data)).status_code

    statuses = await asyncio.gather(*(put(t, i, p) for t in lam_son for i, p in zip(ids, photos, strict=True)))
    assert set(statuses) <= {200, 201} and statuses.count(201) >= len(ids)
    big = hashlib.shake_256(b"a scanned residence book").digest(1_000_000)
    big_id = "sha256:" + hashlib.sha256(big).hexdigest()
    step = 128 * 1024
    for start in range(0, len(big), step):
        end = min(len(big), start + step)
        status = await put(lam_son[0], big_id, big[start:end], {"Content-Range": f"bytes {start}-{end - 1}/{len(big)}"})
        assert status == (202 if end < len(big) else 201)
    ts = stamp("h00")
    change = {"collection": "violations", "id": new_id(), "fields": {
        "ward_id": edit("lam-son", ts), "check_id": edit("c", ts), "premises_id": edit("p", ts), "category": edit("fire_safety", ts),
        "status": edit("open", ts), "photos": {"add": [*ids, big_id], "ts": ts}}}
    async with httpx.AsyncClient(base_url=workers, headers={"Authorization": f"Bearer {lam_son[0]}"}, timeout=60) as http:
        answer = await http.post("/v1/sync/push", json={"device_id": "h00", "changeset_id": new_id(), "changes": [change]})
        assert answer.json()["results"][0]["status"] == "applied", answer.text
        assert (await http.get("/v1/blobs/missing")).json()["ids"] == []
    for token in lam_son[:3]:  # read back through new connections
        for blob_id, data in [*zip(ids, photos, strict=True), (big_id, big)]:
            async with httpx.AsyncClient(base_url=workers, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
                assert (await http.get(f"/v1/blobs/{blob_id}")).content == data
    folder = tmp_path / "blobs"
    assert sorted(p.name for p in (folder / "sha256").glob("??/??/*")) == sorted(i[7:] for i in [*ids, big_id])
    assert list((folder / "tmp").iterdir()) == [] and list((folder / "staging").iterdir()) == []
