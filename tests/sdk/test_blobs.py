"""Attachments through the SDK against a real server: kept on the device, uploaded
before the edits that name them, resumed where a cut left them, fetched on demand."""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from client_sdk import ForbiddenError, RecordNotFound, SyncProgress, new_id
from schemas import Violation

from ..helpers import World
from .conftest import Fault, MakeClient, transport_of

VN = dt.timezone(dt.timedelta(hours=7))
KiB = 1024
Forwarder = Callable[[Fault | None], httpx.AsyncClient]


def photo(seed: str, size: int = 40 * KiB) -> bytes:
    """Bytes that look like a JPEG."""
    return b"\xff\xd8\xff\xe0" + hashlib.shake_256(seed.encode()).digest(size - 4)


def assert_contiguous(ranges: list[str], start: int, total: int) -> None:
    """Chunks that follow each other from ``start`` to the end: no byte twice, none left out."""
    at = start
    for text in ranges[next(n for n, r in enumerate(ranges) if r.startswith(f"bytes {start}-")) :]:
        first, last = (int(x) for x in text.removeprefix("bytes ").split("/")[0].split("-"))
        assert first == at, ranges
        at = last + 1
    assert at == total, ranges


def blob_id(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def violation(ward: str = "lam-son") -> Violation:
    return Violation(id=new_id(), ward_id=ward, check_id="chk-1", premises_id="prem-1", category="fire_safety", status="open")


def puts(http: httpx.AsyncClient) -> list[httpx.Request]:
    return [r for r in transport_of(http).seen if r.method == "PUT"]


async def test_a_record_with_three_photos_syncs_when_one_upload_fails_once(make_client: MakeClient, world: World, forward: Forwarder) -> None:
    """The second upload is refused once (503); the sync retries it, uploads all three
    after the push (photos never hold records back), and another device of the ward
    reads them back byte for byte."""
    failed: list[str] = []

    async def fail_second_upload_once(request: httpx.Request, n: int) -> str | None:
        if request.method == "PUT" and len([r for r in transport_of(http).seen if r.method == "PUT"]) == 2 and not failed:
            failed.append(request.url.path)
            return "503"
        return None

    http = forward(fail_second_upload_once)
    photos = [photo(f"exit-{i}") for i in range(3)]
    async with make_client(world.officer_a, http=http) as h01:
        v = await h01.create(violation())
        ids = [await h01.put_blob(data) for data in photos]
        for i in ids:
            await h01.add(Violation, v.id, "photos", i)
        progress: list[SyncProgress] = []
        report = await h01.sync(progress=progress.append)
        assert (report.blobs, report.pushed, report.rejected) == (3, 1, 0)
        assert report.retries == 1 and len(failed) == 1
        phases = [p.phase for p in progress]
        assert [p.blobs for p in progress if p.phase == "blobs"] == [1, 2, 3]  # one tick per photo sent
        assert max(n for n, phase in enumerate(phases) if phase == "push") < phases.index("blobs")
        assert progress[-1].blobs == 3
        assert await h01.unsent_blobs() == []
    seen = transport_of(http).seen
    first_push = next(n for n, r in enumerate(seen) if r.url.path == "/v1/sync/push")
    uploaded = {r.url.path.rsplit("/", 1)[-1] for r in seen[first_push:] if r.method == "PUT"}
    assert uploaded == set(ids)  # every photo went up after the edit naming it
    assert len(puts(http)) == 4  # three, and the one retry
    assert (await world.officer_a.http.get("/v1/blobs/missing")).json()["ids"] == []
    async with make_client(world.officer_b) as h02:
        await h02.sync()
        got = await h02.get(Violation, v.id)
        assert got is not None and sorted(got.photos) == sorted(ids)
        assert [await h02.get_blob(i) for i in ids] == photos


async def test_a_blob_is_uploaded_once_and_only_when_an_edit_names_it(make_client: MakeClient, world: World, forward: Forwarder) -> None:
    http = forward(None)
    async with make_client(world.officer_a, http=http) as h01:
        v = await h01.create(violation())
        named = await h01.put_blob(photo("named"))
        unnamed = await h01.put_blob(photo("kept for later"))
        await h01.add(Violation, v.id, "photos", named)
        await h01.sync()
        await h01.sync()
        assert [r.url.path for r in puts(http)] == [f"/v1/blobs/{named}"]
        assert await h01.unsent_blobs() == [unnamed]


async def test_a_large_blob_goes_up_in_chunks_and_a_lost_answer_does_not_start_it_over(
    make_client: MakeClient, world: World, forward: Forwarder
) -> None:
    """Chunks of 64 KiB; the answer to the third is lost after the server kept it: the
    SDK asks where the server's part ends (HEAD, Upload-Offset) before sending again,
    and no byte goes twice."""
    big = photo("a document scan", 300 * KiB)

    async def lose_third_answer(request: httpx.Request, n: int) -> str | None:
        chunks = [r for r in transport_of(http).seen if r.method == "PUT"]
        return "after" if request.method == "PUT" and len(chunks) == 3 else None

    http = forward(lose_third_answer)
    async with make_client(world.officer_a, http=http, blob_chunk_bytes=64 * KiB) as h01:
        v = await h01.create(violation())
        await h01.add(Violation, v.id, "photos", await h01.put_blob(big))
        report = await h01.sync()
        assert report.blobs == 1
    ranges = [r.headers["content-range"] for r in puts(http)]
    assert ranges[:3] == ["bytes 0-65535/307200", "bytes 65536-131071/307200", "bytes 131072-196607/307200"]
    assert_contiguous(ranges, 0, 307200)
    blob_requests = [r.method for r in transport_of(http).seen if r.url.path.startswith("/v1/blobs/sha256")]
    assert blob_requests[:5] == ["HEAD", "PUT", "PUT", "PUT", "HEAD"]
    got = await world.officer_b.http.get(f"/v1/blobs/{blob_id(big)}")
    assert got.status_code == 200 and got.content == big


async def test_an_upload_cut_off_by_a_dead_network_resumes_at_the_next_sync(make_client: MakeClient, world: World, forward: Forwarder) -> None:
    """The network dies after two chunks; the records are on the server already, the
    sync warns that the photo is pending. The next sync asks the server how far it got
    and sends only the rest: no byte twice."""
    big = photo("a long video still", 256 * KiB)
    down = [False]

    async def network(request: httpx.Request, n: int) -> str | None:
        if request.method == "PUT" and len(puts(http)) == 3:
            down[0] = True
        return "before" if down[0] else None

    http = forward(network)
    async with make_client(world.officer_a, http=http, blob_chunk_bytes=64 * KiB) as h01:
        v = await h01.create(violation())
        await h01.add(Violation, v.id, "photos", await h01.put_blob(big))
        cut = await h01.sync()
        assert cut.pushed == 1 and [w.code for w in cut.warnings] == ["blob_pending"]  # the edit never waits for its photo
        assert (await world.officer_b.http.get("/v1/blobs/missing")).json()["ids"] == [blob_id(big)]
        down[0] = False
        transport_of(http).fault = None
        before = len(transport_of(http).seen)
        report = await h01.sync()
        assert (report.blobs, report.pushed) == (1, 0)
        resumed = [r for r in transport_of(http).seen[before:] if r.url.path.startswith("/v1/blobs/sha256")]
    assert [r.method for r in resumed[:1]] == ["HEAD"]
    sent = [r.headers["content-range"] for r in resumed if r.method == "PUT"]
    assert_contiguous(sent, 131072, 262144)
    assert (await world.officer_b.http.get(f"/v1/blobs/{blob_id(big)}")).content == big


async def test_blobs_are_fetched_on_demand_in_ranges_and_kept(make_client: MakeClient, world: World, forward: Forwarder) -> None:
    big = photo("evidence", 200 * KiB)
    async with make_client(world.officer_a) as h01:
        v = await h01.create(violation())
        await h01.add(Violation, v.id, "photos", await h01.put_blob(big))
        await h01.sync()

    async def drop_second_range(request: httpx.Request, n: int) -> str | None:
        gets = [r for r in transport_of(http).seen if r.url.path.startswith("/v1/blobs/")]
        return "after" if len(gets) == 2 else None

    http = forward(drop_second_range)
    async with make_client(world.officer_b, http=http, blob_chunk_bytes=64 * KiB) as h02:
        with pytest.raises(RecordNotFound):
            await h02.get_blob(blob_id(big), fetch=False)
        assert await h02.get_blob(blob_id(big)) == big
        asked = [r.headers["range"] for r in transport_of(http).seen if r.url.path.startswith("/v1/blobs/")]
        # the second range is lost once and asked again; nothing before it is fetched twice
        assert asked == ["bytes=0-65535", "bytes=65536-131071", "bytes=65536-131071", "bytes=131072-196607", "bytes=196608-262143"]
        before = len(transport_of(http).seen)
        assert await h02.get_blob(blob_id(big), fetch=False) == big  # kept: no request
        assert len(transport_of(http).seen) == before
        assert await h02.unsent_blobs() == []  # fetched blobs are the server's: never uploaded back


async def test_a_blob_of_another_ward_is_forbidden(make_client: MakeClient, world: World) -> None:
    data = photo("lam-son only")
    async with make_client(world.officer_a) as h01:
        v = await h01.create(violation())
        await h01.add(Violation, v.id, "photos", await h01.put_blob(data))
        await h01.sync()
    async with make_client(world.officer_c) as phuson:
        with pytest.raises(ForbiddenError):
            await phuson.get_blob(blob_id(data))


async def test_a_damaged_local_copy_is_refused_and_does_not_block_the_edits(make_client: MakeClient, world: World, tmp_path: Path) -> None:
    data = photo("a photo the flash card mangled")
    async with make_client(world.officer_a) as h01:
        v = await h01.create(violation())
        photo_id = await h01.put_blob(data)
        await h01.add(Violation, v.id, "photos", photo_id)
    with sqlite3.connect(tmp_path / "lamson-h01.db") as db:  # the card flips bytes under the app
        db.execute("UPDATE blobs SET data = ? WHERE id = ?", (data[:-1] + b"\x00", photo_id))
    async with make_client(world.officer_a) as h01:
        report = await h01.sync()
        assert (report.blobs, report.pushed) == (0, 1)
        assert [w.code for w in report.warnings] == ["blob_refused"]
        assert await h01.missing_blobs() == [photo_id]
        assert await h01.unsent_blobs() == [photo_id]

