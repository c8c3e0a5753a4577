"""Smaller records on the wire, shared by the server and the SDK (PROTOCOL.md 4 and 5).

**Compact stamps** (``?stamps=compact``, negotiated: a client that does not ask gets
full stamps). Per-field stamps were about half of every push and pull body, and most
records were written in one edit, so every field carries the same stamp. A compact
record carries that stamp once, as ``stamp`` (the stamp most of its fields carry), and
``stamps`` holds only the fields whose stamp differs::

    {"id": "v1", ..., "fields": {"a": 1, "b": 2, "c": 3},
     "stamp": "1686200000123-0000-h03", "stamps": {"c": "1686200000999-0000-h01"}}

:func:`expand_stamps` gives back the full map exactly (``compact`` then ``expand`` is
the identity); a record whose stamps name a field it lacks, or lack one it has, is
left in full form (no ``stamp``), which :func:`expand_stamps` passes through.

**Own state** (``Prefer: return=minimal`` on a push): :func:`own_state` is what a
record would be if only the device's changes of one change set had ever touched it.
When the server's record is exactly that, the device already holds it and the
answer carries its ``seq`` alone; the SDK rebuilds the record with the same function.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["apply_own", "compact_stamps", "expand_stamps", "own_state"]


def compact_stamps(fields: Mapping[str, Any], stamps: Mapping[str, str]) -> tuple[str | None, dict[str, str]]:
    """``(stamp, differing)``; ``stamp`` None means "keep the full map" (``differing`` is it)."""
    if not stamps or stamps.keys() != fields.keys():
        return None, dict(stamps)
    # the most common stamp; ties go to the highest, so equal inputs give equal bytes
    counts = Counter(stamps.values())
    common = max(counts.items(), key=lambda item: (item[1], item[0]))[0]
    return common, {name: ts for name, ts in stamps.items() if ts != common}


def expand_stamps(fields: Iterable[str], stamp: str | None, stamps: Mapping[str, str]) -> dict[str, str]:
    """The full stamp map of a record received in either form."""
    if stamp is None:
        return dict(stamps)
    return {name: stamps.get(name, stamp) for name in fields}


def own_state(changes: Iterable[Mapping[str, Any]]) -> tuple[dict[str, Any], dict[str, str]] | None:
    """Fields and stamps a record would hold had only these changes (plain decoded
    JSON, in the order sent) ever touched it; None when they delete it (a tombstone is
    never assumed: deleted records come whole)."""
    return apply_own({}, {}, changes)


def apply_own(
    fields: Mapping[str, Any], stamps: Mapping[str, str], changes: Iterable[Mapping[str, Any]]
) -> tuple[dict[str, Any], dict[str, str]] | None:
    """A record held as ``fields`` and ``stamps`` (the device's copy; empty for a record
    it makes) after one change set's changes, as the device computes it without the
    server: each field its latest edit unless the copy's stamp is later, each set its
    elements with the changes' adds and removes, stamped with the later of the copy's
    stamp and the changes'. None when the changes delete the record or edit a set with
    no element (the server's stamp for it is not the device's to guess).

    This is the rule ``Prefer: return=minimal`` rests on: the server answers a record
    as its ``seq`` alone only when its stored state is exactly this over the copy the
    device holds (``sync_server/engine/own.py``), and the SDK rebuilds it with it."""
    values: dict[str, tuple[Any, str]] = {}
    sets: dict[str, dict[str, tuple[str, bool]]] = {}
    for change in changes:
        if change.get("delete") is not None:
            return None
        for name, edit in (change.get("fields") or {}).items():
            ts = edit["ts"]
            if "value" in edit:
                if name not in values or values[name][1] <= ts:
                    values[name] = (edit["value"], ts)
                continue
            elements = sets.setdefault(name, {})
            for adds, key in ((True, "add"), (False, "remove")):
                for element in edit.get(key) or ():
                    if element not in elements or elements[element][0] <= ts:
                        elements[element] = (ts, adds)
    out_fields, out_stamps = dict(fields), dict(stamps)
    for name, (value, ts) in values.items():
        if name not in out_stamps or out_stamps[name] <= ts:
            out_fields[name], out_stamps[name] = value, ts
    for name, elements in sets.items():
        if not elements:
            return None
        held = set(out_fields.get(name) or ())
        for element, (_, there) in elements.items():
            if there:
                held.add(element)
            else:
                held.discard(element)
        out_fields[name] = sorted(held)
        out_stamps[name] = max(out_stamps.get(name, ""), max(ts for ts, _ in elements.values()))
    return out_fields, out_stamps
