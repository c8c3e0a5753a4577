"""Convergence: any order of the same change sets gives the same records.

Checked on the pure engine with many random examples, and end to end through two
real servers that receive the same change sets in different orders."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client_sdk._outbox import _out_change
from client_sdk._records import DeviceClock
from client_sdk._restore import Restore
from schemas import COLLECTIONS, HLC, AnyChange
from schemas.collections import Policy
from sync_server import identity
from sync_server.engine import Context, RecordState, apply_change
from sync_server.engine.state import encode_crdt
from sync_server.principal import Principal
from sync_server.settings import Settings
from sync_server.stores import store_for

from .conftest import start_server
from .helpers import make_world

T0 = 1_686_200_000_000
NOW = T0 + 10_000_000  # every generated stamp is within the clock-skew window
DEVICES = ["lamson-h01", "lamson-h02", "sup-laptop"]
USERS = {"lamson-h01": "u-ngoc", "lamson-h02": "u-hung", "sup-laptop": "u-minh"}
RECORDS = ["v1", "v2", "v3"]
SEED_TS = f"{T0:013d}-0000-lamson-h01"
ELEMENTS = ["sha256:" + c * 64 for c in "abc"]  # photos are blob ids


def _seed() -> tuple[str, list[dict[str, Any]]]:
    fields = {
        "ward_id": "lam-son",
        "created_by": "u-ngoc",
        "created_at": "2023-06-08T09:00:00+07:00",
        "check_id": "chk",
        "premises_id": "prem",
        "category": "fire_safety",
        "status": "open",
        "fine_vnd": 0,
    }
    changes = [
        {"collection": "violations", "id": r, "fields": {k: {"value": v, "ts": SEED_TS} for k, v in fields.items()}}
        for r in RECORDS
    ]
    return "lamson-h01", changes


@st.composite
def field_edits(draw: st.DrawFn, node: str, clock: list[int]) -> dict[str, Any]:
    def ts() -> str:
        clock[0] += 1
        return f"{draw(st.integers(T0 + 1, T0 + 50)):013d}-{clock[0] % 65536:04x}-{node}"

    base = draw(st.sampled_from([None, SEED_TS]))
    out: dict[str, Any] = {}
    for name in draw(st.sets(st.sampled_from(["fine_vnd", "description", "status", "check_id", "photos", "category"]), min_size=1)):
        if name == "fine_vnd":
            out[name] = {"value": draw(st.integers(0, 3)), "ts": ts(), "base": base}
        elif name == "description":
            out[name] = {"value": draw(st.sampled_from(["Nhà trọ", "Karaoke", None])), "ts": ts(), "base": base}
        elif name == "status":
            out[name] = {"value": draw(st.sampled_from(["open", "notified", "fined", "resolved", "dismissed"])), "ts": ts(), "base": base}
        elif name == "check_id":
            out[name] = {"value": draw(st.sampled_from(["chk", "chk-2"])), "ts": ts(), "base": base}
        elif name == "category":
            out[name] = {"value": draw(st.sampled_from(["fire_safety", "drugs"])), "ts": ts(), "base": base}
        else:
            add = draw(st.sets(st.sampled_from(ELEMENTS)))
            remove = draw(st.sets(st.sampled_from(ELEMENTS))) - add
            out[name] = {"add": sorted(add), "remove": sorted(remove), "ts": ts(), "base": base}
    return out


@st.composite
def changesets(draw: st.DrawFn) -> list[tuple[str, list[dict[str, Any]]]]:
    clock = [0]
    result = []
    for _ in range(draw(st.integers(1, 6))):
        node = draw(st.sampled_from(DEVICES))
        changes = []
        for _ in range(draw(st.integers(1, 4))):
            record = draw(st.sampled_from(RECORDS))
            change: dict[str, Any] = {"collection": "violations", "id": record}
            change["fields"] = draw(field_edits(node, clock))
            if draw(st.integers(0, 4)) == 0:
                clock[0] += 1
                change["delete"] = {"ts": f"{draw(st.integers(T0 + 1, T0 + 50)):013d}-{clock[0]:04x}-{node}", "base": SEED_TS}
            changes.append(change)
        result.append((node, changes))
    return result


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


@settings(max_examples=400, deadline=None)
@given(changesets(), st.randoms(use_true_random=False))
def test_the_engine_converges_whatever_the_arrival_order(sets: list[tuple[str, list[dict[str, Any]]]], rng: Any) -> None:
    seed = _seed()
    shuffled = list(sets)
    rng.shuffle(shuffled)
    assert _apply_all([seed, *sets]) == _apply_all([seed, *shuffled])
    assert _apply_all([seed, *sets]) == _apply_all([seed, *reversed(sets)])


@settings(max_examples=300, deadline=None)
@given(changesets(), st.integers(0, 6))
def test_a_server_restored_to_any_prefix_gets_the_whole_history_back_from_a_device(
    sets: list[tuple[str, list[dict[str, Any]]]], cut: int
) -> None:
    """What the SDKs send back after a restore (``client_sdk/_restore.py``), each device
    its own edits, merged by the server's engine, ends where the history would have
    without the restore: every field
    as it was, every delete, and every set element (removals are not sent back: a set
    may keep an element removed after the backup)."""
    seed = _seed()
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
    for device, raw in sent_back:
        principal = Principal(user_id=USERS[device], device_id=device, role="admin", wards=frozenset({"lam-son"}))
        ctx = Context(principal=principal, hlc=hlc, now_ms=NOW, node=device)  # the server's check of stamp nodes
        change = msgspec.convert(raw, AnyChange)
        key = (change.collection, change.id)
        outcome = apply_change(server.get(key), change, ctx)
        assert outcome.state is not None, outcome.errors  # never refused
        if outcome.state is not None and outcome.changed:
            server[key] = outcome.state
    sets_fields = {name for name, f in COLLECTIONS["violations"].fields.items() if f.policy is Policy.SET}
    for key, held in whole.items():
        after = server.get(key)
        if held.deleted:
            assert after is None or after.deleted
            continue
        assert after is not None and not after.deleted
        assert {k: v for k, v in after.fields.items() if k not in sets_fields} == {k: v for k, v in held.fields.items() if k not in sets_fields}
        for name in sets_fields:
            assert set(held.fields.get(name) or []) <= set(after.fields.get(name) or [])


def test_repeating_a_changeset_changes_nothing() -> None:
    seed = _seed()
    edit = ("lamson-h02", [{"collection": "violations", "id": "v1", "fields": {"status": {"value": "fined", "ts": f"{T0 + 5:013d}-0000-lamson-h02"}}}])
    assert _apply_all([seed, edit]) == _apply_all([seed, edit, edit, seed])


# -- end to end ------------------------------------------------------------------


async def _server_state(url: str, ordered: list[tuple[str, list[dict[str, Any]]]]) -> list[Any]:
    store = store_for(url)
    await store.open()
    token = await identity.bootstrap(store)
    await store.close()
    server = await start_server(Settings(db_url=url, max_clock_skew_ms=10**13))
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
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changesets(), st.randoms(use_true_random=False))
def test_two_servers_fed_in_different_orders_hold_the_same_records(
    new_db_url: Callable[[], str], sets: list[tuple[str, list[dict[str, Any]]]], rng: Any
) -> None:
    seed = _seed()
    shuffled = list(sets)
    rng.shuffle(shuffled)

    async def both() -> tuple[list[Any], list[Any]]:
        first = await _server_state(new_db_url(), [seed, *sets])
        second = await _server_state(new_db_url(), [seed, *shuffled])
        return first, second

    first, second = asyncio.run(both())
    assert first == second
    assert len(first) == len(RECORDS)
