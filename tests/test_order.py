"""One merge order (``schemas/order.py``): the SDK's send-back after a restore and the
server's engine agree on which value wins, ties included."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from client_sdk._restore import _wins
from schemas import COLLECTIONS, HLC, AnyChange, order
from schemas.collections import Policy
from sync_server.engine import Context, RecordState, apply_change
from sync_server.principal import Principal

from .budget import budget

T0 = 1_686_200_000_000
NODE = "lamson-h01"
SPEC = COLLECTIONS["violations"]
#: one field of each plain policy, with the values it may take
FIELDS = {
    "fine_vnd": [0, 1, 2_000_000],  # lww
    "description": [None, "Nhà trọ", "Karaoke"],  # lww
    "check_id": ["chk", "chk-2"],  # first
    "status": ["open", "notified", "fined", "resolved", "dismissed"],  # rank
}
_created = {"ward_id": "lam-son", "check_id": "chk", "premises_id": "prem", "category": "fire_safety", "status": "open", "fine_vnd": 0}


def _stamp(ms: int, counter: int = 0) -> str:
    return f"{T0 + ms:013d}-{counter:04x}-{NODE}"


def _server_keeps(name: str, cur: Any, cur_ts: str, value: Any, ts: str) -> Any:
    """What the engine holds after ``value`` stamped ``ts`` meets ``cur`` stamped ``cur_ts``."""
    fields = {**_created, "created_by": "u-ngoc", "created_at": "2023-06-08T09:00:00Z", name: cur}
    stamps = dict.fromkeys(fields, _stamp(0))
    stamps[name] = cur_ts
    state = RecordState("violations", "v1", "lam-son", fields, stamps)
    base = cur_ts if cur_ts <= ts else None  # as the SDK sends it back (client_sdk/_restore.py)
    change = msgspec.convert({"collection": "violations", "id": "v1", "fields": {name: {"value": value, "ts": ts, "base": base}}}, AnyChange)
    ctx = Context(Principal(user_id="u-ngoc", device_id=NODE, role="officer", wards=frozenset({"lam-son"})), HLC("server", wall=lambda: T0), T0)
    outcome = apply_change(state, change, ctx)
    assert outcome.state is not None, outcome.errors
    return outcome.state.fields[name], outcome.state.stamps[name]


@st.composite
def meetings(draw: st.DrawFn) -> tuple[str, Any, str, Any, str]:
    name = draw(st.sampled_from(sorted(FIELDS)))
    values = st.sampled_from(FIELDS[name])
    pool = st.builds(_stamp, st.integers(1, 3), st.integers(0, 1))  # small: stamps often equal
    return name, draw(values), draw(pool), draw(values), draw(pool)


@settings(max_examples=budget(500, 5_000), deadline=None)
@given(meetings())
@example(("fine_vnd", 1, _stamp(1), 2_000_000, _stamp(1)))
@example(("description", "Nhà trọ", _stamp(1), None, _stamp(1)))
@example(("check_id", "chk-2", _stamp(1), "chk", _stamp(1)))
@example(("status", "dismissed", _stamp(1), "resolved", _stamp(1)))
def test_the_sdk_sends_back_exactly_the_values_the_server_would_take(meeting: tuple[str, Any, str, Any, str]) -> None:
    name, cur, cur_ts, held, ts = meeting
    field = SPEC.fields[name]
    kept = _server_keeps(name, cur, cur_ts, held, ts)
    if held == cur:
        return  # nothing to decide (a same value only moves a write-once stamp)
    assert _wins(field.policy, field.rank, held, ts, cur, cur_ts) == (kept == (held, ts))


@pytest.mark.parametrize(
    ("policy", "cur", "value", "wins"),
    [
        ("lww", 1, 2, True),  # b"2" > b"1"
        ("lww", 2, 1, False),
        ("first", "chk-b", "chk-a", True),  # the lower encoding is the earlier write
        ("first", "chk-a", "chk-b", False),
        ("rank", "dismissed", "resolved", True),  # equal rank: as lww
        ("rank", "resolved", "dismissed", False),
    ],
)
def test_two_values_under_one_stamp_are_ordered_by_their_json_encoding(policy: str, cur: Any, value: Any, wins: bool) -> None:
    rank = SPEC.fields["status"].rank
    ts = _stamp(1)
    assert order.wins(Policy(policy), rank, ts, value, ts, cur) is wins


def test_under_one_stamp_an_add_beats_a_remove() -> None:
    assert order.element_wins(_stamp(1), True, _stamp(1), False)
    assert not order.element_wins(_stamp(1), False, _stamp(1), True)
    assert order.element_wins(_stamp(2), False, _stamp(1), True)


def test_a_record_is_deleted_only_while_its_tombstone_is_above_every_field_stamp() -> None:
    assert order.deleted(_stamp(2), [_stamp(1), _stamp(1, 1)])
    assert not order.deleted(_stamp(1), [_stamp(1)])
    assert not order.deleted(_stamp(1), [_stamp(0), _stamp(2)])  # an edit stamped after the delete
    assert not order.deleted(None, [])


def test_a_value_out_of_the_ranking_ranks_below_every_other_and_ties_with_its_like() -> None:
    rank = SPEC.fields["status"].rank or {}
    assert not order.rank_wins(rank, _stamp(2), "lost", _stamp(1), "open")
    assert order.rank_wins(rank, _stamp(1), "open", _stamp(2), "lost")
    assert order.rank_wins(rank, _stamp(2), "lost", _stamp(1), "gone")  # equal (no) rank: the later stamp
    assert not order.rank_wins(rank, _stamp(1), "lost", _stamp(2), "gone")


def test_a_set_field_is_not_decided_as_a_whole() -> None:
    with pytest.raises(ValueError, match="element by element"):
        order.wins(Policy.SET, None, _stamp(1), ["a"], _stamp(0), [])
