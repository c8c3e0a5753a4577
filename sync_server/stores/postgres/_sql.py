"""The store's SQL: reads and writes of a group commit, pull pages, identity.

Each function takes an asyncpg connection and runs one statement where it can
(arrays through ``unnest``), so a group commit costs a handful of round trips
however many records it writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from schemas import Key

from ...engine.state import RecordState, decode_state
from .._rows import changeset_from_row
from ..base import ConflictRow, EditRow, StoredChangeset

__all__ = [
    "SAVE",
    "changesets",
    "key_locks",
    "lock",
    "page",
    "records",
    "save_args",
    "seqs",
    "top_position",
]


# -- reads of a group commit ------------------------------------------------------------


def key_locks(kind: str, pairs: Iterable[tuple[str, str]]) -> list[int]:
    """Advisory lock keys for records or change sets, sorted (a fixed order: no deadlock).

    A key that does not exist yet can be locked too: two workers creating the
    same record, or applying the same change set, meet here and one waits."""
    keys = set()
    for a, b in pairs:
        digest = hashlib.blake2b(f"{kind}\0{a}\0{b}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
        keys.add(int.from_bytes(digest, "big", signed=True))
    return sorted(keys)


async def lock(conn: Any, keys: Sequence[int]) -> None:
    if keys:
        await conn.execute("SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k", keys)


async def changesets(conn: Any, ids: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredChangeset]:
    rows = await conn.fetch(
        "SELECT c.device_id, c.changeset_id, c.body_hash, c.response FROM changesets c "
        "JOIN unnest($1::text[], $2::text[]) AS k(device_id, changeset_id) USING (device_id, changeset_id)",
        [i[0] for i in ids],
        [i[1] for i in ids],
    )
    return {(r["device_id"], r["changeset_id"]): changeset_from_row(r) for r in rows}


_RECORDS = (
    "SELECT r.doc, r.crdt, r.seq FROM records r "
    "JOIN unnest($1::text[], $2::text[]) AS k(collection, id) USING (collection, id)"
)
_SEQS = (
    "SELECT r.collection, r.id, r.seq FROM records r "
    "JOIN unnest($1::text[], $2::text[]) AS k(collection, id) USING (collection, id)"
)


async def records(conn: Any, keys: Sequence[Key], for_update: bool) -> dict[Key, RecordState]:
    rows = await conn.fetch(_RECORDS + (" FOR UPDATE OF r" if for_update else ""), [k[0] for k in keys], [k[1] for k in keys])
    found: dict[Key, RecordState] = {}
    for doc, crdt, _seq in rows:
        state = decode_state(doc, crdt)
        found[(state.collection, state.id)] = state
    return found


async def seqs(conn: Any, keys: Sequence[Key]) -> dict[Key, int]:
    rows = await conn.fetch(_SEQS + " FOR UPDATE OF r", [k[0] for k in keys], [k[1] for k in keys])
    return {(r[0], r[1]): int(r[2]) for r in rows}


# -- the write of a group commit: one statement -------------------------------------------

SAVE = """
WITH r AS (
    INSERT INTO records (collection, id, ward_id, seq, pos, deleted, doc, crdt)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::boolean[], $7::bytea[], $8::bytea[])
    ON CONFLICT (collection, id) DO UPDATE SET
        ward_id = excluded.ward_id, seq = excluded.seq, pos = excluded.pos,
        deleted = excluded.deleted, doc = excluded.doc, crdt = excluded.crdt
), e AS (
    INSERT INTO edits (collection, record_id, ward_id, seq, at, user_id, device_id, changeset_id, diff)
    SELECT * FROM unnest($9::text[], $10::text[], $11::text[], $12::bigint[], $13::text[], $14::text[], $15::text[],
                         $16::text[], $17::bytea[])
), c AS (
    INSERT INTO conflicts (id, collection, record_id, ward_id, field, kind, winner, server, client,
                           device_id, user_id, changeset_id, created_at)
    SELECT * FROM unnest($18::bigint[], $19::text[], $20::text[], $21::text[], $22::text[], $23::text[], $24::text[],
                         $25::bytea[], $26::bytea[], $27::text[], $28::text[], $29::text[], $30::text[])
)
INSERT INTO changesets (device_id, changeset_id, body_hash, response, created_at)
SELECT d, c, h, r, $35::text FROM unnest($31::text[], $32::text[], $33::bytea[], $34::bytea[]) AS a(d, c, h, r)
"""


def save_args(
    records: Sequence[tuple[RecordState, int, bytes, bytes]],
    edits: Sequence[EditRow],
    conflicts: Sequence[ConflictRow],
    answers: Sequence[StoredChangeset],
    now: str,
) -> list[Any]:
    """The arguments of ``SAVE``: one array per column. ``records``: (state, position, doc, crdt)."""
    return [
        [s.collection for s, _, _, _ in records],
        [s.id for s, _, _, _ in records],
        [s.ward_id for s, _, _, _ in records],
        [s.seq for s, _, _, _ in records],
        [p for _, p, _, _ in records],
        [s.deleted for s, _, _, _ in records],
        [d for _, _, d, _ in records],
        [c for _, _, _, c in records],
        [e.collection for e in edits],
        [e.record_id for e in edits],
        [e.ward_id for e in edits],
        [e.seq for e in edits],
        [e.at for e in edits],
        [e.user_id for e in edits],
        [e.device_id for e in edits],
        [e.changeset_id for e in edits],
        [e.diff for e in edits],
        [c.id for c in conflicts],
        [c.collection for c in conflicts],
        [c.record_id for c in conflicts],
        [c.ward_id for c in conflicts],
        [c.field for c in conflicts],
        [c.kind for c in conflicts],
        [c.winner for c in conflicts],
        [c.server for c in conflicts],
        [c.client for c in conflicts],
        [c.device_id for c in conflicts],
        [c.user_id for c in conflicts],
        [c.changeset_id for c in conflicts],
        [c.created_at for c in conflicts],
        [a.device_id for a in answers],
        [a.changeset_id for a in answers],
        [a.body_hash for a in answers],
        [a.response for a in answers],
        now,
    ]


# -- pull ---------------------------------------------------------------------------------

#: below this, every transaction has ended (see ``_cursor``); same statement, same snapshot
_HORIZON = "(SELECT (pg_snapshot_xmin(pg_current_snapshot())::text::bigint + $3) << 20)"


def page(
    wards: frozenset[str] | None, after: int, xid_base: int, fetch: int, collections: frozenset[str] | None, crdt: bool = False
) -> tuple[str, list[Any]]:
    """Up to ``fetch`` records after ``after`` in position order, below the horizon;
    with ``crdt``, each row's merge state too (for a pull's ``skip``).

    Several wards: one index range per ward (LATERAL), merged."""
    extra = ", r.crdt" if crdt else ""
    args: list[Any] = [after, fetch, xid_base]
    where_collection = ""
    if collections is not None:
        args.append(sorted(collections))
        where_collection = f" AND r.collection = ANY(${len(args)}::text[])"
    if wards is None:
        sql = f"SELECT r.pos, r.doc{extra} FROM records r WHERE r.pos > $1 AND r.pos < {_HORIZON}{where_collection} ORDER BY r.pos LIMIT $2"
        return sql, args
    args.append(sorted(wards))
    sql = (
        f"SELECT p.* FROM unnest(${len(args)}::text[]) AS w(ward_id) CROSS JOIN LATERAL ("
        f"SELECT r.pos, r.doc{extra} FROM records r WHERE r.ward_id = w.ward_id AND r.pos > $1 AND r.pos < {_HORIZON}"
        f"{where_collection} ORDER BY r.pos LIMIT $2) AS p ORDER BY p.pos LIMIT $2"
    )
    return sql, args


async def head_position(conn: Any, xid_base: int) -> int:
    """The last position a pull can serve now (below the horizon, in the same snapshot):
    everything committed later lands above it (``_cursor``)."""
    sql = f"SELECT coalesce(max(pos), 0) FROM records WHERE pos < {_HORIZON.replace('$3', '$1')}"
    return int(await conn.fetchval(sql, xid_base))


async def top_position(conn: Any) -> int:
    return int(await conn.fetchval("SELECT coalesce(max(pos), 0) FROM records"))
