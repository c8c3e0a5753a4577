"""Convergence: any order of the same change sets gives the same records.

Checked on the pure engine with many random examples, and end to end through two
real servers that receive the same change sets in different orders."""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from client_sdk._outbox import _out_change
from client_sdk._records import DeviceClock
from client_sdk._restore import Restore
from schemas import COLLECTIONS, HLC, AnyChange
from schemas.collections import Policy
from sync_server.engine import Context, RecordState, apply_change
from sync_server.engine.state import encode_crdt
from sync_server.loopback import LoopbackServer
from sync_server.principal import Principal
from sync_server.services import identity
from sync_server.settings import Settings
from sync_server.stores import store_for

from .budget import budget
from .helpers import make_world

T0 = 1_686_200_000_000
NOW = T0 + 10_000_000  # every generated stamp is within the clock-skew window
DEVICES = ["lamson-h01", "lamson-h02", "sup-laptop"]
USERS = {"lamson-h01": "u-ngoc", "lamson-h02": "u-hung", "sup-laptop": "u-minh"}
SEEDED = ["v1", "v2"]  # created first by lamson-h01, at a stamp drawn like any other
CREATED = "v3"  # every change to it creates it (all required fields): any device, any order
RECORDS = [*SEEDED, CREATED]
ELEMENTS = ["sha256:" + c * 64 for c in "abc"]  # photos are blob ids
REQUIRED = {"ward_id": "lam-son", "check_id": "chk", "premises_id": "prem", "category": "fire_safety", "status": "open"}

History = tuple[tuple[str, list[dict[str, Any]]], list[tuple[str, list[dict[str, Any]]]]]


# The strategies are built once, not on every draw: building and validating a
# strategy object costs far more than drawing from it (most of this file's run time
# went there). What they draw is the same.


@functools.cache
def stamps(node: str) -> st.SearchStrategy[str]:
    """A small pool of stamps per device, so that two edits often share one (a device
    that reused a stamp) and an edit is often stamped before the record's creation."""
    return st.builds(lambda ms, counter: f"{T0 + ms:013d}-{counter:04x}-{node}", st.integers(0, 6), st.integers(0, 1))


@functools.cache
def _bases(seed_ts: str) -> st.SearchStrategy[str | None]:
    return st.sampled_from([None, seed_ts])


def _base(draw: st.DrawFn, ts: str, seed_ts: str) -> str | None:
    """The base a device could have sent: nothing, or the seed when it had seen it."""
    return draw(_bases(seed_ts)) if seed_ts <= ts else None


_NAMES = st.sets(st.sampled_from(["fine_vnd", "description", "status", "check_id", "premises_id", "photos", "category"]), min_size=1)
_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "fine_vnd": st.integers(0, 3),
    "description": st.sampled_from(["Nhà trọ", "Karaoke", None]),
    "status": st.sampled_from(["open", "notified", "fined", "resolved", "dismissed"]),
    "check_id": st.sampled_from([REQUIRED["check_id"], REQUIRED["check_id"] + "-2"]),  # write-once: edited early, late, by any device
    "premises_id": st.sampled_from([REQUIRED["premises_id"], REQUIRED["premises_id"] + "-2"]),
    "category": st.sampled_from(["fire_safety", "drugs"]),
}
_ELEMENT_SETS = st.sets(st.sampled_from(ELEMENTS))


@st.composite
def _field_edits(draw: st.DrawFn, node: str, seed_ts: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in draw(_NAMES):
        ts = draw(stamps(node))
        base = _base(draw, ts, seed_ts)
        if name in _VALUES:
            out[name] = {"value": draw(_VALUES[name]), "ts": ts, "base": base}
        else:
            add = draw(_ELEMENT_SETS)
            remove = draw(_ELEMENT_SETS) - add
            out[name] = {"add": sorted(add), "remove": sorted(remove), "ts": ts, "base": base}
    return out


@functools.cache
def field_edits(node: str, seed_ts: str) -> st.SearchStrategy[dict[str, Any]]:
    return _field_edits(node, seed_ts)


@st.composite
def _creations(draw: st.DrawFn, node: str) -> dict[str, Any]:
    """A change that carries every required field: it creates the record wherever it
    arrives first, and merges like any edit after that."""
    fields = draw(field_edits(node, "~"))
    for name, value in REQUIRED.items():
        fields.setdefault(name, {"value": value, "ts": draw(stamps(node)), "base": None})
    return {"collection": "violations", "id": CREATED, "fields": fields}


@functools.cache
def creations(node: str) -> st.SearchStrategy[dict[str, Any]]:
    return _creations(node)


_SETS_IN_HISTORY = st.integers(1, 6)
_DEVICE = st.sampled_from(DEVICES)
_CHANGES_IN_SET = st.integers(1, 4)
_RECORD = st.sampled_from(RECORDS)
_ONE_IN_FIVE = st.integers(0, 4)


@st.composite
def histories(draw: st.DrawFn) -> History:
    """A seed that creates the seeded records (first to arrive, not always lowest stamped),
    then change sets from any device: edits, deletes, and creations of ``CREATED``."""
    seed_ts = draw(stamps("lamson-h01"))
    seed_fields = {**REQUIRED, "created_by": "u-ngoc", "created_at": "2023-06-08T09:00:00+07:00", "fine_vnd": 0}
    seed = ("lamson-h01", [
        {"collection": "violations", "id": r, "fields": {k: {"value": v, "ts": seed_ts} for k, v in seed_fields.items()}}
        for r in SEEDED
    ])
    result = []
    for _ in range(draw(_SETS_IN_HISTORY)):
        node = draw(_DEVICE)
        changes = []
        for _ in range(draw(_CHANGES_IN_SET)):
            record = draw(_RECORD)
            if record == CREATED:
                changes.append(draw(creations(node)))
                continue
            change: dict[str, Any] = {"collection": "violations", "id": record, "fields": draw(field_edits(node, seed_ts))}
            if draw(_ONE_IN_FIVE) == 0:
                ts = draw(stamps(node))
                change["delete"] = {"ts": ts, "base": _base(draw, ts, seed_ts)}
            changes.append(change)
        result.append((node, changes))
    return seed, result


def _edit(node: str, record: str, ms: int, counter: int = 0, **values: Any) -> tuple[str, list[dict[str, Any]]]:
    ts = f"{T0 + ms:013d}-{counter:04x}-{node}"
    return node, [{"collection": "violations", "id": record, "fields": {k: {"value": v, "ts": ts} for k, v in values.items()}}]


_SEED = _edit("lamson-h01", "v1", 3, **REQUIRED, created_by="u-ngoc", created_at="2023-06-08T09:00:00+07:00", fine_vnd=0)
#: Fixed ties, tried on every run: one stamp, two values (lww, rank of equal rank, write-once),
#: the same write-once value stamped earlier, and a write-once value stamped before the creation.
TIES: list[History] = [
    (_SEED, [_edit("lamson-h02", "v1", 5, fine_vnd=1), _edit("lamson-h02", "v1", 5, fine_vnd=2)]),
    (_SEED, [_edit("lamson-h02", "v1", 5, status="resolved"), _edit("lamson-h02", "v1", 5, status="dismissed")]),
    (_SEED, [_edit("lamson-h02", "v1", 1, check_id="chk-a"), _edit("lamson-h02", "v1", 1, check_id="chk-b")]),
    (_SEED, [_edit("lamson-h02", "v1", 1, check_id="chk"), _edit("sup-laptop", "v1", 2, check_id="chk")]),
    (_SEED, [_edit("lamson-h02", "v1", 1, premises_id="prem-2"), _edit("sup-laptop", "v1", 2, premises_id="prem-3")]),
]


def _ts(ms: int, counter: int, node: str) -> str:
    return f"{T0 + ms:013d}-{counter:04x}-{node}"


def _created(fields: dict[str, tuple[Any, int, int]], node: str, record: str = CREATED, **edits: Any) -> dict[str, Any]:
    values = {k: {"value": v, "ts": _ts(ms, c, node)} for k, (v, ms, c) in fields.items()}
    return {"collection": "violations", "id": record, "fields": {**values, **edits}}


_SEED_FIELDS = {**REQUIRED, "created_by": "u-ngoc", "created_at": "2023-06-08T09:00:00+07:00", "fine_vnd": 0}
#: Found by hypothesis (the thorough profile, now and then): lamson-h01 and lamson-h02 both
#: create CREATED; h02's creation carries the earlier top stamp, so the author the server
#: fills in is h02's. Restored to the seed, when h01's send-back (its surviving fields only,
#: an earlier top stamp than its first creation had) re-creates the record first, its
#: author wins. Which send-back comes first follows set order: with PYTHONHASHSEED=2 this
#: example fails without the allowance for server-filled fields below.
TWO_CREATORS: History = (
    ("lamson-h01", [_created({k: (v, 0, 1) for k, v in _SEED_FIELDS.items()}, "lamson-h01", r) for r in SEEDED]),
    [
        ("lamson-h01", [_created({"fine_vnd": (0, 0, 0), "description": ("Nhà trọ", 0, 0), "status": ("open", 0, 0), "premises_id": ("prem", 0, 0),
                                  "check_id": ("chk", 0, 0), "category": ("drugs", 0, 0), "ward_id": ("lam-son", 1, 0)}, "lamson-h01",
                                 photos={"add": [], "remove": [], "ts": _ts(0, 0, "lamson-h01")}),
                        _created({"fine_vnd": (0, 0, 0)}, "lamson-h01", "v1")]),
        ("lamson-h01", [_created({"fine_vnd": (1, 0, 0), "status": ("open", 0, 0), "ward_id": ("lam-son", 0, 0), "check_id": ("chk", 0, 0),
                                  "premises_id": ("prem", 1, 0), "category": ("fire_safety", 0, 0)}, "lamson-h01"),
                        _created({"fine_vnd": (0, 0, 0)}, "lamson-h01", "v1")]),
        ("lamson-h02", [_created({"fine_vnd": (0, 0, 0), "ward_id": ("lam-son", 0, 0), "check_id": ("chk", 0, 0), "premises_id": ("prem", 0, 0),
                                  "category": ("fire_safety", 0, 0), "status": ("open", 0, 1)}, "lamson-h02")]),
    ],
)


def _states(ordered: list[tuple[str, list[dict[str, Any]]]], role: str = "officer") -> dict[tuple[str, str], RecordState]:
    states: dict[tuple[str, str], RecordState] = {}
    hlc = HLC("server", wall=lambda: NOW)
    for node, changes in ordered:
        principal = Principal(user_id=USERS[node], device_id=node, role=role, wards=frozenset({"lam-son"}))
        ctx = Context(principal=principal, hlc=hlc, now_ms=NOW)
        for raw in changes:
            change = msgspec.convert(raw, AnyChange)
            key = (change.collection, change.id)
            outcome = apply_change(states.get(key), change, ctx)
            if outcome.state is not None and outcome.changed:
                states[key] = outcome.state
    return states


def _apply_all(ordered: list[tuple[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    states = _states(ordered)
    return {
        key: (s.ward_id, s.fields, s.stamps, s.deleted, encode_crdt(s))
        for key, s in sorted(states.items())
    }


def _converges(history: History, rng: Any) -> None:
    seed, sets = history
    shuffled = list(sets)
    rng.shuffle(shuffled)
    whole = _apply_all([seed, *sets])
    assert whole == _apply_all([seed, *shuffled])
    assert whole == _apply_all([seed, *reversed(sets)])


@settings(max_examples=budget(200, 2_000), deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_the_engine_converges_whatever_the_arrival_order(history: History, rng: Any) -> None:
    _converges(history, rng)


@pytest.mark.parametrize("history", TIES, ids=["lww", "rank", "first", "first-same-value", "first-before-creation"])
def test_ties_and_early_write_once_edits_converge(history: History) -> None:
    _converges(history, random.Random(0))


@settings(max_examples=budget(150, 1_500), deadline=None)
@given(histories(), st.integers(0, 6))
@example(TIES[0], 1)
@example(TIES[1], 1)
@example(TIES[2], 1)
@example(TWO_CREATORS, 0)
def test_a_server_restored_to_any_prefix_gets_the_whole_history_back_from_a_device(history: History, cut: int) -> None:
    """What the SDKs send back after a restore (``client_sdk/_restore.py``), each device
    its own edits, merged by the server's engine, ends where the history would have without the restore: every field
    as it was, every delete, and every set element (removals are not sent back: a set
    may keep an element removed after the backup)."""
    seed, sets = history
    whole = _states([seed, *sets])  # what a device held when the server was restored
    server = _states([seed, *sets[: min(cut, len(sets))]])  # the backup
    sent_back: list[tuple[str, dict[str, Any]]] = []
    for device in DEVICES:  # each device sends back its own edits, and only those
        restore = Restore(None, DeviceClock(device, lambda: NOW), USERS[device])  # type: ignore[arg-type]
        for (collection, record_id), held in whole.items():
            now = server.get((collection, record_id))
            lost = restore._lost(COLLECTIONS[collection], held.fields, held.stamps, held.deleted, None if now is None else (now.fields, now.stamps, now.deleted))
            if lost is not None:
                sent_back.append((device, msgspec.json.decode(msgspec.json.encode(_out_change(collection, record_id, lost)))))  # as on the wire
    hlc = HLC("server", wall=lambda: NOW)
    # in any order: an edit to a record the backup lacks is refused until its author's
    # re-creation arrives (the device retries it), and is then applied
    waiting = sent_back
    while waiting:
        refused = []
        for device, raw in waiting:
            principal = Principal(user_id=USERS[device], device_id=device, role="admin", wards=frozenset({"lam-son"}))
            ctx = Context(principal=principal, hlc=hlc, now_ms=NOW, node=device)  # the server's check of stamp nodes
            change = msgspec.convert(raw, AnyChange)
            key = (change.collection, change.id)
            outcome = apply_change(server.get(key), change, ctx)
            if outcome.state is None:
                assert key not in server, outcome.errors  # refused only while the record is missing
                refused.append((device, raw))
            elif outcome.changed:
                server[key] = outcome.state
        assert len(refused) < len(waiting), [r for _, r in refused]  # each pass makes progress
        waiting = refused
    sets_fields = {name for name, f in COLLECTIONS["violations"].fields.items() if f.policy is Policy.SET}
    # A record two devices both created (the same id made twice: never with the SDK's or
    # the app's random ids) has the author and creation time the server filled in for the
    # earliest-stamped creation, stamped with that change's top stamp. After a restore the
    # device that re-creates it sends back only its own surviving fields, whose top stamp
    # may be earlier than its first change's was: the server-filled pair may then name
    # another of its creators. Every other field comes back as it was.
    creators = {node for node, changes in sets for change in changes if change["id"] == CREATED}
    filled = {"created_by", "created_at"} if len(creators) > 1 else set()
    for key, held in whole.items():
        after = server.get(key)
        if held.deleted:
            assert after is None or after.deleted
            continue
        assert after is not None and not after.deleted
        skip = sets_fields | (filled if key[1] == CREATED else set())
        assert {k: v for k, v in after.fields.items() if k not in skip} == {k: v for k, v in held.fields.items() if k not in skip}
        for name in sets_fields:
            assert set(held.fields.get(name) or []) <= set(after.fields.get(name) or [])


def test_repeating_a_changeset_changes_nothing() -> None:
    edit = _edit("lamson-h02", "v1", 5, status="fined")
    assert _apply_all([_SEED, edit]) == _apply_all([_SEED, edit, edit, _SEED])


# -- end to end ------------------------------------------------------------------


async def _server_state(url: str, ordered: list[tuple[str, list[dict[str, Any]]]]) -> list[Any]:
    store = store_for(url)
    await store.open()
    token = await identity.bootstrap(store)
    await store.close()
    server = LoopbackServer(Settings(db_url=url, max_clock_skew_ms=10**13))
    await server.start()
    world = await make_world(server.url, token)
    apis = {api.device_id: api for api in world.all()}
    try:
        for node, changes in ordered:
            await apis[node].push_ok(changes)
        records = await world.admin.pull_all()
        return sorted((r["id"], r["ward_id"], r["deleted"], r["fields"], r["stamps"]) for r in records)
    finally:
        for api in world.all():
            await api.aclose()
        await server.stop()


@pytest.mark.slow
@settings(max_examples=budget(5, 25), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(histories(), st.randoms(use_true_random=False))
def test_two_servers_fed_in_different_orders_hold_the_same_records(new_db_url: Callable[[], str], history: History, rng: Any) -> None:
    seed, sets = history
    shuffled = list(sets)
    rng.shuffle(shuffled)

    async def both() -> tuple[list[Any], list[Any]]:
        first = await _server_state(new_db_url(), [seed, *sets])
        second = await _server_state(new_db_url(), [seed, *shuffled])
        return first, second

    first, second = asyncio.run(both())
    assert first == second
    assert len(first) >= len(SEEDED)
