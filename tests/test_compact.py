"""Compact stamps and own states (``schemas/compact.py``), shared by server and SDK."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from schemas.compact import apply_own, compact_stamps, expand_stamps, own_state

_stamp = st.builds(lambda ms, c, node: f"{ms:013d}-{c:04x}-{node}", st.integers(0, 10**13 - 1), st.integers(0, 3), st.sampled_from(["h01", "h02", "server"]))
_names = st.lists(st.text("abcdefgh_", min_size=1, max_size=6), unique=True, max_size=8)


@given(_names.flatmap(lambda names: st.tuples(st.just(names), st.lists(_stamp, min_size=len(names), max_size=len(names)))))
def test_compact_stamps_expand_to_the_original_map(named: tuple[list[str], list[str]]) -> None:
    names, stamps = named
    fields = dict.fromkeys(names, 1)
    full = dict(zip(names, stamps, strict=True))
    stamp, differing = compact_stamps(fields, full)
    assert expand_stamps(fields, stamp, differing) == full
    if stamp is not None:
        assert all(ts != stamp for ts in differing.values())


@given(st.dictionaries(st.text("abc", min_size=1, max_size=3), _stamp, max_size=4), st.dictionaries(st.text("xyz", min_size=1, max_size=3), st.integers(), max_size=4))
def test_stamps_that_do_not_match_the_fields_stay_whole(stamps: dict[str, str], fields: dict[str, int]) -> None:
    stamp, differing = compact_stamps(fields, stamps)
    if stamps.keys() != fields.keys():
        assert stamp is None and differing == stamps
    assert expand_stamps(fields, stamp, differing) == stamps


def test_own_state_is_what_the_changes_alone_make() -> None:
    changes = [
        {"fields": {"name": {"value": "a", "ts": "1-0000-h"}, "tags": {"add": ["x", "y"], "remove": [], "ts": "1-0000-h"}}},
        {"fields": {"name": {"value": "b", "ts": "2-0000-h"}, "tags": {"add": [], "remove": ["x"], "ts": "2-0000-h"}}},
    ]
    assert own_state(changes) == ({"name": "b", "tags": ["y"]}, {"name": "2-0000-h", "tags": "2-0000-h"})
    assert own_state([{"delete": {"ts": "3-0000-h"}}]) is None


def test_apply_own_is_the_changes_over_the_copy_the_device_holds() -> None:
    copy = ({"name": "cũ", "rooms": 3, "tags": ["a", "b"]}, {"name": "1-0000-h", "rooms": "5-0000-h", "tags": "2-0000-h"})
    changes = [
        {"fields": {"name": {"value": "mới", "ts": "4-0000-h"}, "rooms": {"value": 9, "ts": "4-0000-h"}}},
        {"fields": {"tags": {"add": ["c"], "remove": ["a"], "ts": "4-0000-h"}}},
    ]
    assert apply_own(*copy, changes) == (
        {"name": "mới", "rooms": 3, "tags": ["b", "c"]},  # rooms: the copy's stamp is later
        {"name": "4-0000-h", "rooms": "5-0000-h", "tags": "4-0000-h"},
    )
    assert apply_own({}, {}, changes) == own_state(changes)
    assert apply_own(*copy, [{"fields": {}, "delete": {"ts": "6-0000-h"}}]) is None
