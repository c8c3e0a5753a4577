"""Attachments over HTTP (PROTOCOL.md section 6b), through the real server on both stores.

Blobs live in a folder: beside the SQLite file by default; for PostgreSQL the
setting names one (a volume its workers would share).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from sync_server.blobs import blob_dir_for
from sync_server.loopback import LoopbackServer
from sync_server.settings import Settings

from .helpers import Api, World, stamp, violation

PROBLEM = "application/problem+json"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """SQLite: the default folder beside the file; PostgreSQL: a folder of its own."""
    return Settings(db_url=db_url, blob_dir="" if db_url.startswith("sqlite:") else str(tmp_path / "blobs"))


def blob(seed: str, size: int = 50_000) -> tuple[str, bytes]:
    """Bytes that look like a JPEG, and their id."""
    data = b"\xff\xd8\xff\xe0" + hashlib.shake_256(seed.encode()).digest(size - 4)
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


async def name_in(api: Api, ward: str, *blob_ids: str, record_id: str | None = None) -> str:
    """A violation of ``ward`` whose photos are ``blob_ids``; returns its id."""
    change = violation(record_id or f"v-{blob_ids[0][7:19]}", ward, api.device_id or "")
    change["fields"]["photos"] = {"add": list(blob_ids), "ts": change["fields"]["status"]["ts"]}
    answer = await api.push_ok([change])
    assert answer["results"][0]["status"] == "applied", answer
    return str(change["id"])


async def upload(api: Api, blob_id: str, data: bytes, **kw: Any) -> httpx.Response:
    return await api.http.put(f"/v1/blobs/{blob_id}", content=data, **kw)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith(PROBLEM)
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    return problem


def stored_files(settings: Settings) -> dict[str, Path]:
    folder = blob_dir_for(settings)
    assert folder is not None
    return {p.name: p for p in (folder / "sha256").rglob("*") if p.is_file()}


def leftovers(settings: Settings) -> list[Path]:
    folder = blob_dir_for(settings)
    assert folder is not None
    return [p for sub in ("tmp", "staging") for p in (folder / sub).iterdir()]


# -- upload -------------------------------------------------------------------------------


async def test_an_uploaded_blob_is_read_back_whole_by_the_ward_that_names_it(world: World, settings: Settings) -> None:
    blob_id, data = blob("fire exit")
    response = await upload(world.officer_a, blob_id, data)
    assert response.status_code == 201
    assert response.json() == {"id": blob_id, "size": len(data), "offset": len(data), "stored": True}
    await name_in(world.officer_a, "lam-son", blob_id)
    for reader in (world.officer_a, world.officer_b, world.supervisor, world.admin):
        got = await reader.http.get(f"/v1/blobs/{blob_id}")
        assert got.status_code == 200 and got.content == data
        assert got.headers["etag"] == f'"{blob_id}"' and got.headers["accept-ranges"] == "bytes"
        assert got.headers["content-type"] == "application/octet-stream"
    head = await world.officer_b.http.head(f"/v1/blobs/{blob_id}")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(data)) and head.headers["etag"] == f'"{blob_id}"'
    assert (await world.officer_b.http.get(f"/v1/blobs/{blob_id}", headers={"If-None-Match": f'"{blob_id}"'})).status_code == 304
    assert list(stored_files(settings)) == [blob_id[7:]]
    assert leftovers(settings) == []


async def test_a_second_upload_is_a_no_op_that_rewrites_nothing(world: World, settings: Settings) -> None:
    blob_id, data = blob("twice")
    assert (await upload(world.officer_a, blob_id, data)).status_code == 201
    path = stored_files(settings)[blob_id[7:]]
    before = path.stat()
    again = await upload(world.officer_b, blob_id, data)
    assert again.status_code == 200 and again.json()["stored"] is True
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert leftovers(settings) == []


async def test_bytes_that_do_not_hash_to_the_id_are_refused_and_nothing_is_stored(world: World, settings: Settings) -> None:
    blob_id, data = blob("tampered")
    problem = assert_problem(await upload(world.officer_a, blob_id, data[:-1] + b"\x00"), 422)
    assert problem["type"].endswith(":hash-mismatch")
    assert stored_files(settings) == {} and leftovers(settings) == []
    # a re-upload of a stored blob is checked too
    assert (await upload(world.officer_a, blob_id, data)).status_code == 201
    assert_problem(await upload(world.officer_a, blob_id, data + b"!"), 422)


async def test_a_blob_over_20_mib_is_refused_with_413_whether_announced_or_streamed(world: World, settings: Settings) -> None:
    blob_id = "sha256:" + "0" * 64
    size = 20 * 1024 * 1024 + 1

    async def stream() -> Any:  # no Content-Length: the limit holds on the bytes that arrive
        for start in range(0, size, 1 << 20):
            yield b"x" * min(1 << 20, size - start)

    for body in (b"x" * size, stream()):
        problem = assert_problem(await upload(world.officer_a, blob_id, body), 413)
        assert "20971520" in problem["detail"]
    assert stored_files(settings) == {} and leftovers(settings) == []


async def test_a_compressed_upload_is_refused(world: World) -> None:
    blob_id, data = blob("gz")
    assert_problem(await upload(world.officer_a, blob_id, data, headers={"Content-Encoding": "gzip"}), 415)


async def _torn_put(server_url: str, token: str, path: str, declared: int, sent: bytes, headers: dict[str, str] | None = None) -> None:
    """A PUT that announces ``declared`` bytes, sends ``sent``, and hangs up."""
    host, port = server_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = f"PUT {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Length: {declared}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    writer.write(head.encode() + b"\r\n" + sent)
    await writer.drain()
    await asyncio.sleep(0.2)  # the server is reading the body
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(0.3)  # and notices the connection is gone


async def test_a_torn_upload_leaves_no_partial_blob_visible(world: World, settings: Settings, server: LoopbackServer) -> None:
    blob_id, data = blob("torn", 3_000_000)
    await name_in(world.officer_a, "lam-son", blob_id)
    assert world.officer_a.token is not None
    await _torn_put(server.url, world.officer_a.token, f"/v1/blobs/{blob_id}", len(data), data[: len(data) // 2])
    assert_problem(await world.officer_a.http.get(f"/v1/blobs/{blob_id}"), 404)
    assert (await world.officer_a.http.head(f"/v1/blobs/{blob_id}")).status_code == 404
    assert (await world.officer_a.http.get("/v1/blobs/missing")).json()["ids"] == [blob_id]
    assert stored_files(settings) == {} and leftovers(settings) == []
    assert (await upload(world.officer_a, blob_id, data)).status_code == 201  # and the next attempt works
    assert (await world.officer_a.http.get("/v1/blobs/missing")).json()["ids"] == []


async def test_several_devices_uploading_one_blob_at_once_store_it_once_intact(world: World, settings: Settings) -> None:
    blob_id, data = blob("together", 2_000_000)
    answers = await asyncio.gather(*(upload(api, blob_id, data) for api in (world.officer_a, world.officer_b, world.officer_c, world.supervisor) * 2))
    assert sorted(a.status_code for a in answers) in ([200] * 7 + [201], *[[200] * (8 - n) + [201] * n for n in range(2, 9)])
    files = stored_files(settings)
    assert list(files) == [blob_id[7:]] and files[blob_id[7:]].read_bytes() == data
    assert leftovers(settings) == []


# -- ids ----------------------------------------------------------------------------------

BAD_IDS = [
    ("a traversal", "sha256:..%2F..%2Fetc%2Fpasswd"),
    ("uppercase hex", "sha256:" + "A" * 64),
    ("63 digits", "sha256:" + "a" * 63),
    ("65 digits", "sha256:" + "a" * 65),
    ("another algorithm", "md5:" + "a" * 32),
    ("no prefix", "a" * 64),
    ("a trailing newline", "sha256:" + "a" * 64 + "%0A"),
    ("a NUL", "sha256:" + "a" * 63 + "%00"),
]


async def test_anything_but_a_sha256_id_is_404_and_touches_no_file(world: World, settings: Settings) -> None:
    wrong = []
    for name, bad in BAD_IDS:
        for method in ("GET", "HEAD", "PUT"):
            response = await world.officer_a.http.request(method, f"/v1/blobs/{bad}", content=b"x" if method == "PUT" else None)
            problem = method == "HEAD" or response.headers["content-type"].startswith(PROBLEM)
            if response.status_code != 404 or not problem:
                wrong.append(f"{method} {name}: {response.status_code} {response.text[:100]}")
    assert not wrong, "\n".join(wrong)
    assert stored_files(settings) == {} and leftovers(settings) == []


async def test_a_photo_that_is_not_a_blob_id_rejects_its_change_alone(world: World) -> None:
    good = violation("v-good", "lam-son", "lamson-h01")
    bad = violation("v-bad", "lam-son", "lamson-h01")
    bad["fields"]["photos"] = {"add": ["sha256:../../etc/passwd"], "ts": bad["fields"]["status"]["ts"]}
    answer = await world.officer_a.push_ok([good, bad])
    assert [r["status"] for r in answer["results"]] == ["applied", "rejected"]
    assert answer["results"][1]["errors"][0]["code"] == "invalid"


# -- scope --------------------------------------------------------------------------------


async def test_a_blob_is_readable_only_where_a_record_names_it(world: World) -> None:
    blob_id, data = blob("lam son only")
    unnamed_id, unnamed = blob("nobody names me")
    await upload(world.officer_a, blob_id, data)
    await upload(world.officer_a, unnamed_id, unnamed)
    # uploaded, named by nobody yet: nobody may read it, not even its uploader
    assert_problem(await world.officer_a.http.get(f"/v1/blobs/{blob_id}"), 403)
    await name_in(world.officer_a, "lam-son", blob_id)
    assert (await world.officer_b.http.get(f"/v1/blobs/{blob_id}")).status_code == 200
    # another ward's officer gets 403, for a stored blob, a blob named nowhere and one that does not exist alike
    for other in (blob_id, unnamed_id, "sha256:" + "e" * 64):
        assert_problem(await world.officer_c.http.get(f"/v1/blobs/{other}"), 403)
        assert (await world.officer_c.http.head(f"/v1/blobs/{other}")).status_code == 403
    # a record of phu-son naming the same photo opens it to phu-son too
    await name_in(world.officer_c, "phu-son", blob_id, record_id="v-phu")
    assert (await world.officer_c.http.get(f"/v1/blobs/{blob_id}")).content == data


async def test_a_blob_named_but_not_uploaded_is_404_in_scope_and_403_outside(world: World) -> None:
    blob_id, _ = blob("not yet")
    await name_in(world.officer_a, "lam-son", blob_id)
    assert_problem(await world.officer_b.http.get(f"/v1/blobs/{blob_id}"), 404)
    assert (await world.officer_b.http.head(f"/v1/blobs/{blob_id}")).status_code == 404
    assert_problem(await world.officer_c.http.get(f"/v1/blobs/{blob_id}"), 403)


async def test_a_deleted_record_still_names_its_photos_and_a_removed_photo_is_no_longer_named(world: World) -> None:
    kept_id, kept = blob("kept")
    removed_id, removed = blob("removed")
    for blob_id, data in ((kept_id, kept), (removed_id, removed)):
        await upload(world.officer_a, blob_id, data)
    record = await name_in(world.officer_a, "lam-son", kept_id, removed_id)
    late = stamp("lamson-h01", 1_686_300_000_000)
    answer = await world.officer_a.push_ok([{"collection": "violations", "id": record, "fields": {"photos": {"remove": [removed_id], "ts": late}}}])
    assert answer["results"][0]["record"]["fields"]["photos"] == [kept_id]
    assert_problem(await world.officer_b.http.get(f"/v1/blobs/{removed_id}"), 403)
    answer = await world.officer_a.push_ok([{"collection": "violations", "id": record, "delete": {"ts": stamp("lamson-h01", 1_686_300_000_100)}}])
    assert answer["results"][0]["record"]["deleted"] is True
    # tombstoned, still pulled with its fields and may come back: its evidence stays readable
    assert (await world.officer_b.http.get(f"/v1/blobs/{kept_id}")).content == kept


# -- ranges -------------------------------------------------------------------------------

SIZE = 10_000
RANGES = [
    ("first bytes", "bytes=0-99", 0, 100),
    ("middle", "bytes=4000-4999", 4000, 5000),
    ("suffix", "bytes=-100", SIZE - 100, SIZE),
    ("open end", "bytes=9000-", 9000, SIZE),
    ("past the end, clamped", "bytes=9990-20000", 9990, SIZE),
    ("one byte", "bytes=5-5", 5, 6),
    ("suffix longer than the blob", "bytes=-20000", 0, SIZE),
]


@pytest.fixture
async def ranged(world: World) -> tuple[str, bytes]:
    blob_id, data = blob("ranges", SIZE)
    await upload(world.officer_a, blob_id, data)
    await name_in(world.officer_a, "lam-son", blob_id)
    return blob_id, data


async def test_range_reads_answer_206_with_the_bytes_asked_for(world: World, ranged: tuple[str, bytes]) -> None:
    blob_id, data = ranged
    for name, header, start, end in RANGES:
        got = await world.officer_b.http.get(f"/v1/blobs/{blob_id}", headers={"Range": header})
        assert got.status_code == 206, name
        assert got.content == data[start:end], name
        assert got.headers["content-range"] == f"bytes {start}-{end - 1}/{SIZE}", name
        assert got.headers["content-length"] == str(end - start), name


async def test_an_unsatisfiable_range_is_416_and_any_other_form_gets_the_whole_blob(world: World, ranged: tuple[str, bytes]) -> None:
    blob_id, data = ranged
    for header in ("bytes=10000-", "bytes=20000-20010", "bytes=-0"):
        got = await world.officer_b.http.get(f"/v1/blobs/{blob_id}", headers={"Range": header})
        assert_problem(got, 416)
        assert got.headers["content-range"] == f"bytes */{SIZE}"
    for header in ("bytes=0-1,5-6", "items=0-10", "bytes=50-10", "bytes=abc"):  # RFC 9110: ignored
        got = await world.officer_b.http.get(f"/v1/blobs/{blob_id}", headers={"Range": header})
        assert got.status_code == 200 and got.content == data, header


async def test_ranges_of_an_empty_blob_are_416_and_the_whole_is_empty(world: World) -> None:
    blob_id = "sha256:" + hashlib.sha256(b"").hexdigest()
    assert (await upload(world.officer_a, blob_id, b"")).status_code == 201
    await name_in(world.officer_a, "lam-son", blob_id)
    assert (await world.officer_a.http.get(f"/v1/blobs/{blob_id}")).content == b""
    assert_problem(await world.officer_a.http.get(f"/v1/blobs/{blob_id}", headers={"Range": "bytes=0-"}), 416)


# -- the missing list -----------------------------------------------------------------------


async def test_the_missing_list_shows_what_records_of_your_wards_name_and_nobody_uploaded(world: World) -> None:
    ours = sorted(blob(f"ours {i}")[0] for i in range(3))
    theirs, _ = blob("theirs")
    await name_in(world.officer_a, "lam-son", *ours)
    await name_in(world.officer_c, "phu-son", theirs)
    assert (await world.officer_b.http.get("/v1/blobs/missing")).json() == {"ids": ours, "next": None}
    assert (await world.officer_c.http.get("/v1/blobs/missing")).json()["ids"] == [theirs]
    assert (await world.supervisor.http.get("/v1/blobs/missing")).json()["ids"] == sorted([*ours, theirs])
    assert (await world.supervisor.http.get("/v1/blobs/missing", params={"ward": "phu-son"})).json()["ids"] == [theirs]
    assert_problem(await world.officer_a.http.get("/v1/blobs/missing", params={"ward": "phu-son"}), 403)
    # paged by `next`
    first = (await world.officer_a.http.get("/v1/blobs/missing", params={"limit": 2})).json()
    assert first == {"ids": ours[:2], "next": ours[1]}
    rest = (await world.officer_a.http.get("/v1/blobs/missing", params={"limit": 2, "after": first["next"]})).json()
    assert rest == {"ids": ours[2:], "next": None}
    # uploaded: gone from the list
    for i in range(3):
        blob_id, data = blob(f"ours {i}")
        assert (await upload(world.officer_c, blob_id, data)).status_code == 201  # any device may upload
    assert (await world.officer_a.http.get("/v1/blobs/missing")).json() == {"ids": [], "next": None}
    assert (await world.supervisor.http.get("/v1/blobs/missing")).json()["ids"] == [theirs]


# -- resumable uploads ------------------------------------------------------------------------


def chunk_headers(start: int, end: int, total: int) -> dict[str, str]:
    return {"Content-Range": f"bytes {start}-{end - 1}/{total}"}


async def test_a_resumable_upload_goes_in_chunks_at_the_staged_offset(world: World, settings: Settings) -> None:
    blob_id, data = blob("resumable", 2_500_000)
    api, total = world.officer_a, len(data)
    first = await upload(api, blob_id, data[:1_000_000], headers=chunk_headers(0, 1_000_000, total))
    assert first.status_code == 202 and first.headers["upload-offset"] == "1000000"
    assert first.json() == {"id": blob_id, "size": total, "offset": 1_000_000, "stored": False}
    # the upload's own device sees its offset; not a blob anybody may read yet
    head = await api.http.head(f"/v1/blobs/{blob_id}")
    assert head.status_code == 403 and head.headers["upload-offset"] == "1000000"
    assert (await world.officer_b.http.head(f"/v1/blobs/{blob_id}")).headers["upload-offset"] == "0"  # parts are per device
    # a chunk that does not start at the offset: 409 with the offset
    wrong = await upload(api, blob_id, data[1_500_000:2_000_000], headers=chunk_headers(1_500_000, 2_000_000, total))
    assert_problem(wrong, 409)
    assert wrong.headers["upload-offset"] == "1000000"
    second = await upload(api, blob_id, data[1_000_000:2_000_000], headers=chunk_headers(1_000_000, 2_000_000, total))
    assert second.status_code == 202 and second.json()["offset"] == 2_000_000
    last = await upload(api, blob_id, data[2_000_000:], headers=chunk_headers(2_000_000, total, total))
    assert last.status_code == 201 and last.json() == {"id": blob_id, "size": total, "offset": total, "stored": True}
    assert stored_files(settings)[blob_id[7:]].read_bytes() == data
    assert leftovers(settings) == []


async def test_the_bytes_of_a_chunk_cut_short_are_kept_and_the_upload_resumes_there(world: World, server: LoopbackServer) -> None:
    blob_id, data = blob("cut chunk", 3_000_000)
    api = world.officer_a
    assert api.token is not None
    await _torn_put(server.url, api.token, f"/v1/blobs/{blob_id}", len(data), data[:1_200_000], chunk_headers(0, len(data), len(data)))
    held = int((await api.http.head(f"/v1/blobs/{blob_id}")).headers["upload-offset"])
    assert 0 < held <= 1_200_000
    rest = await upload(api, blob_id, data[held:], headers=chunk_headers(held, len(data), len(data)))
    assert rest.status_code == 201
    await name_in(api, "lam-son", blob_id)
    assert (await api.http.get(f"/v1/blobs/{blob_id}")).content == data


async def test_a_resumed_upload_that_does_not_hash_to_its_id_is_dropped(world: World, settings: Settings) -> None:
    blob_id, data = blob("bad parts", 200_000)
    api, total = world.officer_a, len(data)
    assert (await upload(api, blob_id, data[:100_000], headers=chunk_headers(0, 100_000, total))).status_code == 202
    assert_problem(await upload(api, blob_id, b"\x00" * 100_000, headers=chunk_headers(100_000, total, total)), 422)
    assert (await api.http.head(f"/v1/blobs/{blob_id}")).headers["upload-offset"] == "0"
    assert stored_files(settings) == {} and leftovers(settings) == []


BAD_CONTENT_RANGES = [
    ("bytes 0-9/5", 10, 400),  # past its total
    ("bytes 5-2/10", 4, 400),
    ("bytes */10", 0, 400),
    ("bytes 0-9/20971521", 10, 413),  # a total over the limit: refused before reading
    ("bytes 0-9/100", 20, 400),  # a body longer than its range
]


async def test_a_bad_content_range_is_a_clear_4xx(world: World) -> None:
    blob_id, _ = blob("ranges are checked", 100)
    for header, body_size, status in BAD_CONTENT_RANGES:
        assert_problem(await upload(world.officer_a, blob_id, b"x" * body_size, headers={"Content-Range": header}), status)


# -- configuration and migration ------------------------------------------------------------------


async def test_without_blob_storage_blob_calls_are_503_and_the_rest_works(db_url: str, admin_token: str, store_kind: str) -> None:
    if store_kind != "postgresql":
        pytest.skip("SQLite always has its folder beside the file")
    running = LoopbackServer(Settings(db_url=db_url))
    await running.start()
    try:
        async with httpx.AsyncClient(base_url=running.url, headers={"Authorization": f"Bearer {admin_token}"}) as admin:
            blob_id, data = blob("nowhere to go")
            assert_problem(await admin.put(f"/v1/blobs/{blob_id}", content=data), 503)
            assert (await admin.get("/v1/sync/pull")).status_code == 200
    finally:
        await running.stop()


async def test_records_written_before_migration_3_name_their_photos_after_it(world: World, db_url: str, settings: Settings) -> None:
    blob_id, data = blob("old record")
    await upload(world.officer_a, blob_id, data)
    await name_in(world.officer_a, "lam-son", blob_id)
    if db_url.startswith("sqlite:"):
        from sync_server.stores.sqlite import _blobs, path_from_url

        with sqlite3.connect(path_from_url(db_url), isolation_level=None) as conn:
            conn.execute("DELETE FROM blob_refs")  # as before the migration
            conn.execute("BEGIN IMMEDIATE")
            _blobs.rebuild(conn)
            conn.execute("COMMIT")
    else:
        import asyncpg

        from sync_server.stores.postgres import _blobs as pg_blobs

        conn = await asyncpg.connect(db_url)
        try:
            await conn.execute("DELETE FROM blob_refs")
            async with conn.transaction():
                await pg_blobs.rebuild(conn)
        finally:
            await conn.close()
    assert (await world.officer_b.http.get(f"/v1/blobs/{blob_id}")).content == data
    assert_problem(await world.officer_c.http.get(f"/v1/blobs/{blob_id}"), 403)


def test_the_blob_folder_defaults_to_beside_the_sqlite_file() -> None:
    assert blob_dir_for(Settings(db_url="sqlite:///data/patrol-sync.db")) == Path("data/patrol-sync.blobs")
    assert blob_dir_for(Settings(db_url="sqlite:////var/lib/x.blobs")) == Path("/var/lib/x.blobs.blobs")
    assert blob_dir_for(Settings(db_url="postgresql://h/db")) is None
    assert blob_dir_for(Settings(db_url="postgresql://h/db", blob_dir="/srv/blobs")) == Path("/srv/blobs")
    assert os.fspath(blob_dir_for(Settings.from_env({"PATROL_SYNC_BLOB_DIR": "/mnt/shared"}, db_url="postgresql://h/db")) or "") == "/mnt/shared"
