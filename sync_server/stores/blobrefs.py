"""Which blobs a record names: derived as the record is written, like report facts.

A record names a blob while the blob's id is a present element of one of its
blob fields (``schemas.BLOB_FIELDS``: the ``photos`` of checks and violations),
whether the record is tombstoned or not: a deleted record is still pulled with
its fields, and an edit may bring it back, so its photos stay readable by whoever
may see it (and stay in the missing list until uploaded). Removing a photo from
the set withdraws that record's claim on it; the server keeps the bytes anyway
(evidence is never deleted by the server).

Each store keeps ``(blob id, ward, collection, record id)`` rows, rewritten with
the record in the same transaction (``sqlite/_blobs.py``, ``postgres/_blobs.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from schemas import BLOB_FIELDS, BLOB_ID_PATTERN

from ..engine.state import RecordState

__all__ = ["BLOB_COLLECTIONS", "RefRow", "refs"]

#: collections whose records may name blobs
BLOB_COLLECTIONS = tuple(sorted(BLOB_FIELDS))
_BLOB_ID = re.compile(BLOB_ID_PATTERN)

#: (blob id, ward id, collection, record id)
RefRow = tuple[str, str, str, str]


def refs(states: Iterable[RecordState]) -> Iterator[tuple[RecordState, list[RefRow]]]:
    """For each record that has (or had) blob elements: the rows of the blobs it names now.

    Records whose blob fields never held an element are skipped: they name nothing
    and never did, so no row of theirs needs rewriting. Elements that are not blob
    ids (stored before ``photos`` was typed) name nothing."""
    for state in states:
        names = BLOB_FIELDS.get(state.collection)
        if not names:
            continue
        fields = [state.sets.get(name) for name in names]
        if not any(fields):
            continue
        named = sorted({e for elements in fields if elements for e, (_, present) in elements.items() if present and _BLOB_ID.fullmatch(e)})
        yield state, [(blob_id, state.ward_id, state.collection, state.id) for blob_id in named]
