"""The shared protocol vectors (``schemas/vectors/*.json``) through the Python side.

The same files run in the handheld app's own code in Chromium
(``tests/app/test_vectors.py``): stamps and the HLC, each merge policy's outcome for
pairs of edits in both arrival orders (through the server's engine), and the replay
of a device's pending edits over a pulled record (through the SDK's outbox rules).
The expectations are written from PROTOCOL.md, not taken from either implementation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from client_sdk._outbox import _out_change
from client_sdk._values import Pending, Values, apply_pending
from schemas import HLC, AnyChange
from schemas.text import fold
from sync_server.engine import Context, RecordState, apply_change
from sync_server.principal import Principal

VECTORS = Path(__file__).parent.parent / "schemas" / "vectors"
NOW = 1_686_300_000_000


def load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _case_ids(cases: list[dict[str, Any]]) -> list[str]:
    return [c["name"] for c in cases]


def test_stamps_in_the_vectors_order_compare_as_plain_strings() -> None:
    order = load("stamps")["order"]
    assert sorted(order) == order and len(set(order)) == len(order)


@pytest.mark.parametrize("case", load("stamps")["hlc"], ids=_case_ids(load("stamps")["hlc"]))
def test_the_hlc_issues_the_stamps_of_the_vectors(case: dict[str, Any]) -> None:
    wall = [0]
    clock = HLC(case["node"], state=tuple(case["state"]), wall=lambda: wall[0])  # type: ignore[arg-type]
    for step in case["steps"]:
        if "observe" in step:
            clock.observe(step["observe"])
        else:
            wall[0] = step["wall"]
            assert clock.now() == step["now"]
    assert list(clock.state) == case["final"]


@pytest.mark.parametrize(("text", "folded"), load("stamps")["fold"])
def test_search_folds_text_as_the_vectors_say(text: str, folded: str) -> None:
    assert fold(text) == folded


def _merge(changes: list[dict[str, Any]]) -> RecordState | None:
    state: RecordState | None = None
    hlc = HLC("server", wall=lambda: NOW)
    for raw in changes:
        first = raw["fields"] if "fields" in raw else {}
        stamps = [e["ts"] for e in first.values()] + ([raw["delete"]["ts"]] if "delete" in raw else [])
        node = max(stamps)[19:]
        principal = Principal(user_id="u-ngoc", device_id=node, role="admin", wards=frozenset({"lam-son"}))
        outcome = apply_change(state, msgspec.convert(raw, AnyChange), Context(principal=principal, hlc=hlc, now_ms=NOW))
        assert outcome.state is not None, outcome.errors
        state = outcome.state
    return state


@pytest.mark.parametrize("case", load("merges")["cases"], ids=_case_ids(load("merges")["cases"]))
def test_the_engine_merges_each_pair_of_edits_as_the_vectors_say_in_either_order(case: dict[str, Any]) -> None:
    start = [case["start"]] if case["start"] else []
    a, b = case["edits"]
    expect = case["expect"]
    for order in ([a, b], [b, a]):
        state = _merge(start + order)
        assert state is not None
        assert {k: state.fields.get(k) for k in expect["fields"]} == expect["fields"]
        assert {k: state.stamps.get(k) for k in expect["stamps"]} == expect["stamps"]
        assert state.deleted is expect["deleted"]


def _values(step: dict[str, Any]) -> Values:
    return Values(
        values={k: json.dumps(v, ensure_ascii=False) for k, v in step.get("values", {}).items()},
        sets={k: dict(v) for k, v in step.get("sets", {}).items()},
    )


@pytest.mark.parametrize("case", load("replay")["cases"], ids=_case_ids(load("replay")["cases"]))
def test_the_sdk_stamps_coalesces_and_replays_pending_edits_as_the_vectors_say(case: dict[str, Any]) -> None:
    wall = [0]
    clock = HLC(case["node"], wall=lambda: wall[0])
    pulled = case["pulled"]
    for ts in (pulled or {}).get("stamps", {}).values():
        clock.observe(ts)
    pending = Pending()
    for step in case["steps"]:
        if "pull" in step:
            pulled = step["pull"]
            for ts in pulled["stamps"].values():
                clock.observe(ts)
            continue
        wall[0] = step["wall"]
        ts = clock.now()
        stamps = pulled["stamps"] if pulled else {}
        pending.add(_values(step), ts, stamps)
        if step.get("delete"):
            pending.delete_at(ts, stamps)
    change = json.loads(msgspec.json.encode(_out_change(case["collection"], case["id"], pending)))
    assert change == case["expect"]["change"]
    doc = dict(pulled["fields"]) if pulled else {}
    deleted = apply_pending(doc, [pending], pulled["deleted"] if pulled else False)
    assert doc == case["expect"]["view"]
    assert deleted is case["expect"]["deleted"]
