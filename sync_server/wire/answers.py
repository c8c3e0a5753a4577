"""The shape of push and pull answers as each client asked for them.

The writer stores one canonical push answer (JSON, full stamps, each record once), so
that a retry gets the same answer whatever it asks; the store keeps each record's
pulled document ready-made. What a client asked for is applied here, on the way out:

- ``Prefer: return=minimal`` (push): a record the device computes itself from its
  change set over the copy it holds (``engine.own``) comes back as its ``seq`` alone;
  a record the merge changed in any way (a conflict lost, a re-stamp, another device's
  field or set element, a tombstone) still comes whole. The writer decides, since it
  alone sees each record just before the change set, and keeps the decision with the
  stored answer (:func:`with_own`), so a retry gets the same minimal answer. A push
  that did not ask keeps none: its retries answer whole, whatever they ask.
- ``stamps=compact`` (push and pull): one ``stamp`` per record, ``stamps`` only for the
  fields that differ (``schemas.compact``).
- MessagePack instead of JSON.

Compression is not done here: the HTTP layer compresses every answer (``app.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from schemas import ChangeResult, CompactRecord, Conflict, ErrorItem, PulledRecord, PullResponse, PushResponse, Warning
from schemas.compact import compact_stamps

from . import codec

__all__ = ["pull_answer", "push_answer", "split_stored", "with_own"]


class _StoredResult(msgspec.Struct):
    """A stored answer's result with its record left as JSON (empty: no record), so that
    only the records an answer keeps are decoded. (Not ``ChangeResult[msgspec.Raw]``:
    msgspec decodes no ``Raw | None``.)"""

    collection: str | None
    id: str | None
    status: Literal["applied", "rejected"]
    seq: int | None = None
    record: msgspec.Raw = msgspec.Raw()
    errors: list[ErrorItem] = []


class _StoredPush(msgspec.Struct):
    changeset_id: str
    cursor: str
    results: list[_StoredResult]
    conflicts: list[Conflict] = []
    warnings: list[Warning] = []


_push = msgspec.json.Decoder(_StoredPush)
_record = msgspec.json.Decoder(PulledRecord)
_indices = msgspec.json.Decoder(list[int])


def with_own(answer: bytes, own: list[int]) -> bytes:
    """A stored answer with the results whose record the device computes itself: after
    the answer's JSON (which never holds a raw newline) and a newline, as a JSON list."""
    return answer + b"\n" + codec.encode(own)


def split_stored(stored: bytes) -> tuple[bytes, frozenset[int] | None]:
    """A stored answer's JSON, and the results noted by :func:`with_own` (None: none noted)."""
    answer, newline, own = stored.partition(b"\n")
    return answer, (frozenset(_indices.decode(own)) if newline else None)


def push_answer(stored: bytes, *, own: frozenset[int] | None, minimal: bool, compact: bool, fmt: codec.Format) -> bytes:
    """The stored (canonical) answer of a push, shaped as the client asked; ``own``: the
    results a minimal answer gives as ``seq`` alone (``split_stored``)."""
    minimal = minimal and bool(own)
    if not (minimal or compact) and fmt == "json":
        return stored
    if not (minimal or compact):
        return codec.encode(msgspec.json.decode(stored), fmt)
    answer = _push.decode(stored)  # (records left as JSON: only those that stay are decoded)
    results: list[ChangeResult[Any]] = []
    for n, result in enumerate(answer.results):
        record: Any = None
        if (raw := result.record) and not (minimal and own is not None and n in own):
            if compact:
                record = _compact(_record.decode(raw))
            else:  # (MessagePack cannot splice JSON in)
                record = raw if fmt == "json" else _record.decode(raw)
        results.append(ChangeResult(result.collection, result.id, result.status, result.seq, record, result.errors))
    shaped = PushResponse(answer.changeset_id, answer.cursor, results, answer.conflicts, answer.warnings)
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
