"""Attachment metadata in PostgreSQL: which blobs are stored, which records name which
(``stores/blobrefs.py``). A record's references are rewritten in the transaction that
writes the record, under that record's key lock (``store._Tx``), so two workers never
interleave them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...engine.state import RecordState, decode_state
from ..base import BlobAccess
from ..blobrefs import BLOB_COLLECTIONS, refs

__all__ = ["access", "forget_unnamed", "missing", "rebuild", "stored", "unnamed_bytes", "write_refs"]

_DELETE = (
    "DELETE FROM blob_refs r USING unnest($1::text[], $2::text[]) AS k(collection, record_id) "
    "WHERE r.collection = k.collection AND r.record_id = k.record_id"
)
_INSERT = (
    "INSERT INTO blob_refs (blob_id, ward_id, collection, record_id) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING"
)


async def write_refs(conn: Any, states: Sequence[RecordState]) -> None:
    """Rewrite the blob references of these record versions (inside the caller's transaction)."""
    touched, rows = [], []
    for state, named in refs(states):
        touched.append((state.collection, state.id))
        rows += named
    if touched:
        await conn.execute(_DELETE, [t[0] for t in touched], [t[1] for t in touched])
    if rows:
        await conn.execute(_INSERT, *(list(column) for column in zip(*rows, strict=True)))


async def rebuild(conn: Any) -> None:
    """Derive every record's references again (migration 3: records written before it)."""
    last = -1
    sql = "SELECT pos, doc, crdt FROM records WHERE collection = ANY($2::text[]) AND pos > $1 ORDER BY pos LIMIT 2000"
    while rows := await conn.fetch(sql, last, list(BLOB_COLLECTIONS)):
        await write_refs(conn, [decode_state(doc, crdt) for _, doc, crdt in rows])
        last = rows[-1][0]


async def access(conn: Any, blob_id: str, wards: Sequence[str]) -> BlobAccess:
    row = await conn.fetchrow(
        "SELECT EXISTS (SELECT 1 FROM blob_refs WHERE blob_id = $1 AND ward_id = ANY($2::text[])), "
        "(SELECT size FROM blobs WHERE id = $1)",
        blob_id,
        list(wards),
    )
    return BlobAccess(named=bool(row[0]), size=None if row[1] is None else int(row[1]))


async def missing(conn: Any, wards: Sequence[str], after: str | None, limit: int) -> list[str]:
    """Blob ids named by records of ``wards`` and not stored, after ``after``, in id order:
    one index range per ward (LATERAL), merged."""
    if not wards:
        return []
    rows = await conn.fetch(
        "SELECT DISTINCT m.blob_id FROM unnest($1::text[]) AS w(ward_id) CROSS JOIN LATERAL ("
        "SELECT r.blob_id FROM blob_refs r WHERE r.ward_id = w.ward_id AND r.blob_id > $2 "
        "AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = r.blob_id) ORDER BY r.blob_id LIMIT $3) AS m "
        "ORDER BY m.blob_id LIMIT $3",
        sorted(wards),
        after or "",
        limit,
    )
    return [r[0] for r in rows]


async def stored(conn: Any, blob_id: str, size: int, uploader: str | None, now: str) -> None:
    await conn.execute(
        "INSERT INTO blobs (id, size, stored_at, uploader) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING", blob_id, size, now, uploader
    )


async def unnamed_bytes(conn: Any, uploader: str) -> int:
    value = await conn.fetchval(
        "SELECT coalesce(sum(size), 0) FROM blobs b WHERE b.uploader = $1 AND NOT EXISTS (SELECT 1 FROM blob_refs r WHERE r.blob_id = b.id)",
        uploader,
    )
    return int(value)


async def forget_unnamed(conn: Any, stored_before: str, limit: int) -> list[str]:
    """Delete up to ``limit`` rows of blobs stored before ``stored_before`` that no record names.
    A record naming one meanwhile locks no row here, so the check is made again at delete time."""
    rows = await conn.fetch(
        "DELETE FROM blobs d WHERE d.id IN (SELECT b.id FROM blobs b WHERE b.stored_at < $1 "
        "AND NOT EXISTS (SELECT 1 FROM blob_refs r WHERE r.blob_id = b.id) LIMIT $2) "
        "AND NOT EXISTS (SELECT 1 FROM blob_refs r WHERE r.blob_id = d.id) RETURNING d.id",
        stored_before,
        limit,
    )
    return [r[0] for r in rows]
