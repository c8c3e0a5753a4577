"""The store's SQL as plain functions of a sqlite3 connection, run on its thread."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from schemas import DeviceToken, Key, Team, User, Ward

from ... import stagetimes
from ...engine.state import RecordState, decode_state
from .._rows import changeset_from_row
from ..base import ConflictRow, EditRow, PlannedWrite, RecordRow, ResolvedConflict, StoredChangeset
from ..errors import AlreadyExists, NotFound, UnknownReference
from . import _batch, _blobs, _projections, _supervision
from ._migrate import migrate

__all__ = [
    "begin",
    "commit",
    "migrate",
    "changesets",
    "create_entity",
    "records",
    "revoke_device",
    "rollback",
    "save_and_commit",
    "seqs",
]

_CHUNK = 400  # ids per IN (...) list, or ORs


def _by_collection(keys: Iterable[Key]) -> Iterable[tuple[str, list[str]]]:
    grouped: dict[str, list[str]] = {}
    for collection, record_id in keys:
        grouped.setdefault(collection, []).append(record_id)
    for collection, ids in grouped.items():
        for start in range(0, len(ids), _CHUNK):
            yield collection, ids[start : start + _CHUNK]


def changesets(conn: sqlite3.Connection, ids: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredChangeset]:
    found: dict[tuple[str, str], StoredChangeset] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        # OR of primary-key lookups: SQLite scans the table for a row-value IN (VALUES ...)
        sql = "SELECT device_id, changeset_id, body_hash, response FROM changesets WHERE " + " OR ".join(
            ["(device_id = ? AND changeset_id = ?)"] * len(chunk)
        )
        for r in conn.execute(sql, [part for pair in chunk for part in pair]):
            found[(r["device_id"], r["changeset_id"])] = changeset_from_row(r)
    return found


def records(conn: sqlite3.Connection, keys: Sequence[Key]) -> dict[Key, RecordState]:
    found: dict[Key, RecordState] = {}
    with stagetimes.timer("db: read records (planner)"):
        for collection, ids in _by_collection(keys):
            sql = f"SELECT doc, crdt FROM records WHERE collection = ? AND id IN ({','.join('?' * len(ids))})"
            for doc, crdt in conn.execute(sql, (collection, *ids)):
                state = decode_state(doc, crdt)
                found[(state.collection, state.id)] = state
    return found


def seqs(conn: sqlite3.Connection, keys: Sequence[Key]) -> dict[Key, int]:
    found: dict[Key, int] = {}
    for collection, ids in _by_collection(keys):
        sql = f"SELECT id, seq FROM records WHERE collection = ? AND id IN ({','.join('?' * len(ids))})"
        for record_id, seq in conn.execute(sql, (collection, *ids)):
            found[(collection, record_id)] = int(seq)
    return found


def begin(conn: sqlite3.Connection) -> tuple[int, int]:
    """Take the write lock; answer the highest seq and conflict id (no one else can add any now)."""
    if conn.in_transaction:  # left open by a caller that was cancelled mid-way
        conn.execute("ROLLBACK")
    conn.execute("BEGIN IMMEDIATE")
    row = conn.execute("SELECT (SELECT coalesce(max(seq), 0) FROM records), (SELECT coalesce(max(id), 0) FROM conflicts)").fetchone()
    return int(row[0]), int(row[1])


def heads(conn: sqlite3.Connection) -> tuple[int, int]:
    """The highest seq and conflict id (a read: they may move before the next write)."""
    row = conn.execute("SELECT (SELECT coalesce(max(seq), 0) FROM records), (SELECT coalesce(max(id), 0) FROM conflicts)").fetchone()
    return int(row[0]), int(row[1])


class BatchFailed(Exception):
    """Group ``index`` of a batch broke a rule of the store (``error``); nothing was written."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(index, error)
        self.index = index
        self.error = error


def write_planned(conn: sqlite3.Connection, planned: PlannedWrite, now: str, last: int) -> tuple[bool, tuple[int, int]]:
    """A planned group in one transaction, if the store still stands as it was planned
    from (``stores.OneHopWrites``; ``last``: the last planned write this connection
    took); answers whether it was written, and the heads now."""
    try:
        written, heads = write_planned_batch(conn, [(planned, now)], last)
    except BatchFailed as failed:
        raise failed.error from None
    return written == 1, heads


def write_planned_batch(conn: sqlite3.Connection, batch: Sequence[tuple[PlannedWrite, str]], last: int) -> tuple[int, tuple[int, int]]:
    """Planned groups in order in one transaction, each checked against the heads the
    one before it leaves, and against the planned write it was numbered after (``last``:
    the last one this connection took); stops before the first that no longer stands.
    Answers how many were written (and committed) and the heads after them.  A group
    that fails rolls back the whole batch (``BatchFailed``)."""
    seq, conflict = begin(conn)
    written = 0
    try:
        for index, (planned, now) in enumerate(batch):
            if (
                planned.after not in (0, last)
                or (seq, conflict) != (planned.heads.seq, planned.heads.conflict)
                or changesets(conn, planned.fresh)
                or seqs(conn, [*planned.origin, *planned.created]) != planned.origin
            ):
                break
            try:
                _save(conn, planned.records, planned.edits, planned.conflicts, planned.answers, planned.resolved, now)
            except sqlite3.OperationalError:
                raise  # the transaction itself (a lock, the disk): every group of it
            except Exception as exc:  # this group broke a rule (a constraint, a conflict resolved already)
                raise BatchFailed(index, exc) from exc
            seq, conflict, written, last = seq + len(planned.records), conflict + len(planned.conflicts), written + 1, planned.id
        if not written:
            rollback(conn)
            return 0, (seq, conflict)
        with stagetimes.timer("db: COMMIT"):
            conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
    return written, (seq, conflict)


def rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def commit(conn: sqlite3.Connection) -> None:
    conn.execute("COMMIT")


def save_and_commit(
    conn: sqlite3.Connection,
    rows: Sequence[RecordRow],
    edits: Sequence[EditRow],
    conflicts: Sequence[ConflictRow],
    answers: Sequence[StoredChangeset],
    resolved: Sequence[ResolvedConflict],
    now: str,
) -> None:
    try:
        _save(conn, rows, edits, conflicts, answers, resolved, now)
        with stagetimes.timer("db: COMMIT"):
            conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise


def _save(
    conn: sqlite3.Connection,
    rows: Sequence[RecordRow],
    edits: Sequence[EditRow],
    conflicts: Sequence[ConflictRow],
    answers: Sequence[StoredChangeset],
    resolved: Sequence[ResolvedConflict],
    now: str,
) -> None:
    """A group's writes, inside the caller's transaction."""
    key: Mapping[str, int] = {}  # records' integer keys (p_keys): the edit log and blob refs are indexed by them
    if rows:
        with stagetimes.timer("db: records upsert"):
            _batch.insert(
                conn,
                "INSERT INTO records (seq, collection, id, ward_id, deleted, doc, crdt)",
                [(r.state.seq, r.state.collection, r.state.id, r.state.ward_id, int(r.state.deleted), r.doc, r.crdt) for r in rows],
                " ON CONFLICT (collection, id) DO UPDATE SET seq = excluded.seq, ward_id = excluded.ward_id, "
                "deleted = excluded.deleted, doc = excluded.doc, crdt = excluded.crdt",
            )
        states = [r.state for r in rows]
        with stagetimes.timer("db: report projections"):
            key = _projections.write(conn, states)
        with stagetimes.timer("db: blob refs"):
            _blobs.write_refs(conn, states, key)
    if edits:
        with stagetimes.timer("db: edit log"):
            key = _projections.with_keys(conn, key, (e.record_id for e in edits))
            _batch.insert(
                conn,
                "INSERT INTO edits (rk, collection, record_id, ward_id, seq, at, user_id, device_id, changeset_id, diff)",
                [(key[e.record_id], e.collection, e.record_id, e.ward_id, e.seq, e.at, e.user_id, e.device_id, e.changeset_id, e.diff) for e in edits],
            )
    if conflicts:
        _batch.insert(
            conn,
            "INSERT INTO conflicts (id, collection, record_id, ward_id, field, kind, winner, server, client, "
            "device_id, user_id, changeset_id, created_at)",
            [
                (c.id, c.collection, c.record_id, c.ward_id, c.field, c.kind, c.winner, c.server, c.client,
                 c.device_id, c.user_id, c.changeset_id, c.created_at)
                for c in conflicts
            ],
        )
    if answers:
        with stagetimes.timer("db: stored answers"):
            _batch.insert(
                conn,
                "INSERT INTO changesets (device_id, changeset_id, body_hash, response, created_at)",
                [(a.device_id, a.changeset_id, a.body_hash, a.response, now) for a in answers],
            )
    if resolved:
        _supervision.resolve_conflicts(conn, resolved)


# -- identity -------------------------------------------------------------------------


def _require(conn: sqlite3.Connection, table: str, ids: Sequence[str], what: str) -> None:
    if not ids:
        return
    sql = f"SELECT id FROM {table} WHERE id IN ({','.join('?' * len(ids))})"
    missing = sorted(set(ids) - {row[0] for row in conn.execute(sql, tuple(ids))})
    if missing:
        raise UnknownReference(f"no {what} {', '.join(missing)}")


def create_entity(conn: sqlite3.Connection, entity: Ward | Team | User | DeviceToken, token_hash: str | None, now: str) -> None:
    begin(conn)
    try:
        match entity:
            case Ward():
                conn.execute(
                    "INSERT INTO wards (id, name, timezone, created_at) VALUES (?, ?, ?, ?)",
                    (entity.id, entity.name, entity.timezone, now),
                )
            case Team():
                _require(conn, "wards", [entity.ward_id], "ward")
                conn.execute(
                    "INSERT INTO teams (id, ward_id, name, created_at) VALUES (?, ?, ?, ?)",
                    (entity.id, entity.ward_id, entity.name, now),
                )
            case User():
                _require(conn, "teams", entity.team_ids, "team")
                _require(conn, "wards", entity.ward_ids, "ward")
                conn.execute(
                    "INSERT INTO users (id, name, role, created_at, disabled_at) VALUES (?, ?, ?, ?, ?)",
                    (entity.id, entity.name, entity.role, now, now if entity.disabled else None),
                )
                conn.executemany(
                    "INSERT INTO user_teams (user_id, team_id) VALUES (?, ?)", [(entity.id, t) for t in sorted(set(entity.team_ids))]
                )
                conn.executemany(
                    "INSERT INTO user_wards (user_id, ward_id) VALUES (?, ?)", [(entity.id, w) for w in sorted(set(entity.ward_ids))]
                )
            case DeviceToken():
                assert token_hash is not None
                _require(conn, "users", [entity.user_id], "user")
                conn.execute(
                    "INSERT INTO devices (device_id, user_id, token_hash, created_at) VALUES (?, ?, ?, ?)",
                    (entity.device_id, entity.user_id, token_hash, now),
                )
        commit(conn)
    except sqlite3.IntegrityError as exc:
        rollback(conn)
        raise AlreadyExists(f"{type(entity).__name__.lower().replace('token', '')} {_id(entity)} exists already") from exc
    except BaseException:
        rollback(conn)
        raise


def _id(entity: Any) -> str:
    return str(getattr(entity, "id", None) or getattr(entity, "device_id", ""))


def revoke_device(conn: sqlite3.Connection, device_id: str, now: str) -> None:
    begin(conn)
    try:
        row = conn.execute("SELECT revoked_at FROM devices WHERE device_id = ?", (device_id,)).fetchone()
        if row is None:
            raise NotFound(f"no device {device_id}")
        if row[0] is None:
            conn.execute("UPDATE devices SET revoked_at = ? WHERE device_id = ?", (now, device_id))
        conn.execute("DELETE FROM enrolments WHERE device_id = ?", (device_id,))  # a lost handheld's code dies with it
        commit(conn)
    except BaseException:
        rollback(conn)
        raise
