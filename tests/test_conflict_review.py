"""Conflict review (PROTOCOL.md section 6): list, filter, resolve; a resolution is a
server-stamped edit every device pulls."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import Api, World, edit, stamp, violation

PROBLEM = "application/problem+json"
A, B = "lamson-h01", "lamson-h02"


async def _fine_conflict(world: World, record_id: str = "v1") -> dict[str, Any]:
    """Two officers change one fine concurrently; B's later stamp wins."""
    answer = await world.officer_a.push_ok([violation(record_id, "lam-son", A, ms=1_686_200_000_000, fine_vnd=500_000)])
    base = answer["results"][0]["record"]["stamps"]["fine_vnd"]
    await world.officer_b.push_ok([{"collection": "violations", "id": record_id, "fields": {"fine_vnd": edit(2_000_000, stamp(B, 1_686_300_000_500), base)}}])
    answer = await world.officer_a.push_ok([{"collection": "violations", "id": record_id, "fields": {"fine_vnd": edit(1_000_000, stamp(A, 1_686_300_000_000), base)}}])
    (conflict,) = answer["conflicts"]
    return conflict  # type: ignore[no-any-return]


async def _record(api: Api, record_id: str) -> dict[str, Any]:
    return next(r for r in await api.pull_all() if r["id"] == record_id)


async def test_conflicts_are_listed_for_the_supervisor(world: World) -> None:
    conflict = await _fine_conflict(world)
    listing = (await world.supervisor.http.get("/v1/conflicts")).json()
    assert [c["id"] for c in listing["conflicts"]] == [conflict["id"]]
    (listed,) = listing["conflicts"]
    assert listed["status"] == "open" and listed["kind"] == "concurrent_edit" and listed["field"] == "fine_vnd"
    assert listed["user_id"] == "u-ngoc" and listed["device_id"] == A
    assert listing["next"] is None


@pytest.mark.parametrize(
    ("params", "count"),
    [({"status": "open"}, 1), ({"status": "resolved"}, 0), ({"collection": "violations"}, 1), ({"collection": "checks"}, 0), ({"ward": "phu-son"}, 0), ({"ward": "lam-son"}, 1)],
)
async def test_conflicts_are_filtered(world: World, params: dict[str, str], count: int) -> None:
    await _fine_conflict(world)
    response = await world.supervisor.http.get("/v1/conflicts", params=params)
    assert response.status_code == 200
    assert len(response.json()["conflicts"]) == count


async def test_conflicts_come_in_pages(world: World) -> None:
    ids = [(await _fine_conflict(world, f"v{i}"))["id"] for i in range(3)]
    seen, after = [], None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if after:
            params["after"] = after
        page = (await world.supervisor.http.get("/v1/conflicts", params=params)).json()
        seen += [c["id"] for c in page["conflicts"]]
        after = page["next"]
        if after is None:
            break
    assert seen == ids


async def test_resolving_with_the_other_value_is_an_edit_that_reaches_every_device(world: World) -> None:
    conflict = await _fine_conflict(world)
    assert (await _record(world.officer_a, "v1"))["fields"]["fine_vnd"] == 2_000_000
    response = await world.supervisor.http.post(f"/v1/conflicts/{conflict['id']}/resolve", json={"choice": "other"})
    assert response.status_code == 200, response.text
    resolved = response.json()
    assert resolved["status"] == "resolved" and resolved["resolved_by"] == "u-minh" and resolved["resolved_at"]
    assert resolved["resolution"]["choice"] == "other"
    # a second device pulls the resolution, stamped by the server
    record = await _record(world.officer_b, "v1")
    assert record["fields"]["fine_vnd"] == 1_000_000
    assert record["stamps"]["fine_vnd"].endswith("-server")
    assert (await world.supervisor.http.get("/v1/conflicts", params={"status": "open"})).json()["conflicts"] == []


async def test_resolving_with_a_value_sets_it(world: World) -> None:
    conflict = await _fine_conflict(world)
    response = await world.supervisor.http.post(f"/v1/conflicts/{conflict['id']}/resolve", json={"choice": "value", "value": 1_200_000})
    assert response.status_code == 200
    assert (await _record(world.officer_a, "v1"))["fields"]["fine_vnd"] == 1_200_000


async def test_keeping_the_stored_value_restamps_it(world: World) -> None:
    conflict = await _fine_conflict(world)
    response = await world.supervisor.http.post(f"/v1/conflicts/{conflict['id']}/resolve", json={"choice": "kept"})
    assert response.status_code == 200
    record = await _record(world.officer_a, "v1")
    assert record["fields"]["fine_vnd"] == 2_000_000 and record["stamps"]["fine_vnd"].endswith("-server")


async def test_a_resolution_shows_in_the_records_history(world: World) -> None:
    conflict = await _fine_conflict(world)
    await world.supervisor.http.post(f"/v1/conflicts/{conflict['id']}/resolve", json={"choice": "other"})
    history = (await world.supervisor.http.get("/v1/records/violations/v1/history")).json()
    last = history["edits"][-1]
    assert (last["user_id"], last["device_id"]) == ("u-minh", "sup-laptop")
    assert last["changes"] == {"fine_vnd": {"old": 2_000_000, "new": 1_000_000}}
    assert last["changeset_id"].startswith("resolve-")


async def test_a_value_of_the_wrong_type_is_422_and_resolves_nothing(world: World) -> None:
    conflict = await _fine_conflict(world)
    response = await world.supervisor.http.post(f"/v1/conflicts/{conflict['id']}/resolve", json={"choice": "value", "value": "a lot"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    assert (await world.supervisor.http.get("/v1/conflicts", params={"status": "open"})).json()["conflicts"]


async def test_a_resolved_conflict_cannot_be_resolved_again(world: World) -> None:
    conflict = await _fine_conflict(world)
    assert (await world.supervisor.http.post(f"/v1/conflicts/{conflict['id']}/resolve", json={"choice": "kept"})).status_code == 200
    again = await world.supervisor.http.post(f"/v1/conflicts/{conflict['id']}/resolve", json={"choice": "other"})
    assert again.status_code == 409


async def test_a_ranked_field_cannot_be_resolved_backwards(world: World) -> None:
    answer = await world.officer_a.push_ok([violation("v1", "lam-son", A, ms=1_686_200_000_000)])
    base = answer["results"][0]["record"]["stamps"]["status"]
    await world.officer_a.push_ok([{"collection": "violations", "id": "v1", "fields": {"status": edit("fined", stamp(A, 1_686_300_000_000), base)}}])
    answer = await world.officer_b.push_ok([{"collection": "violations", "id": "v1", "fields": {"status": edit("notified", stamp(B, 1_686_300_000_100), base)}}])
    (conflict,) = answer["conflicts"]
    response = await world.supervisor.http.post(f"/v1/conflicts/{conflict['id']}/resolve", json={"choice": "other"})
    assert response.status_code == 422 and "only moves forward" in response.json()["detail"]
    forward = await world.supervisor.http.post(f"/v1/conflicts/{conflict['id']}/resolve", json={"choice": "value", "value": "resolved"})
    assert forward.status_code == 200
    assert (await _record(world.officer_b, "v1"))["fields"]["status"] == "resolved"


async def test_undoing_a_delete_brings_the_record_back(world: World) -> None:
    answer = await world.officer_a.push_ok([violation("v1", "lam-son", A, ms=1_686_200_000_000)])
    top = max(answer["results"][0]["record"]["stamps"].values())
    await world.officer_b.push_ok([{"collection": "violations", "id": "v1", "fields": {"description": edit("ghi chú", stamp(B, 1_686_300_000_000))}}])
    answer = await world.officer_a.push_ok([{"collection": "violations", "id": "v1", "delete": {"ts": stamp(A, 1_686_300_000_900), "base": top}}])
    (conflict,) = answer["conflicts"]
    assert conflict["kind"] == "delete" and (await _record(world.officer_b, "v1"))["deleted"] is True
    response = await world.supervisor.http.post(f"/v1/conflicts/{conflict['id']}/resolve", json={"choice": "other"})
    assert response.status_code == 200, response.text
    record = await _record(world.officer_b, "v1")
    assert record["deleted"] is False and record["fields"]["description"] == "ghi chú"


async def test_unknown_and_out_of_scope_conflicts_are_404(world: World) -> None:
    assert (await world.supervisor.http.post("/v1/conflicts/c-999/resolve", json={"choice": "kept"})).status_code == 404
    assert (await world.supervisor.http.post("/v1/conflicts/nonsense/resolve", json={"choice": "kept"})).status_code == 404
    conflict = await _fine_conflict(world)
    await world.admin.http.post("/v1/admin/users", json={"id": "u-ps", "name": "Giám sát Phú Sơn", "role": "supervisor", "ward_ids": ["phu-son"]})
    token = (await world.admin.http.post("/v1/admin/devices", json={"device_id": "ps-laptop", "user_id": "u-ps"})).json()["token"]
    other = Api(world.base_url, token, "ps-laptop")
    try:
        assert (await other.http.post(f"/v1/conflicts/{conflict['id']}/resolve", json={"choice": "kept"})).status_code == 404
        assert (await other.http.get("/v1/conflicts")).json()["conflicts"] == []
    finally:
        await other.aclose()


@pytest.mark.parametrize("body", [{"choice": "maybe"}, {"value": 1}, {"choice": "kept", "extra": 1}])
async def test_a_malformed_resolution_is_a_400_problem(world: World, body: dict[str, Any]) -> None:
    conflict = await _fine_conflict(world)
    response = await world.supervisor.http.post(f"/v1/conflicts/{conflict['id']}/resolve", json=body)
    assert response.status_code == 400 and response.headers["content-type"].startswith(PROBLEM)


async def test_officers_get_403_on_conflict_review(world: World) -> None:
    conflict = await _fine_conflict(world)
    assert (await world.officer_a.http.get("/v1/conflicts")).status_code == 403
    assert (await world.officer_a.http.post(f"/v1/conflicts/{conflict['id']}/resolve", json={"choice": "kept"})).status_code == 403
