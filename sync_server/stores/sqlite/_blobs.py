"""Attachment metadata in SQLite: which blobs are stored, which records name which
(``stores/blobrefs.py``). Plain functions of a sqlite3 connection, run on its thread."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence

from ...engine.state import RecordState, decode_state
from ..base import BlobAccess
from ..blobrefs import BLOB_COLLECTIONS, refs
from . import _batch, _projections

__all__ = ["access", "forget_unnamed", "missing", "rebuild", "stored", "unnamed_bytes", "write_refs"]

_CHUNK = 400


def write_refs(conn: sqlite3.Connection, states: Sequence[RecordState], key: Mapping[str, int] | None = None) -> None:
    """Rewrite the blob references of these record versions (inside the caller's transaction).

    A record's rows are found by its integer key (``p_keys``, migration 9): ``key`` holds
    the keys the caller has interned already (the projections'); the rest are made here."""
    named = list(refs(states))
    if not named:
        return
    known = _projections.with_keys(conn, key or {}, (state.id for state, _ in named))
    touched: dict[str, list[int]] = {}
    rows = []
    for state, found in named:
        rk = known[state.id]
        touched.setdefault(state.collection, []).append(rk)
        rows += [(*row, rk) for row in found]
    for collection, rks in touched.items():
        _batch.where_in(conn, "DELETE FROM blob_refs WHERE collection = ? AND rk IN ({marks})", [collection], rks)
    _batch.insert(conn, "INSERT OR IGNORE INTO blob_refs (blob_id, ward_id, collection, record_id, rk)", rows)


def rebuild(conn: sqlite3.Connection) -> None:
    """Derive every record's references again (migration 9: with the records' keys)."""
    conn.execute("DELETE FROM blob_refs")
    marks = ",".join("?" * len(BLOB_COLLECTIONS))
    cursor = conn.execute(f"SELECT doc, crdt FROM records WHERE collection IN ({marks}) ORDER BY seq", BLOB_COLLECTIONS)
    while batch := cursor.fetchmany(2000):
        write_refs(conn, [decode_state(doc, crdt) for doc, crdt in batch])


def access(conn: sqlite3.Connection, blob_id: str, wards: Sequence[str]) -> BlobAccess:
    """Whether a record of ``wards`` names the blob, and its size if it is stored."""
    named = False
    for start in range(0, len(wards), _CHUNK):
        chunk = list(wards[start : start + _CHUNK])
        sql = f"SELECT 1 FROM blob_refs WHERE blob_id = ? AND ward_id IN ({','.join('?' * len(chunk))}) LIMIT 1"
        if conn.execute(sql, (blob_id, *chunk)).fetchone() is not None:
            named = True
            break
    row = conn.execute("SELECT size FROM blobs WHERE id = ?", (blob_id,)).fetchone()
    return BlobAccess(named=named, size=None if row is None else int(row[0]))


def missing(conn: sqlite3.Connection, wards: Sequence[str], after: str | None, limit: int) -> list[str]:
    """Blob ids named by records of ``wards`` and not stored, after ``after``, in id order."""
    if not wards:
        return []
    # one index range per ward (ward_id, blob_id), merged; a blob stored is skipped by its key
    part = (
        "SELECT * FROM (SELECT r.blob_id FROM blob_refs r WHERE r.ward_id = ? AND r.blob_id > ? "
        "AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = r.blob_id) ORDER BY r.blob_id LIMIT ?)"
    )
    found: set[str] = set()
    for start in range(0, len(wards), _CHUNK // 3):
        chunk = sorted(wards[start : start + _CHUNK // 3])
        args: list[object] = []
        for ward in chunk:
            args += [ward, after or "", limit]
        found.update(r[0] for r in conn.execute(" UNION ".join([part] * len(chunk)), args))
    return sorted(found)[:limit]


def unnamed_bytes(conn: sqlite3.Connection, uploader: str) -> int:
    row = conn.execute(
        "SELECT coalesce(sum(size), 0) FROM blobs b WHERE b.uploader = ? AND NOT EXISTS (SELECT 1 FROM blob_refs r WHERE r.blob_id = b.id)",
        (uploader,),
    ).fetchone()
    return int(row[0])


def forget_unnamed(conn: sqlite3.Connection, stored_before: str, limit: int) -> list[str]:
    """Delete up to ``limit`` rows of blobs stored before ``stored_before`` that no record names."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = conn.execute(
            "DELETE FROM blobs WHERE id IN (SELECT b.id FROM blobs b WHERE b.stored_at < ? "
            "AND NOT EXISTS (SELECT 1 FROM blob_refs r WHERE r.blob_id = b.id) LIMIT ?) RETURNING id",
            (stored_before, limit),
        ).fetchall()
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return [r[0] for r in rows]


def stored(conn: sqlite3.Connection, blob_id: str, size: int, uploader: str | None, now: str) -> None:
    """Note that the blob store holds this blob (idempotent)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("INSERT OR IGNORE INTO blobs (id, size, stored_at, uploader) VALUES (?, ?, ?, ?)", (blob_id, size, now, uploader))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
