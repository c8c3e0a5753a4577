"""The outbox: edits stamped and queued durably, then frozen into change sets.

An edit is one transaction: its stamp, its outbox rows and the record's new view
are written together, so an app killed right after an edit keeps it. Rows are
keyed by (record, field, set element): a field edited twice before a sync is one
row (one change), with the newer value and stamp and the *first* edit's base (the
server state the device had seen when the local edits began).

Sending goes through :meth:`Outbox.freeze`: whole records' rows are marked with a
new change set id and the exact body is stored before the first attempt. An edit
made while its change set is in flight replaces the row and clears the mark, so
when the answer comes only the rows still marked are settled: the newer edit
stays pending and goes out in a later change set.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Mapping
from typing import Any

import aiosqlite
import msgspec

from schemas import ChangeResult, Delete, ErrorItem, FieldEdit, PushResponse, SetEdit, ValueEdit

from ._localdb import LocalDB, fetch_all, fetch_one, scalar
from ._records import DeviceClock, Key, WireRecord, refresh_views, upsert_pulled
from ._values import PendingRow, Values, apply_rows, utc_text
from .errors import InvalidEdit, ProtocolError, RecordNotFound
from .ids import new_id

__all__ = ["Frozen", "Outbox", "Settled"]

_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()

_UPSERT_ROW = """
INSERT INTO outbox (collection, id, field, element, kind, value, present, ts, base) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (collection, id, field, element) DO UPDATE SET
    kind = excluded.kind, value = excluded.value, present = excluded.present, ts = excluded.ts, changeset_id = NULL
"""


class _OutChange(msgspec.Struct, omit_defaults=True):
    collection: str
    id: str
    fields: dict[str, FieldEdit] = {}
    delete: Delete | None = None


class _OutBody(msgspec.Struct):
    device_id: str
    changeset_id: str
    changes: list[msgspec.Raw]


class _Head(msgspec.Struct):
    collection: str
    id: str


class _Heads(msgspec.Struct):
    changes: list[_Head]


class _Raws(msgspec.Struct):
    changes: list[msgspec.Raw]


_heads = msgspec.json.Decoder(_Heads)
_raws = msgspec.json.Decoder(_Raws)


@dataclasses.dataclass(frozen=True, slots=True)
class Frozen:
    """A change set ready to send: its id and exact body never change."""

    changeset_id: str
    body: bytes
    changes: int


@dataclasses.dataclass(slots=True)
class Settled:
    applied: int
    rejected: int


@dataclasses.dataclass(slots=True)
class Current:
    """A record as the device reads it now, with what edits need to know."""

    ward_id: str
    doc: dict[str, Any]
    deleted: bool
    stamps: dict[str, str]


class Outbox:
    def __init__(self, db: LocalDB, clock: DeviceClock) -> None:
        self.db = db
        self.clock = clock

    # -- edits -----------------------------------------------------------------------

    async def create(self, collection: str, record_id: str, ward_id: str, values: Values) -> None:
        async with self.db.transaction() as conn:
            ts = self.clock.now()
            rows = values.rows(ts)
            doc: dict[str, Any] = {}
            apply_rows(doc, rows, False)
            try:
                await conn.execute(
                    "INSERT INTO records (collection, id, ward_id, view, view_deleted) VALUES (?, ?, ?, ?, 0)",
                    (collection, record_id, ward_id, _json.encode(doc).decode()),
                )
            except sqlite3.IntegrityError:
                raise InvalidEdit(f"{collection}/{record_id} exists already") from None
            await conn.executemany(_UPSERT_ROW, [(collection, record_id, r.field, r.element, r.kind, r.value, r.present, r.ts, None) for r in rows])

    async def current(self, collection: str, record_id: str) -> Current:
        """The record as read now; raises RecordNotFound when absent or deleted."""
        async with self.db.transaction() as conn:
            return await _current(conn, collection, record_id)

    async def edit(
        self,
        collection: str,
        record_id: str,
        values: Values | None,
        *,
        delete: bool = False,
        assign: Mapping[str, list[str]] | None = None,
    ) -> dict[str, Any]:
        """Stamp and queue edits of an existing record; returns its new view.

        ``assign`` sets whole set fields: turned into element adds and removes
        against the record as it reads now."""
        async with self.db.transaction() as conn:
            current = await _current(conn, collection, record_id)
            if assign:
                values = values or Values()
                for name, wanted in assign.items():
                    have = set(current.doc.get(name) or [])
                    diff = {e: True for e in wanted if e not in have}
                    diff.update({e: False for e in have if e not in wanted})
                    if diff:
                        values.sets[name] = diff
            ts = self.clock.now()
            rows = values.rows(ts) if values is not None else []
            if delete:
                rows.append(PendingRow("", "", "delete", None, None, ts))
            stamps = current.stamps
            top_seen = max(stamps.values(), default=None)
            await conn.executemany(
                _UPSERT_ROW,
                [
                    (collection, record_id, r.field, r.element, r.kind, r.value, r.present, r.ts, top_seen if r.kind == "delete" else stamps.get(r.field))
                    for r in rows
                ],
            )
            doc = current.doc
            deleted = apply_rows(doc, rows, False)
            await conn.execute(
                "UPDATE records SET view = ?, view_deleted = ? WHERE collection = ? AND id = ?",
                (_json.encode(doc).decode(), int(deleted), collection, record_id),
            )
        return doc

    async def pending_count(self) -> int:
        """Records with edits waiting to be pushed."""
        async with self.db.transaction() as conn:
            return int(await scalar(conn, "SELECT COUNT(*) FROM (SELECT DISTINCT collection, id FROM outbox)"))

    async def top_stamp(self) -> str | None:
        async with self.db.transaction() as conn:
            value = await scalar(conn, "SELECT MAX(ts) FROM outbox")
        return str(value) if value is not None else None

    # -- change sets -------------------------------------------------------------------

    async def last_row(self) -> int:
        async with self.db.transaction() as conn:
            return int(await scalar(conn, "SELECT COALESCE(MAX(n), 0) FROM outbox"))

    async def in_flight(self) -> list[Frozen]:
        """Change sets frozen earlier and not yet answered (a crash, a timeout)."""
        async with self.db.transaction() as conn:
            rows = await fetch_all(conn, "SELECT changeset_id, body, changes FROM changesets ORDER BY n")
        return [Frozen(c, bytes(b), n) for c, b, n in rows]

    async def freeze(self, device_id: str, max_changes: int, max_bytes: int, upto: int) -> Frozen | None:
        """Freeze the next change set: whole records, oldest first, within both bounds."""
        async with self.db.transaction() as conn:
            keys: list[Key] = []
            seen: set[Key] = set()
            async with conn.execute(
                "SELECT collection, id FROM outbox WHERE changeset_id IS NULL AND n <= ? ORDER BY n", (upto,)
            ) as cursor:
                while len(keys) < max_changes:
                    batch = await cursor.fetchmany(4096)
                    if not batch:
                        break
                    for c, i in batch:
                        if (c, i) not in seen:
                            seen.add((c, i))
                            keys.append((c, i))
                            if len(keys) == max_changes:
                                break
            if not keys:
                return None
            changeset_id = new_id()
            await conn.executemany(
                "UPDATE outbox SET changeset_id = ? WHERE collection = ? AND id = ? AND changeset_id IS NULL",
                [(changeset_id, c, i) for c, i in keys],
            )
            grouped: dict[Key, list[Any]] = {}
            for row in await fetch_all(
                conn,
                "SELECT collection, id, field, element, kind, value, present, ts, base FROM outbox WHERE changeset_id = ?",
                (changeset_id,),
            ):
                grouped.setdefault((row[0], row[1]), []).append(row)
            parts: list[msgspec.Raw] = []
            size = 0
            for n, key in enumerate(keys):
                part = _json.encode(_change(key, grouped[key]))
                if parts and size + len(part) > max_bytes:
                    await conn.executemany(
                        "UPDATE outbox SET changeset_id = NULL WHERE changeset_id = ? AND collection = ? AND id = ?",
                        [(changeset_id, c, i) for c, i in keys[n:]],
                    )
                    break
                parts.append(msgspec.Raw(part))
                size += len(part) + 1
            body = _json.encode(_OutBody(device_id, changeset_id, parts))
            await conn.execute(
                "INSERT INTO changesets (changeset_id, body, changes, created_at) VALUES (?, ?, ?, ?)",
                (changeset_id, body, len(parts), utc_text(self.clock.wall())),
            )
        return Frozen(changeset_id, body, len(parts))

    async def unfreeze(self, frozen: Frozen) -> None:
        """Give a change set up unsent (refused whole): its edits wait again."""
        async with self.db.transaction() as conn:
            await conn.execute("UPDATE outbox SET changeset_id = NULL WHERE changeset_id = ?", (frozen.changeset_id,))
            await conn.execute("DELETE FROM changesets WHERE changeset_id = ?", (frozen.changeset_id,))

    async def dead_letter_whole(self, frozen: Frozen, errors: list[ErrorItem]) -> int:
        """A change set the server refuses whole, with one change only: that change is poison."""
        heads = _heads.decode(frozen.body).changes
        results = [ChangeResult[WireRecord](collection=h.collection, id=h.id, status="rejected", errors=errors) for h in heads]
        answer = PushResponse[WireRecord](changeset_id=frozen.changeset_id, cursor="", results=results)
        settled = await self.settle(frozen, answer)
        return settled.rejected

    async def settle(self, frozen: Frozen, answer: PushResponse[WireRecord]) -> Settled:
        """Apply the server's answer: bases updated, rejections to dead letters, rows done."""
        heads = _heads.decode(frozen.body).changes
        results = answer.results
        if len(results) != len(heads):
            raise ProtocolError(f"change set {frozen.changeset_id}: {len(heads)} changes sent, {len(results)} results")
        raws = _raws.decode(frozen.body).changes if any(r.status == "rejected" for r in results) else []
        applied = [r.record for r in results if r.status == "applied" and r.record is not None]
        now = utc_text(self.clock.wall())
        dead = []
        for n, (head, result) in enumerate(zip(heads, results)):
            if result.status == "rejected":
                change = _decode.decode(raws[n])
                change.pop("collection", None)
                change.pop("id", None)
                errors = _json.encode(result.errors).decode()
                dead.append((head.collection, head.id, _json.encode(change).decode(), errors, frozen.changeset_id, now))
        async with self.db.transaction() as conn:
            await upsert_pulled(conn, applied, self.clock)
            if dead:
                await conn.executemany(
                    "INSERT INTO dead_letters (collection, record_id, change, errors, changeset_id, rejected_at) VALUES (?, ?, ?, ?, ?, ?)",
                    dead,
                )
            if answer.conflicts:
                await conn.executemany(
                    "INSERT OR IGNORE INTO conflicts (id, collection, record_id, body) VALUES (?, ?, ?, ?)",
                    [(c.id, c.collection, c.record_id, _json.encode(c).decode()) for c in answer.conflicts],
                )
            await conn.execute("DELETE FROM outbox WHERE changeset_id = ?", (frozen.changeset_id,))
            await refresh_views(conn, [(h.collection, h.id) for h in heads])
            await conn.execute("DELETE FROM changesets WHERE changeset_id = ?", (frozen.changeset_id,))
            await self.db.set_meta(conn, {"hlc": self.clock.state_text})
        return Settled(applied=len(results) - len(dead), rejected=len(dead))

    # -- dead letters ------------------------------------------------------------------

    async def requeue(self, letter: int, collection: str, record_id: str, change: Mapping[str, Any], fixes: Values) -> None:
        """Queue a rejected change again as new edits (new stamps, its old bases)."""
        async with self.db.transaction() as conn:
            if not await scalar(conn, "SELECT EXISTS (SELECT 1 FROM dead_letters WHERE n = ?)", (letter,)):
                raise RecordNotFound(f"no dead letter {letter}")
            await conn.execute("DELETE FROM dead_letters WHERE n = ?", (letter,))
            ts = self.clock.now()
            rows: list[tuple[Any, ...]] = []
            fields: Mapping[str, Any] = change.get("fields") or {}
            for name, edit in fields.items():
                base = edit.get("base")
                if name in fixes.values:
                    rows.append((name, "", "value", fixes.values[name], None, base))
                elif "value" in edit:
                    rows.append((name, "", "value", _json.encode(edit["value"]).decode(), None, base))
                else:
                    rows += [(name, str(e), "set", None, 1, base) for e in edit.get("add", [])]
                    rows += [(name, str(e), "set", None, 0, base) for e in edit.get("remove", [])]
            for name, value in fixes.values.items():
                if name not in fields:
                    rows.append((name, "", "value", value, None, None))
            if change.get("delete"):
                rows.append(("", "", "delete", None, None, change["delete"].get("base")))
            await conn.executemany(_UPSERT_ROW, [(collection, record_id, f, e, k, v, p, ts, b) for f, e, k, v, p, b in rows])
            await refresh_views(conn, [(collection, record_id)])


async def _current(conn: aiosqlite.Connection, collection: str, record_id: str) -> Current:
    row = await fetch_one(
        conn,
        "SELECT ward_id, COALESCE(view, fields), COALESCE(view_deleted, deleted), stamps FROM records WHERE collection = ? AND id = ?",
        (collection, record_id),
    )
    if row is None:
        raise RecordNotFound(f"{collection}/{record_id} is not on this device")
    if row[2]:
        raise RecordNotFound(f"{collection}/{record_id} is deleted")
    return Current(row[0], _decode.decode(row[1]), False, _decode.decode(row[3]) if row[3] else {})


def _change(key: Key, rows: list[Any]) -> _OutChange:
    """One record's frozen rows as the change to push."""
    fields: dict[str, FieldEdit] = {}
    sets: dict[str, tuple[list[str], list[str], list[str], list[str]]] = {}
    delete = None
    for _, _, field, element, kind, value, present, ts, base in rows:
        if kind == "value":
            fields[field] = ValueEdit(value=msgspec.Raw(value.encode()), ts=ts, base=base)
        elif kind == "set":
            add, remove, stamps, bases = sets.setdefault(field, ([], [], [], []))
            (add if present else remove).append(element)
            stamps.append(ts)
            if base is not None:
                bases.append(base)
        else:
            delete = Delete(ts=ts, base=base)
    for field, (add, remove, stamps, bases) in sets.items():
        fields[field] = SetEdit(add=sorted(add), remove=sorted(remove), ts=max(stamps), base=min(bases) if bases else None)
    return _OutChange(collection=key[0], id=key[1], fields=fields, delete=delete)
