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

from schemas import HLC

from ._localdb import chunks, fetch_all
from ._values import PendingRow, apply_rows

__all__ = ["DeviceClock", "Key", "WireRecord", "refresh_views", "upsert_pulled"]

Key = tuple[str, str]
_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()


class WireRecord(msgspec.Struct):
    """A record as pulled (PROTOCOL section 5); ``fields`` kept as raw JSON for the store."""

    collection: str
    id: str
    ward_id: str
    seq: int
    deleted: bool
    fields: msgspec.Raw
    stamps: dict[str, str]


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
        rows.append((r.collection, r.id, r.ward_id, r.seq, int(r.deleted), bytes(r.fields).decode(), _json.encode(r.stamps).decode()))
        if r.stamps:
            top = max(top, max(r.stamps.values()))
    await conn.executemany(_UPSERT, rows)
    clock.observe(top)


async def pending_keys(conn: aiosqlite.Connection, ids: Sequence[str]) -> list[Key]:
    """Which of these records have edits waiting in the outbox."""
    found: list[Key] = []
    for part in chunks(list(dict.fromkeys(ids))):
        marks = ",".join("?" * len(part))
        found += [(c, i) for c, i in await fetch_all(conn, f"SELECT DISTINCT collection, id FROM outbox WHERE id IN ({marks})", part)]
    return found


async def refresh_views(conn: aiosqlite.Connection, keys: Iterable[Key]) -> None:
    """Recompute the view of these records from their base and their pending edits.

    A record created on this device and never pulled disappears once it has no
    pending edit left (its creation was rejected)."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return
    ids = [i for _, i in wanted]
    bases: dict[Key, tuple[str, str | None, int]] = {}
    pending: dict[Key, list[PendingRow]] = {}
    for part in chunks(list(dict.fromkeys(ids))):
        marks = ",".join("?" * len(part))
        for c, i, ward, fields, deleted in await fetch_all(
            conn, f"SELECT collection, id, ward_id, fields, deleted FROM records WHERE id IN ({marks})", part
        ):
            bases[(c, i)] = (ward, fields, deleted)
        for c, i, *rest in await fetch_all(
            conn,
            f"SELECT collection, id, field, element, kind, value, present, ts FROM outbox WHERE id IN ({marks}) ORDER BY n",
            part,
        ):
            pending.setdefault((c, i), []).append(PendingRow(*rest))
    cleared: list[Key] = []
    gone: list[Key] = []
    views: list[tuple[str, str, str, str, int]] = []
    for key in wanted:
        rows = pending.get(key)
        base = bases.get(key)
        if not rows:
            if base is not None:
                (gone if base[1] is None else cleared).append(key)
            continue
        doc = _decode.decode(base[1]) if base is not None and base[1] is not None else {}
        deleted = apply_rows(doc, rows, bool(base[2]) if base is not None else False)
        ward = base[0] if base is not None else doc.get("ward_id")
        if not isinstance(ward, str):
            continue  # edits of a record this device never held: nothing to show
        views.append((key[0], key[1], ward, _json.encode(doc).decode(), int(deleted)))
    if cleared:
        await conn.executemany(
            "UPDATE records SET view = NULL, view_deleted = NULL WHERE collection = ? AND id = ? AND view IS NOT NULL", cleared
        )
    if gone:
        await conn.executemany("DELETE FROM records WHERE collection = ? AND id = ? AND fields IS NULL", gone)
    if views:
        await conn.executemany(
            """INSERT INTO records (collection, id, ward_id, view, view_deleted) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (collection, id) DO UPDATE SET view = excluded.view, view_deleted = excluded.view_deleted""",
            views,
        )
