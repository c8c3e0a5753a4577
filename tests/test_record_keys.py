"""The edit log and blob references find a record by its integer key (SQLite migration 9).

A record's key (``p_keys``) is handed out in rising order the first time its id is seen,
so a new record's rows go at the end of these two indexes whatever ids clients make
(random UUIDs and hashes spread an index keyed by the text id: issue 16). One key
serves every collection's record of that id, so readers ask for key *and* collection.
"""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from typing import Any

import pytest

from sync_server.stores import store_for

from .helpers import World, edit, stamp, violation
from .test_blobs import assert_problem, blob, upload

A = "lamson-h01"


def _check(record_id: str, ward: str, ms: int, *photos: str) -> dict[str, Any]:
    ts = stamp(A, ms)
    fields: dict[str, Any] = {
        "ward_id": edit(ward, ts),
        "premises_id": edit("prem-1", ts),
        "kind": edit("residence", ts),
        "started_at": edit("2023-06-08T09:15:00+07:00", ts),
    }
    if photos:
        fields["photos"] = {"add": list(photos), "ts": ts}
    return {"collection": "checks", "id": record_id, "fields": fields}


def _with_photos(change: dict[str, Any], *photos: str) -> dict[str, Any]:
    change["fields"]["photos"] = {"add": list(photos), "ts": change["fields"]["status"]["ts"]}
    return change


async def test_a_check_and_a_violation_of_one_id_keep_their_own_photos_and_history(world: World) -> None:
    """The same id in two collections shares one key: rewriting one record's photo
    references, or reading its history, must not touch the other's."""
    (check_photo, check_bytes), (violation_photo, _) = blob("check photo"), blob("violation photo")
    await upload(world.officer_a, check_photo, check_bytes)
    await world.officer_a.push_ok([_check("shared-1", "lam-son", 1_686_200_000_000, check_photo)])
    await world.officer_a.push_ok([_with_photos(violation("shared-1", "lam-son", A, ms=1_686_200_000_100), violation_photo)])
    removal = {"photos": {"remove": [violation_photo], "ts": stamp(A, 1_686_300_000_000)}}
    await world.officer_a.push_ok([{"collection": "violations", "id": "shared-1", "fields": removal}])
    assert (await world.officer_b.http.get(f"/v1/blobs/{check_photo}")).content == check_bytes
    assert_problem(await world.officer_b.http.get(f"/v1/blobs/{violation_photo}"), 403)
    assert (await world.officer_b.http.get("/v1/blobs/missing")).json()["ids"] == []
    checks = (await world.supervisor.http.get("/v1/records/checks/shared-1/history")).json()["edits"]
    violations = (await world.supervisor.http.get("/v1/records/violations/shared-1/history")).json()["edits"]
    assert len(checks) == 1 and "kind" in checks[0]["changes"]
    assert len(violations) == 2 and "category" in violations[0]["changes"] and list(violations[1]["changes"]) == ["photos"]


def _sqlite(db_url: str) -> sqlite3.Connection:
    if not db_url.startswith("sqlite"):
        pytest.skip("the integer record keys are the SQLite store's layout (PostgreSQL indexes the text ids)")
    return sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)


async def test_new_records_with_random_ids_append_their_edits_and_photo_references(world: World, db_url: str) -> None:
    photos = [blob(f"photo {i}")[0] for i in range(6)]
    ids = [hashlib.sha256(str(i).encode()).hexdigest() if i % 2 else str(uuid.uuid4()) for i in range(6)]
    for i, record_id in enumerate(ids):
        await world.officer_a.push_ok([_with_photos(violation(record_id, "lam-son", A, ms=1_686_200_000_000 + i), photos[i])])
    with _sqlite(db_url) as conn:
        keys = dict(conn.execute("SELECT id, key FROM p_keys"))
        edits = conn.execute("SELECT record_id, rk FROM edits ORDER BY id").fetchall()
        refs = dict(conn.execute("SELECT record_id, rk FROM blob_refs"))
        assert [rk for _, rk in edits] == sorted(rk for _, rk in edits)  # in push order: appended
        assert edits == [(record_id, keys[record_id]) for record_id in ids]
        assert refs == {record_id: keys[record_id] for record_id in ids}
        plan = " ".join(str(row) for row in conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM edits WHERE rk = (SELECT key FROM p_keys WHERE id = ?) AND collection = ? ORDER BY id", (ids[0], "violations")
        ))
        assert "edits_record (rk=?)" in plan, plan


#: migration 9 undone: the layout of a store written by the version before it
UNDO_9 = """
    DROP TRIGGER edits_append_only_update;
    DROP INDEX edits_record;
    ALTER TABLE edits DROP COLUMN rk;
    CREATE INDEX edits_record ON edits (collection, record_id, id);
    CREATE TRIGGER edits_append_only_update BEFORE UPDATE ON edits BEGIN SELECT RAISE(ABORT, 'the edit log is append-only'); END;
    DROP INDEX blob_refs_record;
    ALTER TABLE blob_refs DROP COLUMN rk;
    CREATE INDEX blob_refs_record ON blob_refs (collection, record_id);
    PRAGMA user_version = 8;
"""


async def test_the_migration_keys_the_edit_log_and_photo_references_of_a_store_written_before_it(world: World, db_url: str) -> None:
    photo, data = blob("before migration 9")
    await upload(world.officer_a, photo, data)
    await world.officer_a.push_ok([_with_photos(violation("v-old", "lam-son", A, ms=1_686_200_000_000), photo)])
    await world.officer_a.push_ok([{"collection": "violations", "id": "v-old", "fields": {"status": edit("fined", stamp(A, 1_686_300_000_000))}}])
    with _sqlite(db_url) as conn:
        conn.executescript(UNDO_9)
    store = store_for(db_url)  # a store of the version before: opening it migrates
    await store.open()
    await store.close()
    with _sqlite(db_url) as conn:
        key = conn.execute("SELECT key FROM p_keys WHERE id = 'v-old'").fetchone()[0]
        assert conn.execute("SELECT DISTINCT rk FROM edits WHERE record_id = 'v-old'").fetchall() == [(key,)]
        assert conn.execute("SELECT rk FROM blob_refs WHERE record_id = 'v-old'").fetchall() == [(key,)]
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE edits SET rk = 0")  # the trigger the migration dropped is back
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 9
    history = (await world.supervisor.http.get("/v1/records/violations/v-old/history")).json()["edits"]
    assert [list(e["changes"])[:1] for e in history][1] == ["status"] and len(history) == 2
    assert (await world.officer_b.http.get(f"/v1/blobs/{photo}")).content == data
    assert_problem(await world.officer_c.http.get(f"/v1/blobs/{photo}"), 403)
