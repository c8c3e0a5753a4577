"""Report projections follow every record change, in any order (and can be rebuilt)."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from .dataset import build
from .helpers import World, edit, stamp

A = "lamson-h01"


def _check(record_id: str, ts: str) -> dict[str, Any]:
    return {
        "collection": "checks",
        "id": record_id,
        "fields": {
            "ward_id": edit("lam-son", ts),
            "premises_id": edit("p1", ts),
            "kind": edit("fire_safety", ts),
            "started_at": edit("2023-06-10T09:00:00+07:00", ts),
        },
    }


def _violation(record_id: str, check_id: str, ts: str) -> dict[str, Any]:
    return {
        "collection": "violations",
        "id": record_id,
        "fields": {
            "ward_id": edit("lam-son", ts),
            "check_id": edit(check_id, ts),
            "premises_id": edit("p1", ts),
            "category": edit("fire_safety", ts),
            "status": edit("open", ts),
            "created_at": edit("2023-06-10T09:30:00+07:00", ts),
        },
    }


async def _rows(world: World) -> list[dict[str, Any]]:
    response = await world.supervisor.http.get("/v1/reports/checks", params={"group_by": "check_kind"})
    return response.json()["rows"]  # type: ignore[no-any-return]


async def test_a_check_that_arrives_after_its_violations_counts_them(world: World) -> None:
    await world.officer_a.push_ok([_violation("v1", "c1", stamp(A)), _violation("v2", "c1", stamp(A))])
    await world.officer_a.push_ok([_check("c1", stamp(A))])
    assert await _rows(world) == [{"key": "fire_safety", "key_name": "fire_safety", "checks": 1, "premises": 1, "violations": 2}]


async def test_deleting_or_moving_a_violation_updates_its_checks(world: World) -> None:
    await world.officer_a.push_ok([_check("c1", stamp(A)), _check("c2", stamp(A)), _violation("v1", "c1", stamp(A)), _violation("v2", "c1", stamp(A))])
    await world.officer_a.push_ok([{"collection": "violations", "id": "v2", "delete": {"ts": stamp(A)}}])
    assert (await _rows(world))[0]["violations"] == 1
    # check_id is write-once: an earlier-stamped value replaces it, and the count moves
    await world.officer_a.push_ok([{"collection": "violations", "id": "v1", "fields": {"check_id": edit("c2", stamp(A, 1_000_000_000_000))}}])
    report = (await world.supervisor.http.get("/v1/reports/checks", params={"group_by": "ward"})).json()["rows"]
    assert report == [{"key": "lam-son", "key_name": "Phường Lam Sơn", "checks": 2, "premises": 1, "violations": 1}]
    await world.officer_a.push_ok([{"collection": "violations", "id": "v2", "fields": {"status": edit("fined", stamp(A))}}])  # brought back
    assert (await _rows(world))[0]["violations"] == 2


async def test_a_deleted_check_leaves_the_reports_and_comes_back_with_an_edit(world: World) -> None:
    await world.officer_a.push_ok([_check("c1", stamp(A))])
    await world.officer_a.push_ok([{"collection": "checks", "id": "c1", "delete": {"ts": stamp(A)}}])
    assert await _rows(world) == []
    await world.officer_a.push_ok([{"collection": "checks", "id": "c1", "fields": {"kind": edit("residence", stamp(A))}}])
    assert await _rows(world) == [{"key": "residence", "key_name": "residence", "checks": 1, "premises": 1, "violations": 0}]


async def test_rebuilt_projections_answer_the_same_reports(world: World, db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("the rebuild is the SQLite store's migration step")
    await build(world)
    before = [(await world.supervisor.http.get("/v1/reports/checks", params={"group_by": g})).json() for g in ("ward", "officer", "premises_kind")]
    summary = (await world.supervisor.http.get("/v1/reports/summary")).json()
    from sync_server.stores.sqlite import _projections

    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        for table in ("p_premises", "p_checks", "p_violations", "p_tips", "p_patrols", "p_safety_groups", "p_fire_points", "p_targets"):
            conn.execute(f"DELETE FROM {table}")
        conn.execute("INSERT INTO premises_search (premises_search) VALUES ('delete-all')")
        _projections.rebuild(conn)
    after = [(await world.supervisor.http.get("/v1/reports/checks", params={"group_by": g})).json() for g in ("ward", "officer", "premises_kind")]
    assert after == before
    assert (await world.supervisor.http.get("/v1/reports/summary")).json() == summary
    hits = (await world.supervisor.http.get("/v1/search/premises", params={"q": "nha tro"})).json()["results"]
    assert hits
