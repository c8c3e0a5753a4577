"""Records as last pulled, and the local view over them.

``records.fields`` is the server's state as the device last saw it (the *base* of
every edit made since); ``records.view`` is that state with the pending edits of
the outbox applied, kept only while some are pending. Reads use the view when
there is one, so an app always reads its own edits, and a pull that brings a
newer base re-applies the still-pending edits on top of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import aiosqlite
import msgspec

from schemas import HLC, Key
from schemas.compact import expand_stamps

from ._localdb import by_collection, fetch_all
from ._values import Pending, apply_pending, decode_pending

__all__ = ["DeviceClock", "Key", "WireRecord", "pending_keys", "refresh_views", "stamps_of", "upsert_pulled"]

_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()


class WireRecord(msgspec.Struct):
    """A record as pulled (PROTOCOL section 5); fields and stamps kept as the raw JSON
    received, stored as they came (a pull of 100,000 records decodes only what it must)."""

    collection: str
    id: str
    ward_id: str
    seq: int
    deleted: bool
    fields: msgspec.Raw
    stamps: msgspec.Raw
    #: compact stamps (``?stamps=compact``): most fields' stamp; ``stamps`` holds the others
    stamp: str | None = None


_stamps = msgspec.json.Decoder(dict[str, str])
_stored_stamps = msgspec.json.Decoder(dict[str, str] | str)
_field_names = msgspec.json.Decoder(dict[str, msgspec.Raw])


def stamps_of(stored: bytes | None, fields: bytes | None) -> dict[str, str]:
    """A record's field stamps as stored: a JSON object, or, when every field carries
    the same stamp (a record written in one edit, the common case), that one stamp
    as a JSON string, which halves what a large pull writes."""
    if stored is None:
        return {}
    stamps: dict[str, str] | str = _stored_stamps.decode(stored)
    if isinstance(stamps, str):
        return dict.fromkeys(_field_names.decode(fields), stamps) if fields else {}
    return stamps


class DeviceClock:
    """The device's HLC and where its state is kept.

    The state is written with every sync step, and every stamp issued since is in
    the outbox; on opening, the clock starts past both, so a restart never issues a
    stamp twice, even if the wall clock went back meanwhile."""

    def __init__(self, node: str, wall: Callable[[], int]) -> None:
        self.wall = wall
        self.hlc = HLC(node, wall=wall)

    def now(self) -> str:
        return self.hlc.now()

    def observe(self, stamp: str | None) -> None:
        if stamp:
            self.hlc.observe(stamp)

    @property
    def state_text(self) -> str:
        ms, counter = self.hlc.state
        return f"{ms},{counter}"

    def restore(self, saved: str | None, top_pending: str | None) -> None:
        if saved:
            ms, counter = (int(x) for x in saved.split(","))
            self.hlc = HLC(self.hlc.node, state=(ms, counter), wall=self.wall)
        self.observe(top_pending)


_UPSERT = """
INSERT INTO records (collection, id, ward_id, seq, deleted, fields, stamps) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (collection, id) DO UPDATE SET
    ward_id = excluded.ward_id, seq = excluded.seq, deleted = excluded.deleted,
    fields = excluded.fields, stamps = excluded.stamps
WHERE excluded.seq > records.seq
"""


async def upsert_pulled(conn: aiosqlite.Connection, records: Sequence[WireRecord], clock: DeviceClock) -> None:
    """Store records as pulled (an older version never replaces a newer one)."""
    if not records:
        return
    rows = []
    top = ""
    for r in records:
        stamps = _stamps.decode(r.stamps)
        stored: bytes | msgspec.Raw = r.stamps  # Raw binds as a BLOB
        if r.stamp is not None:
            stamps = expand_stamps(_field_names.decode(r.fields), r.stamp, stamps)
            stored = _json.encode(stamps)
        if stamps:
            first = next(iter(stamps.values()))
            if all(s == first for s in stamps.values()):  # the same stamp for every field
                stored = _json.encode(first)
                top = max(top, first)
            else:
                top = max(top, max(stamps.values()))
        rows.append((r.collection, r.id, r.ward_id, r.seq, int(r.deleted), r.fields, stored))
    await conn.executemany(_UPSERT, rows)
    clock.observe(top)


async def pending_keys(conn: aiosqlite.Connection, keys: Iterable[Key]) -> list[Key]:
    """Which of these records have edits waiting in the outbox."""
    found: list[Key] = []
    for collection, ids, marks in by_collection(keys):
        sql = f"SELECT DISTINCT id FROM outbox WHERE collection = ? AND id IN ({marks})"
        found += [(collection, i) for (i,) in await fetch_all(conn, sql, (collection, *ids))]
    return found


async def refresh_views(conn: aiosqlite.Connection, keys: Iterable[Key]) -> None:
    """Recompute the view of these records from their base and their pending edits.

    A record created on this device and never pulled disappears once it has no
    pending edit left (its creation was rejected)."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return
    pending: dict[Key, list[Pending]] = {}
    for collection, ids, marks in by_collection(wanted):
        sql = f"SELECT id, change FROM outbox WHERE collection = ? AND id IN ({marks}) ORDER BY n"
        for i, change in await fetch_all(conn, sql, (collection, *ids)):
            pending.setdefault((collection, i), []).append(decode_pending(change))
    done = [key for key in wanted if key not in pending]
    if done:  # nothing pending: reads go back to the base; a record never pulled is gone
        await conn.executemany("UPDATE records SET view = NULL, view_deleted = NULL WHERE collection = ? AND id = ? AND view IS NOT NULL", done)
        await conn.executemany("DELETE FROM records WHERE collection = ? AND id = ? AND fields IS NULL", done)
    redo = [key for key in wanted if key in pending]
    if not redo:
        return
    bases: dict[Key, tuple[str, bytes | None, int]] = {}
    for collection, ids, marks in by_collection(redo):
        sql = f"SELECT id, ward_id, fields, deleted FROM records WHERE collection = ? AND id IN ({marks})"
        for i, ward, fields, deleted in await fetch_all(conn, sql, (collection, *ids)):
            bases[(collection, i)] = (ward, fields, deleted)
    views: list[tuple[str, str, str, bytes, int]] = []
    for key in redo:
        base = bases.get(key)
        doc = _decode.decode(base[1]) if base is not None and base[1] is not None else {}
        deleted = apply_pending(doc, pending[key], bool(base[2]) if base is not None else False)
        ward = base[0] if base is not None else doc.get("ward_id")
        if not isinstance(ward, str):
            continue  # edits of a record this device never held: nothing to show
        views.append((key[0], key[1], ward, _json.encode(doc), int(deleted)))
    if views:
        await conn.executemany(
            """INSERT INTO records (collection, id, ward_id, view, view_deleted) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (collection, id) DO UPDATE SET view = excluded.view, view_deleted = excluded.view_deleted""",
            views,
        )
