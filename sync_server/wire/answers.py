"""The shape of push and pull answers as each client asked for them.

The writer stores one canonical push answer (JSON, full stamps, each record once), so
that a retry gets the same answer whatever it asks; the store keeps each record's
pulled document ready-made. What a client asked for is applied here, on the way out:

- ``Prefer: return=minimal`` (push): a record that stands exactly as the device's own
  changes made it (``schemas.compact.own_state``) comes back as its ``seq`` alone; a
  record the merge changed in any way (a conflict lost, a re-stamp, another device's
  field or set element, a tombstone) still comes whole. Since the decision is taken
  from the stored answer and the resent body, a retry gets the same minimal answer.
- ``stamps=compact`` (push and pull): one ``stamp`` per record, ``stamps`` only for the
  fields that differ (``schemas.compact``).
- MessagePack instead of JSON.

Compression is not done here: the HTTP layer compresses every answer (``app.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from schemas import Change, ChangeResult, CompactRecord, PulledRecord, PullResponse, PushResponse
from schemas.compact import compact_stamps, own_state

from . import codec
from .codec import DecodedPush

__all__ = ["pull_answer", "push_answer"]

_push = msgspec.json.Decoder(PushResponse[PulledRecord])
_record = msgspec.json.Decoder(PulledRecord)
_sorted = msgspec.json.Encoder(order="sorted")


def push_answer(stored: bytes, push: DecodedPush, *, minimal: bool, compact: bool, fmt: codec.Format) -> bytes:
    """The stored (canonical) answer of a push, shaped as the client asked."""
    if not (minimal or compact) and fmt == "json":
        return stored
    if not (minimal or compact):
        return codec.encode(msgspec.json.decode(stored), fmt)
    answer = _push.decode(stored)
    own = _own_changes(push) if minimal else {}
    results: list[ChangeResult[Any]] = []
    for result in answer.results:
        record: Any = None
        if (pulled := result.record) is not None:
            key = (pulled.collection, pulled.id)
            if not (minimal and _stands_as_sent(pulled, own.get(key, []))):
                record = _compact(pulled) if compact else pulled
        results.append(ChangeResult[Any](result.collection, result.id, result.status, result.seq, record, result.errors))
    shaped = PushResponse[Any](answer.changeset_id, answer.cursor, results, answer.conflicts, answer.warnings)
    return codec.encode(shaped, fmt)


def pull_answer(docs: Sequence[bytes], cursor: str, more: bool, *, compact: bool, fmt: codec.Format) -> bytes:
    """A pull page: the stored documents spliced in as they are, or re-encoded."""
    if compact:
        records: list[Any] = [_compact(_record.decode(doc)) for doc in docs]
        return codec.encode(PullResponse[Any](records=records, cursor=cursor, more=more), fmt)
    if fmt == "msgpack":
        plain: list[Any] = [msgspec.json.decode(doc) for doc in docs]
        return codec.encode(PullResponse[Any](records=plain, cursor=cursor, more=more), "msgpack")
    raw = [msgspec.Raw(doc) for doc in docs]
    return codec.encode(PullResponse[msgspec.Raw](records=raw, cursor=cursor, more=more))


def _compact(record: PulledRecord) -> CompactRecord:
    stamp, stamps = compact_stamps(record.fields, record.stamps)
    return CompactRecord(record.collection, record.id, record.ward_id, record.seq, record.deleted, record.fields, stamps, stamp)


def _own_changes(push: DecodedPush) -> dict[tuple[str, str], list[dict[str, Any]]]:
    own: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for change in push.changes:
        if isinstance(change, Change):
            own.setdefault((change.collection, change.id), []).append(msgspec.to_builtins(change))
    return own


def _stands_as_sent(record: PulledRecord, changes: list[dict[str, Any]]) -> bool:
    if record.deleted or not changes:
        return False
    state = own_state(changes)
    if state is None:
        return False
    fields, stamps = state
    return _sorted.encode(fields) == _sorted.encode(record.fields) and stamps == record.stamps
