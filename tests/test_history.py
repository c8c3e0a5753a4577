"""Record history (PROTOCOL.md section 6): every applied edit, oldest first; append-only."""

from __future__ import annotations

import sqlite3

import pytest

from .helpers import World, edit, stamp, violation

A, B = "lamson-h01", "lamson-h02"


async def test_history_lists_every_applied_edit_oldest_first(world: World) -> None:
    answer = await world.officer_a.push_ok([violation("v1", "lam-son", A, ms=1_686_200_000_000, fine_vnd=500_000)])
    base = answer["results"][0]["record"]["stamps"]
    await world.officer_b.push_ok([{"collection": "violations", "id": "v1", "fields": {"fine_vnd": edit(900_000, stamp(B, 1_686_300_000_000), base["fine_vnd"])}}])
    await world.officer_a.push_ok([{"collection": "violations", "id": "v1", "fields": {"status": edit("fined", stamp(A, 1_686_300_000_100), base["status"])}}])
    await world.officer_a.push_ok([{"collection": "violations", "id": "v1", "delete": {"ts": stamp(A, 1_686_300_000_200)}}])
    response = await world.supervisor.http.get("/v1/records/violations/v1/history")
    assert response.status_code == 200
    history = response.json()
    assert (history["collection"], history["id"], history["ward_id"]) == ("violations", "v1", "lam-son")
    edits = history["edits"]
    assert [(e["user_id"], e["device_id"]) for e in edits] == [("u-ngoc", A), ("u-hung", B), ("u-ngoc", A), ("u-ngoc", A)]
    assert edits[0]["changes"]["fine_vnd"] == {"old": None, "new": 500_000}
    assert edits[0]["changes"]["status"] == {"old": None, "new": "open"}
    assert edits[1]["changes"] == {"fine_vnd": {"old": 500_000, "new": 900_000}}
    assert edits[2]["changes"] == {"status": {"old": "open", "new": "fined"}}
    assert edits[3]["changes"] == {} and edits[3]["deleted"] == {"old": False, "new": True}
    assert [e["seq"] for e in edits] == sorted(e["seq"] for e in edits)
    assert all(e["at"] and e["changeset_id"] for e in edits)


async def test_an_edit_that_lost_every_field_is_not_in_the_history(world: World) -> None:
    answer = await world.officer_a.push_ok([violation("v1", "lam-son", A, ms=1_686_200_000_000, fine_vnd=1)])
    base = answer["results"][0]["record"]["stamps"]["fine_vnd"]
    await world.officer_b.push_ok([{"collection": "violations", "id": "v1", "fields": {"fine_vnd": edit(3, stamp(B, 1_686_300_000_500), base)}}])
    await world.officer_a.push_ok([{"collection": "violations", "id": "v1", "fields": {"fine_vnd": edit(2, stamp(A, 1_686_300_000_000), base)}}])
    edits = (await world.supervisor.http.get("/v1/records/violations/v1/history")).json()["edits"]
    assert len(edits) == 2


@pytest.mark.parametrize("path", ["/v1/records/violations/nope/history", "/v1/records/spaceships/x/history"])
async def test_unknown_records_are_404(world: World, path: str) -> None:
    assert (await world.supervisor.http.get(path)).status_code == 404


async def test_a_record_of_another_ward_is_404(world: World) -> None:
    await world.officer_c.push_ok([violation("v-ps", "phu-son", "phuson-h01")])
    await world.admin.http.post("/v1/admin/users", json={"id": "u-ls", "name": "Giám sát Lam Sơn", "role": "supervisor", "ward_ids": ["lam-son"]})
    token = (await world.admin.http.post("/v1/admin/devices", json={"device_id": "ls-laptop", "user_id": "u-ls"})).json()["token"]
    from .helpers import Api

    other = Api(world.base_url, token, "ls-laptop")
    try:
        assert (await other.http.get("/v1/records/violations/v-ps/history")).status_code == 404
    finally:
        await other.aclose()
    assert (await world.supervisor.http.get("/v1/records/violations/v-ps/history")).status_code == 200


async def test_officers_get_403_on_history(world: World) -> None:
    await world.officer_a.push_ok([violation("v1", "lam-son", A)])
    assert (await world.officer_a.http.get("/v1/records/violations/v1/history")).status_code == 403


async def test_the_edit_log_refuses_updates_and_deletes(world: World, db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("checked on SQLite here; the PostgreSQL store has its own test")
    await world.officer_a.push_ok([violation("v1", "lam-son", A)])
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE edits SET user_id = 'someone-else'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM edits")
        assert conn.execute("SELECT count(*) FROM edits").fetchone()[0] == 1
