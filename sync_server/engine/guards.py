"""What a push may not do, whatever its stamps say (PROTOCOL.md sections 1 and 3).

The merge order (``merge.py``) trusts stamps; these guards are what keeps a hostile
device from abusing that trust, each decided here and nowhere else:

- **whose stamp**: every stamp a device pushes (a field's, a set edit's, a delete's)
  must name that device; only the server stamps ``server`` (a supervisor's
  resolution). Otherwise a device could pass its edit off as another device's or
  the server's, and conflict detection, which compares stamp nodes, would let it
  overwrite a supervisor's resolution without a conflict being logged;
- **how big**: a change that would grow a record past ``max_record_bytes`` encoded,
  or a ``set`` field past ``max_set_elements``, is refused on its own
  (``too_large``), so one device cannot make every answer and page that carries
  the record huge. A change that leaves a record no bigger than it was passes, so a
  record grown under an older limit can still be edited down;
- **which ward**: a field naming another record (a check's ``premises_id``, a
  violation's ``check_id``) may not name one the server holds in another ward.

The clock side (a stamp too far ahead, or earlier than the device's registration)
is in ``merge._restamp``: such stamps are not refused but replaced by the server's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from schemas import COLLECTIONS, Change, ErrorItem
from schemas.collections import Policy
from schemas.stamps import stamp_node

from .state import RecordState

__all__ = ["REFERENCES", "WardOf", "foreign_stamp", "reference_error", "size_error"]

#: a field naming another record -> the collection it names
REFERENCES: dict[str, str] = {"premises_id": "premises", "check_id": "checks"}
#: the ward of a record the server holds (None: it holds no such record yet)
WardOf = Callable[[tuple[str, str]], str | None]
_encode = msgspec.json.encode
#: what one field adds to the encoded record beyond its value: name, quotes, its stamp
_FIELD_OVERHEAD = 2 * (64 + 6) + 86


def foreign_stamp(change: Change, node: str) -> ErrorItem | None:
    """The first stamp of ``change`` that does not name ``node``, as an error."""
    for name, edit in change.edits():
        if stamp_node(edit.ts) != node:
            return ErrorItem(code="invalid", detail=f"stamp {edit.ts} names another node: stamp your own edits as {node}", field=name)
    if change.delete is not None and stamp_node(change.delete.ts) != node:
        return ErrorItem(code="invalid", detail=f"stamp {change.delete.ts} names another node: stamp your own edits as {node}", field=None)
    return None


def reference_error(collection: str, ward: str, values: Iterable[tuple[str, Any]], ward_of: WardOf | None) -> ErrorItem | None:
    """A reference to a record the server holds in another ward, as an error.

    The detail names neither that ward nor whether the record exists there beyond
    what the caller already sent."""
    if ward_of is None:
        return None
    for name, value in values:
        target = REFERENCES.get(name)
        if target is None or not isinstance(value, str):
            continue
        held = ward_of((target, value))
        if held is not None and held != ward:
            return ErrorItem(code="invalid", detail=f"{name} names a record of another ward", field=name)
    return None


def size_error(
    before: RecordState | None,
    after: RecordState,
    diff: dict[str, tuple[Any, Any]],
    max_bytes: int,
    max_elements: int,
) -> ErrorItem | None:
    """Whether the change that made ``after`` out of ``before`` grew it past a limit.

    The encoded size is kept on the state (``RecordState.size``) as an upper bound,
    grown by what each change adds, and measured exactly only when that bound
    passes the limit: most changes to most records cost no encoding here."""
    fields = COLLECTIONS[after.collection].fields
    for name in diff:
        if fields[name].policy is Policy.SET:
            count = len(after.fields.get(name) or ())
            had = len((before.fields.get(name) or ()) if before is not None else ())
            if count > max_elements and count > had:
                return ErrorItem(code="too_large", detail=f"{name} would hold {count} elements; the limit is {max_elements}", field=name)
    bound = -1
    if before is not None and before.size >= 0:
        bound = before.size + sum(len(_encode(new)) + _FIELD_OVERHEAD for _, new in diff.values())
    if bound < 0 or bound > max_bytes:
        bound = _size(after)  # no estimate, or too rough a one here: measure
    after.size = bound
    if bound <= max_bytes or (before is not None and bound <= _size(before)):
        return None  # within the limit, or no bigger than it was (a record over a newer, lower limit)
    return ErrorItem(code="too_large", detail=f"the record would be {bound} bytes encoded; the limit is {max_bytes}", field=None)


def _size(state: RecordState) -> int:
    return len(_encode(state.pulled()))
