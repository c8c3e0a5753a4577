"""Which records a minimal push answer may give as their ``seq`` alone (PROTOCOL.md 4,
``Prefer: return=minimal``; the rule in ``docs/WIRE.md``).

A record may, when the device can compute its state exactly without the server: the
state the server now holds is what :func:`schemas.compact.apply_own` makes of the
device's change set over the copy of the record the device holds. The server knows
that copy in two cases:

- the record did not exist before the change set: the copy is empty;
- the record stood wholly as this device's own edits made it (every stamp of its
  fields, set elements and tombstone names the device, ``state.state_made_by``): the
  device learned each of those states from the answers to its own pushes, so its copy
  is that state. (The same fact lets a pull leave such records out, ``own=skip``.)

Anything else (another device's field or set element, a server re-stamp for clock
skew, a conflict resolution, a lost ``first`` or ``rank`` edit, a delete) and the
record comes whole, so the device still learns every merge outcome that differs from
what it sent. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from schemas.compact import apply_own

from .state import RecordState, state_made_by

__all__ = ["computable"]

_sorted = msgspec.json.Encoder(order="sorted")


def computable(before: RecordState | None, after: RecordState, changes: Sequence[Mapping[str, Any]], node: str) -> bool:
    """Whether ``node`` computes ``after`` from ``changes`` (plain decoded JSON, as sent)
    over its copy of ``before`` (the record just before the change set; None: new)."""
    if after.deleted or not changes:
        return False
    if before is None:
        base: tuple[dict[str, Any], dict[str, str]] = ({}, {})
    elif before.deleted or not state_made_by(before, node):
        return False
    else:
        base = (before.fields, before.stamps)
    state = apply_own(base[0], base[1], changes)
    if state is None:
        return False
    fields, stamps = state
    return stamps == after.stamps and _sorted.encode(fields) == _sorted.encode(after.fields)
