"""After the server is restored from a backup: send back what it lost.

A server restored from a backup has forgotten every change committed after the
backup was taken, though the devices that pushed or pulled those changes still
hold them. The server's new epoch answers their next pull with 410; the SDK then
keeps what it had pulled (table ``restored``), pulls everything again, and compares
field by field. What the device held with a *newer stamp* than the restored server
has, and stamped by this device (the server takes no device's stamp from another:
each device sends back its own edits), is queued again with its original stamp and, as its base, the stamp the server
has now, so the server's merge takes it as a clean edit, not a conflict (but for an
earlier ``first`` value or a higher rank stamped earlier: those conflicted the first
time too, and are logged again):

- ``lww``: the value, when the device's stamp is higher;
- ``first``: the value, when the server lacks the field or holds a later-stamped one
  (the earliest stays, as it did before the restore). A record the backup
  does not hold at all comes back whole, created with its original stamps, by a
  device of its author (the server refuses ``created_by`` of another user, and
  rightly): a device holding such a record of another user leaves it to the
  author's devices and says so (warning ``restore_skipped``);
- ``rank``: the value, when its rank is higher, or equal with a higher stamp;
- ``set``: the elements the device held that the server lacks, added at the set's
  stamp. The wire carries one stamp per set, not one per element, so removals are
  not replayed (an element wrongly taken out would be lost; one wrongly kept is
  seen and removed again);
- a delete the server lost (the record is live there, and none of its ``lww`` or
  ``set`` fields is newer than the device had seen): deleted again, at a fresh stamp.

``tests/test_convergence.py`` checks with random histories on the server's own merge
engine that a server restored to any prefix of a history and sent back the device's
state of the whole history ends where it would have without the restore.

Several devices may send back the same change: the server applies an edit it
already has (same stamp, same value) as a no-op, so the first one wins and the
others cost a round trip. Nothing here guesses: the server's own merge decides,
as it did the first time. The comparison is made after the whole pull, never on a
partial one, and the ``restored`` rows are kept until then, so a sync cut short
resumes it at the next one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiosqlite
import msgspec

from schemas.collections import CollectionSpec, Policy
from schemas.order import wins
from schemas.stamps import stamp_node

from ._localdb import LocalDB, fetch_all, scalar
from ._outbox import save_pending
from ._records import DeviceClock, Key, refresh_views, stamps_of
from ._values import Pending, PendingDelete, PendingSet, PendingValue, decode_pending, spec_for

__all__ = ["Restore"]

_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder(dict[str, Any])
_BATCH = 1000

_COMPARE = """
SELECT l.collection, l.id, l.deleted, l.fields, l.stamps, r.seq, r.deleted, r.fields, r.stamps
  FROM restored l LEFT JOIN records r ON r.collection = l.collection AND r.id = l.id
 ORDER BY l.collection, l.id LIMIT ?
"""


class Restore:
    def __init__(self, db: LocalDB, clock: DeviceClock, user_id: str) -> None:
        self.db = db
        self.clock = clock
        self.user_id = user_id

    async def keep(self, conn: aiosqlite.Connection) -> None:
        """Keep what the device pulled, before forgetting it (inside the reset's transaction).

        A second 410 before the comparison keeps the first copy: it is what the
        device knew before any restore."""
        await conn.execute(
            """INSERT OR IGNORE INTO restored (collection, id, deleted, fields, stamps)
               SELECT collection, id, deleted, fields, stamps FROM records
                WHERE seq > 0 AND fields IS NOT NULL AND stamps IS NOT NULL"""
        )

    async def waiting(self) -> bool:
        async with self.db.transaction() as conn:
            return bool(await scalar(conn, "SELECT EXISTS (SELECT 1 FROM restored)"))

    async def requeue(self) -> tuple[int, int]:
        """Compare with the server's state as now pulled; queue what it lacks. Answers how
        many records had something to send back, and how many were left to their author."""
        queued = skipped = 0
        while True:
            async with self.db.transaction() as conn:
                rows = await fetch_all(conn, _COMPARE, (_BATCH,))
                if not rows:
                    return queued, skipped
                touched: list[Key] = []
                for collection, record_id, deleted, fields, stamps, seq, now_deleted, now_fields, now_stamps in rows:
                    held = _decode.decode(fields), stamps_of(stamps, fields), bool(deleted)
                    on_server = None if not seq else (_decode.decode(now_fields), stamps_of(now_stamps, now_fields), bool(now_deleted))
                    if on_server is None and not held[2] and held[0].get("created_by", self.user_id) != self.user_id:
                        skipped += 1
                        continue
                    lost = self._lost(spec_for(collection), *held, on_server)
                    if lost is not None:
                        await _merge_into_outbox(conn, collection, record_id, lost)
                        touched.append((collection, record_id))
                await conn.executemany("DELETE FROM restored WHERE collection = ? AND id = ?", [(r[0], r[1]) for r in rows])
                await refresh_views(conn, touched)
                queued += len(touched)

    def _lost(
        self,
        spec: CollectionSpec,
        fields: Mapping[str, Any],
        stamps: Mapping[str, str],
        deleted: bool,
        on_server: tuple[dict[str, Any], dict[str, str], bool] | None,
    ) -> Pending | None:
        """What the server lacks of this record as the device held it, as pending edits."""
        now_fields, now_stamps, now_deleted = on_server if on_server is not None else ({}, {}, False)
        pending = Pending()
        if deleted:
            if on_server is not None and not now_deleted and not self._edited_since(spec, stamps, now_stamps):
                pending.delete = PendingDelete(self.clock.now(), max(now_stamps.values(), default=None))
            return pending if pending.delete is not None else None
        node = self.clock.hlc.node
        own = [ts for ts in stamps.values() if stamp_node(ts) == node]
        for name, ts in stamps.items():
            field = spec.fields.get(name)
            if field is None or name not in fields:
                continue
            if stamp_node(ts) != node:
                # another device's edit is that device's to send back (the server refuses it
                # from here), but a record the server lacks cannot be made without its required
                # fields: the author sends the value it holds under its own earliest stamp on
                # the record, which the other device's own send-back (stamped later) overrides
                if on_server is not None or name not in spec.required or not own or fields.get("created_by") != self.user_id:
                    continue
                ts = min(own)
            base = now_stamps.get(name)
            value = fields[name]
            if field.policy is Policy.SET:  # by element: the set's stamp may be the server's and an add not
                missing = set(value or []) - set(now_fields.get(name) or [])
                if missing:
                    pending.sets[name] = PendingSet({element: (True, ts) for element in sorted(missing)}, base if base and base <= ts else None)
                continue
            if base is not None and not _wins(field.policy, field.rank, value, ts, now_fields.get(name), base):
                continue  # the server has this edit, or one that wins over it
            if base is not None and base > ts:
                base = None  # an earlier first value, a higher rank stamped earlier: concurrent, as it was
            pending.values[name] = PendingValue(msgspec.Raw(_json.encode(value)), ts, base)
        return pending if pending.values or pending.sets else None

    @staticmethod
    def _edited_since(spec: CollectionSpec, held: Mapping[str, str], now: Mapping[str, str]) -> bool:
        """Whether the server holds an edit newer than the device saw (fields whose stamps
        only grow: an earlier ``first`` value or a higher rank may carry an older stamp)."""
        growing = (Policy.LWW, Policy.SET)
        return any(ts > held.get(name, "") for name, ts in now.items() if name in spec.fields and spec.fields[name].policy in growing)


def _wins(policy: Policy, rank: Mapping[str, int] | None, value: Any, ts: str, now_value: Any, now_ts: str) -> bool:
    """Whether the held value would win over the server's in the server's merge (the
    same order, ties included: ``schemas/order.py``)."""
    return wins(policy, rank, ts, value, now_ts, now_value)


async def _merge_into_outbox(conn: aiosqlite.Connection, collection: str, record_id: str, lost: Pending) -> None:
    """Add what the server lost to the record's open outbox row; an edit made on the
    device since, stamped later, stays as it is."""
    row = await fetch_all(
        conn,
        "SELECT n, change FROM outbox WHERE collection = ? AND id = ? AND changeset_id IS NULL ORDER BY n DESC LIMIT 1",
        (collection, record_id),
    )
    if not row:
        await save_pending(conn, collection, record_id, None, lost)
        return
    n, change = row[0]
    pending = decode_pending(change)
    for name, value in lost.values.items():
        mine = pending.values.get(name)
        if mine is None or mine.ts < value.ts:
            pending.values[name] = value
    for name, elements in lost.sets.items():
        mine_set = pending.sets.setdefault(name, PendingSet({}, elements.base))
        for element, (present, ts) in elements.elements.items():
            if element not in mine_set.elements or mine_set.elements[element][1] < ts:
                mine_set.elements[element] = (present, ts)
    if lost.delete is not None and pending.delete is None:
        pending.delete = lost.delete
    await save_pending(conn, collection, record_id, n, pending)
