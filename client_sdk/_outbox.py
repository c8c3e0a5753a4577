"""The outbox: edits stamped and queued durably, then frozen into change sets.

An edit is one transaction: its stamp, the record's outbox row and its new view are
written together, so an app killed right after an edit keeps it. A record has one
*open* outbox row, holding its pending edits coalesced (see ``Pending``): a field
edited twice before a sync goes out as one change, with the newer value and stamp.

Sending goes through :meth:`Outbox.freeze`: the oldest open rows are marked with a
new change set id and the exact body is stored before the first attempt. A row, once
frozen, never changes: an edit made while its change set is in flight opens a new
row for the record, which goes out in a later change set. So when the answer comes,
the frozen rows are simply done, and nothing made meanwhile is lost with them.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Mapping
from typing import Any

import aiosqlite
import msgspec

from schemas import AnyChange, ChangeResult, Delete, ErrorItem, FieldEdit, PushResponse, SetEdit, ValueEdit
from schemas.compact import apply_own

from ._localdb import LocalDB, fetch_all, fetch_one, scalar
from ._records import DeviceClock, WireRecord, refresh_views, stamps_of, upsert_pulled
from ._values import Pending, Values, apply_pending, decode_pending, encode_pending, utc_text
from .errors import InvalidEdit, ProtocolError, RecordNotFound
from .ids import new_id

__all__ = ["Frozen", "Outbox", "Settled", "save_pending"]

_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()


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
_rows = msgspec.json.Decoder(list[int])
_typed_change = msgspec.json.Decoder(AnyChange)


@dataclasses.dataclass(frozen=True, slots=True)
class Frozen:
    """A change set ready to send: its id and exact body never change."""

    changeset_id: str
    body: bytes
    #: the outbox rows it carries, one per change
    rows: list[int]

    @property
    def changes(self) -> int:
        return len(self.rows)


@dataclasses.dataclass(slots=True)
class Settled:
    applied: int
    rejected: int


@dataclasses.dataclass(slots=True)
class _Current:
    """A record as the device reads it now, with what an edit needs."""

    doc: dict[str, Any]
    stamps: dict[str, str]
    open_row: int | None
    pending: Pending


_CURRENT = """
SELECT COALESCE(r.view, r.fields), COALESCE(r.view_deleted, r.deleted), r.stamps, r.fields, o.n, o.change
FROM records r LEFT JOIN outbox o ON o.collection = r.collection AND o.id = r.id AND o.changeset_id IS NULL
WHERE r.collection = ? AND r.id = ? ORDER BY o.n DESC LIMIT 1
"""


class Outbox:
    def __init__(self, db: LocalDB, clock: DeviceClock) -> None:
        self.db = db
        self.clock = clock
        #: bumped by every edit: a pull that began with an empty outbox and sees it
        #: unchanged need not look for pending edits to replay
        self.edits = 0

    # -- edits -----------------------------------------------------------------------

    async def create(self, collection: str, record_id: str, ward_id: str, values: Values) -> None:
        async with self.db.transaction() as conn:
            ts = self.clock.now()
            pending = Pending()
            pending.add(values, ts, {})
            doc: dict[str, Any] = {}
            apply_pending(doc, [pending], False)
            try:
                await conn.execute(
                    "INSERT INTO records (collection, id, ward_id, view, view_deleted) VALUES (?, ?, ?, ?, 0)",
                    (collection, record_id, ward_id, _json.encode(doc)),
                )
            except sqlite3.IntegrityError:
                raise InvalidEdit(f"{collection}/{record_id} exists already") from None
            await save_pending(conn, collection, record_id, None, pending)
            self.edits += 1

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
            values = values or Values()
            for name, wanted in (assign or {}).items():
                have = set(current.doc.get(name) or [])
                diff = {e: True for e in wanted if e not in have}
                diff.update({e: False for e in have if e not in wanted})
                if diff:
                    values.sets[name] = diff
            ts = self.clock.now()
            change = Pending()
            change.add(values, ts, current.stamps)
            if delete:
                change.delete_at(ts, current.stamps)
            current.pending.add(values, ts, current.stamps)
            if delete:
                current.pending.delete_at(ts, current.stamps)
            await save_pending(conn, collection, record_id, current.open_row, current.pending)
            self.edits += 1
            doc = current.doc
            deleted = apply_pending(doc, [change], False)
            await conn.execute(
                "UPDATE records SET view = ?, view_deleted = ? WHERE collection = ? AND id = ?",
                (_json.encode(doc), int(deleted), collection, record_id),
            )
        return doc

    async def pending_count(self) -> int:
        """Records with edits waiting to be pushed."""
        async with self.db.transaction() as conn:
            return int(await scalar(conn, "SELECT COUNT(*) FROM (SELECT DISTINCT collection, id FROM outbox)"))

    # -- change sets -------------------------------------------------------------------

    async def last_row(self) -> int:
        async with self.db.transaction() as conn:
            return int(await scalar(conn, "SELECT COALESCE(MAX(n), 0) FROM outbox"))

    async def in_flight(self) -> list[Frozen]:
        """Change sets frozen earlier and not yet answered (a crash, a timeout)."""
        async with self.db.transaction() as conn:
            rows = await fetch_all(conn, "SELECT changeset_id, body, rows FROM changesets ORDER BY n")
        return [Frozen(c, bytes(b), _rows.decode(r)) for c, b, r in rows]

    async def freeze(self, device_id: str, max_changes: int, max_bytes: int, upto: int) -> Frozen | None:
        """Freeze the next change set: the oldest open rows, within both bounds.

        Not fsynced: were a power cut to lose it after it was sent, its edits would be
        frozen again under another id, and the server ignores an edit it already has
        (same stamp, same value), so nothing would apply twice."""
        async with self.db.transaction(durable=False) as conn:
            rows = await fetch_all(
                conn,
                "SELECT n, collection, id, change FROM outbox WHERE n <= ? AND changeset_id IS NULL ORDER BY n LIMIT ?",
                (upto, max_changes),
            )
            if not rows:
                return None
            parts: list[msgspec.Raw] = []
            taken: list[int] = []
            size = 0
            for n, collection, record_id, change in rows:
                part = _json.encode(_out_change(collection, record_id, decode_pending(change)))
                if parts and size + len(part) > max_bytes:
                    break
                parts.append(msgspec.Raw(part))
                taken.append(n)
                size += len(part) + 1
            changeset_id = new_id()
            body = _json.encode(_OutBody(device_id, changeset_id, parts))
            await conn.executemany("UPDATE outbox SET changeset_id = ? WHERE n = ?", [(changeset_id, n) for n in taken])
            await conn.execute(
                "INSERT INTO changesets (changeset_id, body, rows, created_at) VALUES (?, ?, ?, ?)",
                (changeset_id, body, _json.encode(taken), utc_text(self.clock.wall())),
            )
        return Frozen(changeset_id, body, taken)

    async def unfreeze(self, frozen: Frozen) -> None:
        """Give a change set up unsent (refused whole): its rows are open again.

        A record edited meanwhile then has two open rows; they go out oldest first."""
        async with self.db.transaction() as conn:
            await conn.executemany("UPDATE outbox SET changeset_id = NULL WHERE n = ?", [(n,) for n in frozen.rows])
            await conn.execute("DELETE FROM changesets WHERE changeset_id = ?", (frozen.changeset_id,))

    async def dead_letter_whole(self, frozen: Frozen, errors: list[ErrorItem]) -> int:
        """A change set the server refuses whole, with one change only: that change is poison."""
        heads = _heads.decode(frozen.body).changes
        results = [ChangeResult[WireRecord](collection=h.collection, id=h.id, status="rejected", errors=errors) for h in heads]
        answer = PushResponse[WireRecord](changeset_id=frozen.changeset_id, cursor="", results=results)
        return (await self.settle(frozen, answer)).rejected

    async def settle(self, frozen: Frozen, answer: PushResponse[WireRecord], minimal: bool = False) -> Settled:
        """Apply the server's answer: bases updated, rejections to dead letters, rows done.

        ``minimal``: the server applied ``Prefer: return=minimal``, so a record that
        comes as its ``seq`` alone stands exactly as this change set makes it over the
        copy this device holds (``schemas.compact.apply_own``; none for a record it
        made), and is rebuilt so from the body sent.

        Not fsynced: lost to a power cut, the change set would still be in flight, and
        its resend would get the same answer."""
        heads = _heads.decode(frozen.body).changes
        results = answer.results
        if len(results) != len(heads):
            raise ProtocolError(f"change set {frozen.changeset_id}: {len(heads)} changes sent, {len(results)} results")
        raws = _raws.decode(frozen.body).changes if any(r.status == "rejected" for r in results) or minimal else []
        applied = [r.record for r in results if r.status == "applied" and r.record is not None]
        now = utc_text(self.clock.wall())
        dead = []
        for n, (head, result) in enumerate(zip(heads, results, strict=True)):
            if result.status == "rejected":
                change = _decode.decode(raws[n])
                change.pop("collection", None)
                change.pop("id", None)
                errors = _json.encode(result.errors).decode()
                dead.append((head.collection, head.id, _json.encode(change).decode(), errors, frozen.changeset_id, now))
        async with self.db.transaction(durable=False) as conn:
            if minimal:
                applied += await _rebuilt(conn, heads, raws, results)
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
            await conn.executemany("DELETE FROM outbox WHERE n = ?", [(n,) for n in frozen.rows])
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
            fields: Mapping[str, Any] = change.get("fields") or {}
            bases = {name: edit["base"] for name, edit in fields.items() if edit.get("base")}
            again = Values()
            for name, edit in fields.items():
                if "value" in edit:
                    again.values[name] = _json.encode(edit["value"]).decode()
                else:
                    again.sets[name] = {str(e): True for e in edit.get("add", [])} | {str(e): False for e in edit.get("remove", [])}
            again.values.update(fixes.values)
            row = await fetch_one(
                conn, "SELECT n, change FROM outbox WHERE collection = ? AND id = ? AND changeset_id IS NULL ORDER BY n DESC", (collection, record_id)
            )
            pending = decode_pending(row[1]) if row else Pending()
            ts = self.clock.now()
            pending.add(again, ts, bases)
            if change.get("delete"):
                pending.delete_at(ts, {"": change["delete"]["base"]} if change["delete"].get("base") else {})
            await save_pending(conn, collection, record_id, row[0] if row else None, pending)
            self.edits += 1
            await refresh_views(conn, [(collection, record_id)])


async def save_pending(conn: aiosqlite.Connection, collection: str, record_id: str, row: int | None, pending: Pending) -> None:
    """Write a record's pending edits: as a new open outbox row, or over the open row ``row``."""
    if row is None:
        await conn.execute(
            "INSERT INTO outbox (collection, id, change, top) VALUES (?, ?, ?, ?)",
            (collection, record_id, encode_pending(pending), pending.top()),
        )
    else:
        await conn.execute("UPDATE outbox SET change = ?, top = ? WHERE n = ?", (encode_pending(pending), pending.top(), row))


async def _current(conn: aiosqlite.Connection, collection: str, record_id: str) -> _Current:
    row = await fetch_one(conn, _CURRENT, (collection, record_id))
    if row is None:
        raise RecordNotFound(f"{collection}/{record_id} is not on this device")
    doc, deleted, stamps, pulled, open_row, change = row
    if deleted:
        raise RecordNotFound(f"{collection}/{record_id} is deleted")
    return _Current(_decode.decode(doc), stamps_of(stamps, pulled), open_row, decode_pending(change) if change else Pending())


def _out_change(collection: str, record_id: str, pending: Pending) -> _OutChange:
    """One record's pending edits as the change to push."""
    fields: dict[str, FieldEdit] = {name: ValueEdit(value=v.value, ts=v.ts, base=v.base) for name, v in pending.values.items()}
    for name, s in pending.sets.items():
        add = sorted(e for e, (present, _) in s.elements.items() if present)
        remove = sorted(e for e, (present, _) in s.elements.items() if not present)
        fields[name] = SetEdit(add=add, remove=remove, ts=max(ts for _, ts in s.elements.values()), base=s.base)
    delete = Delete(ts=pending.delete.ts, base=pending.delete.base) if pending.delete is not None else None
    return _OutChange(collection=collection, id=record_id, fields=fields, delete=delete)


async def _rebuilt(conn: aiosqlite.Connection, heads: list[_Head], raws: list[msgspec.Raw], results: list[ChangeResult[WireRecord]]) -> list[WireRecord]:
    """The records a minimal answer gave as ``seq`` alone, as this device's changes make
    them over the copy it holds (``schemas.compact.apply_own``, the server's rule too).

    The copy is the record as last pulled or answered; none when the device never had
    one, or when it was kept through a server restore (``seq`` 0: the server then held
    no such record, and the pull from the start after the 410 replaces it anyway)."""
    whole = {(h.collection, h.id) for h, r in zip(heads, results, strict=True) if r.record is not None or r.status != "applied"}
    changes: dict[tuple[str, str], list[dict[str, Any]]] = {}
    seqs: dict[tuple[str, str], int] = {}
    for head, raw, result in zip(heads, raws, results, strict=True):
        key = (head.collection, head.id)
        if key not in whole and result.seq is not None:
            try:  # typed, then plain again: values in the server's canonical form (timestamps)
                change = msgspec.to_builtins(_typed_change.decode(raw))
            except (msgspec.DecodeError, msgspec.ValidationError):
                whole.add(key)
                continue
            changes.setdefault(key, []).append(change)
            seqs[key] = max(seqs.get(key, 0), result.seq)
    records = []
    for (collection, record_id), sent in changes.items():
        if (collection, record_id) in whole:
            continue
        copy = await fetch_one(conn, "SELECT ward_id, seq, fields, stamps FROM records WHERE collection = ? AND id = ?", (collection, record_id))
        if copy is not None and copy[2] is not None and copy[1]:
            ward, fields, stamps = copy[0], _decode.decode(copy[2]), stamps_of(copy[3], copy[2])
        else:
            ward, fields, stamps = None, {}, {}
        state = apply_own(fields, stamps, sent)
        if state is None:
            continue  # (cannot happen: the server answers such records whole)
        fields, stamps = state
        ward = ward or fields.get("ward_id")
        if not isinstance(ward, str):
            continue  # (cannot happen either: a new record names its ward)
        records.append(
            WireRecord(collection, record_id, ward, seqs[(collection, record_id)], False, msgspec.Raw(_json.encode(fields)), msgspec.Raw(_json.encode(stamps)))
        )
    return records
