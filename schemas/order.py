"""Which of two values of one field wins: the merge order of PROTOCOL.md section 3, decided once.

The server's engine (``sync_server/engine/merge.py``), the SDK's send-back after a
restore (``client_sdk/_restore.py``) and conflict resolution
(``sync_server/services/supervision.py``) all ask these functions, so a device and the server
can never disagree on a winner, not even on a tie.

| policy | the arriving value wins when                                           |
| ------ | ---------------------------------------------------------------------- |
| lww    | its stamp is higher; one stamp: its JSON encoding is higher            |
| first  | its stamp is lower; one stamp: its JSON encoding is lower              |
| rank   | its rank is higher; one rank: as lww                                   |
| set    | per element: its stamp is higher; one stamp: an add beats a remove     |
| delete | a record is deleted while its tombstone is above every field stamp     |

Two different values under one stamp only happen when a device reused a stamp (or
two server workers stamped in one millisecond); ordering them by their JSON
encoding (UTF-8 bytes, as PROTOCOL.md says) makes every arrival order end the same.
Pure functions, no I/O: values are JSON-like builtins as decoded from the wire.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from .collections import Policy

__all__ = ["above", "deleted", "element_wins", "first_wins", "lww_wins", "rank_wins", "wins"]

_encode = msgspec.json.encode


def above(ts: str, value: Any, other_ts: str, other: Any) -> bool:
    """Whether ``(ts, value)`` orders strictly above ``(other_ts, other)``: by stamp,
    then by the value's JSON encoding."""
    if ts != other_ts:
        return ts > other_ts
    return _encode(value) > _encode(other)


def lww_wins(ts: str, value: Any, cur_ts: str, cur: Any) -> bool:
    """``lww``: the later write replaces the stored one."""
    return above(ts, value, cur_ts, cur)


def first_wins(ts: str, value: Any, cur_ts: str, cur: Any) -> bool:
    """``first``: the earlier write replaces the stored one (a write-once field keeps
    the value with the earliest stamp, whatever order the edits arrive in)."""
    return above(cur_ts, cur, ts, value)


def rank_wins(rank: Mapping[str, int], ts: str, value: Any, cur_ts: str, cur: Any) -> bool:
    """``rank``: the higher rank replaces the stored one; equal ranks go as ``lww``.
    A value outside the ranking (never valid on the wire) ranks below every other."""
    new, now = rank.get(str(value), -1), rank.get(str(cur), -1)
    return new > now or (new == now and above(ts, value, cur_ts, cur))


def wins(policy: Policy, rank: Mapping[str, int] | None, ts: str, value: Any, cur_ts: str, cur: Any) -> bool:
    """Whether a value of a plain (not ``set``) field replaces the stored one."""
    if policy is Policy.FIRST:
        return first_wins(ts, value, cur_ts, cur)
    if policy is Policy.RANK:
        return rank_wins(rank or {}, ts, value, cur_ts, cur)
    if policy is Policy.SET:
        raise ValueError("a set field is merged element by element: use element_wins")
    return lww_wins(ts, value, cur_ts, cur)


def element_wins(ts: str, present: bool, cur_ts: str, cur_present: bool) -> bool:
    """``set``: one element's add or remove replaces the stored one when stamped
    later; under one stamp an add beats a remove."""
    return (ts, present) > (cur_ts, cur_present)


def deleted(tomb: str | None, stamps: Iterable[str]) -> bool:
    """A record is deleted while its tombstone's stamp is above every field stamp, so an
    edit stamped after the delete brings it back."""
    return tomb is not None and tomb > max(stamps, default="")
