"""A SQLite store written by an older version is migrated when the current code opens it.

The store is made with migrations 1..N only (N = 2: before blob references existed;
N = 8: just before migration 9 keyed the edit log and blob references by ``p_keys.key``),
then filled with raw SQL as the server of that version stored records: their rows, their
report projections, their edit log and (from 3 on) their blob references and stored blobs.
Opening it with the current code must leave every edit and every photo reference keyed
by its record's integer key, so that history, blob access and the missing list, which
now read by key, still find them; and the migrated store must take new writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from sync_server.engine.state import RecordState, encode_crdt, encode_doc
from sync_server.stores import store_for
from sync_server.stores._rows import encode_diff
from sync_server.stores.blobrefs import refs
from sync_server.stores.sqlite import _blobs, _migrate, _projections, _supervision

from .stores._support import BA_DINH, LAM_SON, TS_LATER, edit_row, state, write


def _photo(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


#: a check and a violation of one id (one key, two collections), each with photos
P_CHECK_1, P_CHECK_2, P_VIOLATION, P_WARD_B, P_RANDOM = (_photo(s) for s in ("check 1", "check 2", "violation", "ward b", "random"))
#: a UUID-like id and a hash id, as clients may make them
RANDOM_ID = "9b2f4c1e-5d6a-4f3b-8e7c-0a1b2c3d4e5f"
HASH_ID = hashlib.sha256(b"a record").hexdigest()
STORED = P_CHECK_1  # the only photo the old store holds (when it has a blobs table)


def _records() -> list[RecordState]:
    """The records of the old store, in the order they were written (seq 1, 2, ...)."""
    premises = state("prem-1")
    check = state(
        "shared-1", "checks", premises_id="prem-1", kind="residence", started_at="2023-06-08T09:15:00+07:00", photos=[P_CHECK_1, P_CHECK_2]
    )
    violation = state(
        "shared-1",
        "violations",
        check_id="shared-1",
        premises_id="prem-1",
        category="fire_safety",
        status="fined",
        fine_vnd=500_000,
        created_at="2023-06-08T09:30:00+07:00",
        photos=[P_VIOLATION, P_CHECK_2, "IMG_0001.jpg"],  # a name that is no blob id names nothing
    )
    violation.sets["photos"][P_CHECK_2] = [TS_LATER, False]  # taken back: the violation does not name it
    # a tombstoned violation of the other ward still names its photos (and one of the check's)
    other_ward = state("v-ba-dinh", "violations", ward=BA_DINH, category="fire_safety", status="open", photos=[P_WARD_B, P_CHECK_1])
    other_ward.tomb = TS_LATER
    assert other_ward.deleted
    random_id = state(RANDOM_ID, "violations", check_id="shared-1", category="fire_safety", status="open", photos=[P_RANDOM])
    hash_id = state(HASH_ID, "checks", premises_id="prem-1", kind="residence")  # no photos
    records = [premises, check, violation, other_ward, random_id, hash_id]
    for seq, record in enumerate(records, start=1):
        record.seq = seq
    return records


#: (collection, record id) -> the keys of the fields each of its edits changed, oldest first
EDITS = {
    ("premises", "prem-1"): [["name", "ward_id"]],
    ("checks", "shared-1"): [["kind", "photos", "premises_id", "started_at", "ward_id"]],
    ("violations", "shared-1"): [["category", "check_id", "created_at", "fine_vnd", "photos", "premises_id", "status", "ward_id"], ["status"]],
    ("violations", "v-ba-dinh"): [["category", "photos", "status", "ward_id"], []],
    ("violations", RANDOM_ID): [["category", "check_id", "photos", "status", "ward_id"]],
    ("checks", HASH_ID): [["kind", "premises_id", "ward_id"]],
}


def _edit_rows(records: list[RecordState]) -> list[tuple[object, ...]]:
    """The edit log as the old server wrote it: an edit a record, then a status change and
    a delete (the columns of migration 1: no key)."""

    def row(s: RecordState, changeset_id: str, changes: dict[str, tuple[Any, Any]], deleted: tuple[bool, bool] | None = None) -> tuple[object, ...]:
        e = edit_row(s, changeset_id)
        return (e.collection, e.record_id, e.ward_id, e.seq, e.at, e.user_id, e.device_id, e.changeset_id, encode_diff(changes, deleted))

    rows = []
    for s in records:
        fields = dict(s.fields)
        if s.sets.get("photos"):
            fields["photos"] = sorted(e for e, (_, present) in s.sets["photos"].items() if present)
        rows.append(row(s, "cs-1", {k: (None, v) for k, v in fields.items()}))
    by_key = {(s.collection, s.id): s for s in records}
    rows.append(row(by_key["violations", "shared-1"], "cs-2", {"status": ("open", "fined")}))
    rows.append(row(by_key["violations", "v-ba-dinh"], "cs-3", {}, (False, True)))
    return rows


def _old_store(path: Path, version: int) -> None:
    """A store at schema ``version``, filled as the server of that version would have."""
    every = _migrate._migrations()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_migrate, "_migrations", lambda: [m for m in every if m[0] <= version])
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            _migrate.migrate(conn, str(path))
            assert conn.execute("PRAGMA user_version").fetchone()[0] == version
        finally:
            conn.close()
    records = _records()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for ward, name in ((LAM_SON, "Phường Lam Sơn"), (BA_DINH, "Phường Ba Đình")):
            conn.execute("INSERT INTO wards (id, name, timezone, created_at) VALUES (?, ?, 'Asia/Ho_Chi_Minh', ?)", (ward, name, "2026-11-23T07:00:00Z"))
        conn.execute("INSERT INTO users (id, name, role, created_at) VALUES ('u-officer', 'Nguyễn Văn An', 'officer', '2026-11-23T07:00:00Z')")
        conn.execute("INSERT INTO devices (device_id, user_id, token_hash, created_at) VALUES ('h-01', 'u-officer', 'hash-h01', '2026-11-23T07:00:00Z')")
        conn.executemany(
            "INSERT INTO records (seq, collection, id, ward_id, deleted, doc, crdt) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(s.seq, s.collection, s.id, s.ward_id, int(s.deleted), encode_doc(s), encode_crdt(s)) for s in records],
        )
        _projections.write(conn, records)  # the projections of these tables have not changed since 2
        conn.executemany(
            "INSERT INTO edits (collection, record_id, ward_id, seq, at, user_id, device_id, changeset_id, diff) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _edit_rows(records),
        )
        if version >= 3:  # blob references by text id, as the code before migration 9 wrote them
            conn.executemany(
                "INSERT OR IGNORE INTO blob_refs (blob_id, ward_id, collection, record_id) VALUES (?, ?, ?, ?)",
                [row for _, rows in refs(records) for row in rows],
            )
            uploader = ", uploader" if version >= 6 else ""
            conn.execute(f"INSERT INTO blobs (id, size, stored_at{uploader}) VALUES (?, 1234, '2026-11-23T08:00:00Z'{', NULL' if uploader else ''})", (STORED,))
        conn.execute("COMMIT")
    finally:
        conn.close()


def _expected_refs(key: dict[str, int]) -> set[tuple[str, str, str, str, int]]:
    """(blob, ward, collection, record id, rk): one row per present photo of each record."""
    return {
        (P_CHECK_1, LAM_SON, "checks", "shared-1", key["shared-1"]),
        (P_CHECK_2, LAM_SON, "checks", "shared-1", key["shared-1"]),
        (P_VIOLATION, LAM_SON, "violations", "shared-1", key["shared-1"]),
        (P_WARD_B, BA_DINH, "violations", "v-ba-dinh", key["v-ba-dinh"]),
        (P_CHECK_1, BA_DINH, "violations", "v-ba-dinh", key["v-ba-dinh"]),
        (P_RANDOM, LAM_SON, "violations", RANDOM_ID, key[RANDOM_ID]),
    }


@pytest.mark.parametrize("version", [2, 8])
async def test_a_store_written_at_an_old_schema_version_is_migrated_with_keyed_edits_and_photo_references(tmp_path: Path, version: int) -> None:
    path = tmp_path / "old.db"
    _old_store(path, version)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        keys_before = dict(conn.execute("SELECT id, key FROM p_keys"))

    store = store_for(f"sqlite:///{path}")  # the current code: opening migrates
    await store.open()
    await store.close()

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == _migrate.latest()
        key = dict(conn.execute("SELECT id, key FROM p_keys"))
        assert {i: k for i, k in key.items() if i in keys_before} == keys_before  # keys handed out before stay

        # every edit keyed by its record's key, none left at the column's default
        edits = conn.execute("SELECT e.record_id, e.rk, k.key FROM edits e LEFT JOIN p_keys k ON k.id = e.record_id ORDER BY e.id").fetchall()
        assert len(edits) == sum(len(v) for v in EDITS.values())
        assert all(rk == k and k is not None and rk != 0 for _, rk, k in edits), edits

        # one reference per (photo, record), with the record's key, ward and collection
        found = set(conn.execute("SELECT blob_id, ward_id, collection, record_id, rk FROM blob_refs"))
        assert found == _expected_refs(key)

        # the readers, which find rows by key
        for (collection, record_id), changed in EDITS.items():
            history = _supervision.history(conn, collection, record_id)
            assert history is not None, (collection, record_id)
            assert [sorted(e.changes) for e in history.edits] == changed, (collection, record_id)
        deleted = _supervision.history(conn, "violations", "v-ba-dinh")
        assert deleted is not None and deleted.edits[-1].deleted is not None and deleted.edits[-1].deleted.new is True

        held = 1234 if version >= 3 else None
        assert _blobs.access(conn, P_CHECK_1, [LAM_SON]).named
        assert _blobs.access(conn, P_CHECK_1, [LAM_SON]).size == held
        assert _blobs.access(conn, P_CHECK_1, [BA_DINH]).named  # named by a tombstoned record of that ward
        assert _blobs.access(conn, P_CHECK_2, [LAM_SON]).named  # the check still names it
        assert not _blobs.access(conn, P_CHECK_2, [BA_DINH]).named
        assert not _blobs.access(conn, P_VIOLATION, [BA_DINH]).named
        assert _blobs.access(conn, P_RANDOM, [LAM_SON]).named
        stored = {STORED} if version >= 3 else set()
        assert _blobs.missing(conn, [LAM_SON], None, 100) == sorted({P_CHECK_1, P_CHECK_2, P_VIOLATION, P_RANDOM} - stored)
        assert _blobs.missing(conn, [BA_DINH], None, 100) == sorted({P_WARD_B, P_CHECK_1} - stored)

        # the two indexes lead with the key
        assert [r[2] for r in conn.execute("PRAGMA index_info(edits_record)")] == ["rk", "id"]
        assert [r[2] for r in conn.execute("PRAGMA index_info(blob_refs_record)")] == ["rk"]
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):  # the trigger migration 9 dropped is back
            conn.execute("UPDATE edits SET rk = 0")
    finally:
        conn.close()

    # the migrated store takes new versions: the check's photos rewritten by key, the
    # violation of the same id (and key) untouched; its edit logged with its key
    store = store_for(f"sqlite:///{path}")
    await store.open()
    try:
        check = state("shared-1", "checks", premises_id="prem-1", kind="residence", started_at="2023-06-08T09:15:00+07:00", photos=[P_CHECK_2])
        check.sets["photos"][P_CHECK_1] = [TS_LATER, False]
        await write(store, check, edits=True)
        history = await store.history("checks", "shared-1")
        assert history is not None and len(history.edits) == 2
        assert (await store.blob_access(P_CHECK_1, [LAM_SON])).named is False
        assert (await store.blob_access(P_CHECK_1, [BA_DINH])).named is True
    finally:
        await store.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert set(conn.execute("SELECT blob_id, ward_id, collection, record_id, rk FROM blob_refs")) == (
            _expected_refs(key) - {(P_CHECK_1, LAM_SON, "checks", "shared-1", key["shared-1"])}
        )
        assert conn.execute("SELECT rk FROM edits ORDER BY id DESC LIMIT 1").fetchone() == (key["shared-1"],)
