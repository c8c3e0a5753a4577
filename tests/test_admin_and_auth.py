"""Identity, auth and scope (PROTOCOL.md sections 2 and 7), through real HTTP."""

from __future__ import annotations

import importlib.metadata

import httpx
import pytest

from sync_server.loopback import LoopbackServer

from .helpers import Api, World, premises

PROBLEM = "application/problem+json"


async def test_healthz_answers_ok_the_version_and_the_protocol_without_a_token(server: LoopbackServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": importlib.metadata.version("patrol-sync"), "protocol": 1}


async def test_openapi_document_is_served_without_a_token_and_describes_push(server: LoopbackServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    push = document["paths"]["/v1/sync/push"]["post"]
    # MessagePack bodies in words: generators refuse a request content type they cannot encode
    assert set(push["requestBody"]["content"]) == {"application/json"} and "application/msgpack" in push["requestBody"]["description"]
    assert set(push["responses"]["200"]["content"]) == {"application/json", "application/msgpack"}
    assert "PushRequest" in document["components"]["schemas"]
    assert "ViolationsChange" in document["components"]["schemas"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic YWRtaW46YWRtaW4="}, {"Authorization": "Bearer"}],
    ids=["missing", "unknown", "wrong-scheme", "empty"],
)
async def test_requests_without_a_valid_token_get_401_problem(server: LoopbackServer, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        response = await http.get("/v1/sync/pull")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["status"] == 401 and problem["type"].startswith("urn:patrol-sync:problem:")
    assert {"type", "title", "status", "detail"} <= problem.keys()


async def test_a_revoked_device_gets_401_on_its_next_request(world: World) -> None:
    assert (await world.officer_a.http.get("/v1/sync/pull")).status_code == 200
    revoke = await world.admin.http.delete("/v1/admin/devices/lamson-h01")
    assert revoke.status_code == 204
    response = await world.officer_a.http.get("/v1/sync/pull")
    assert response.status_code == 401
    assert (await world.officer_b.http.get("/v1/sync/pull")).status_code == 200


async def test_revoking_an_unknown_device_is_404(world: World) -> None:
    response = await world.admin.http.delete("/v1/admin/devices/ghost")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)


@pytest.mark.parametrize("who", ["officer_a", "supervisor"])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/admin/wards", {"id": "x", "name": "X"}),
        ("GET", "/v1/admin/users", None),
        ("POST", "/v1/admin/devices", {"device_id": "evil", "user_id": "u-ngoc"}),
        ("DELETE", "/v1/admin/devices/lamson-h02", None),
    ],
)
async def test_only_admins_may_administer(world: World, who: str, method: str, path: str, body: object) -> None:
    api: Api = getattr(world, who)
    response = await api.http.request(method, path, json=body)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_creating_an_existing_id_is_409(world: World) -> None:
    response = await world.admin.http.post("/v1/admin/wards", json={"id": "lam-son", "name": "again"})
    assert response.status_code == 409
    response = await world.admin.http.post("/v1/admin/devices", json={"device_id": "lamson-h01", "user_id": "u-hung"})
    assert response.status_code == 409


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/admin/teams", {"id": "t9", "ward_id": "no-such-ward", "name": "T"}),
        ("/v1/admin/users", {"id": "u9", "name": "U", "role": "officer", "team_ids": ["no-such-team"]}),
        ("/v1/admin/users", {"id": "u9", "name": "U", "role": "supervisor", "ward_ids": ["no-such-ward"]}),
        ("/v1/admin/devices", {"device_id": "d9", "user_id": "no-such-user"}),
        ("/v1/admin/devices", {"device_id": "server", "user_id": "u-ngoc"}),
        ("/v1/admin/wards", {"id": "w9", "name": "W", "timezone": "Mars/Olympus"}),
    ],
)
async def test_references_to_missing_entities_are_422(world: World, path: str, body: object) -> None:
    response = await world.admin.http.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)


@pytest.mark.parametrize(
    "body",
    [
        {"id": "bad id!", "name": "X"},
        {"id": "x" * 65, "name": "X"},
        {"id": "x", "name": ""},
        {"id": "x", "name": "X", "extra": 1},
        {"name": "X"},
    ],
)
async def test_malformed_admin_bodies_are_400_problems(world: World, body: object) -> None:
    response = await world.admin.http.post("/v1/admin/wards", json=body)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(PROBLEM)
    listing = await world.admin.http.get("/v1/admin/wards")
    assert [w["id"] for w in listing.json()] == ["lam-son", "phu-son"]


async def test_a_device_token_is_shown_once_and_lists_never_show_tokens(world: World) -> None:
    response = await world.admin.http.post("/v1/admin/devices", json={"device_id": "lamson-h09", "user_id": "u-ngoc"})
    token = response.json()["token"]
    assert token.startswith("pst_") and len(token) >= 40
    for path in ["/v1/admin/devices", "/v1/admin/users", "/v1/admin/wards", "/v1/admin/teams"]:
        listing = await world.admin.http.get(path)
        assert listing.status_code == 200
        assert token not in listing.text and "token" not in listing.text
    devices = {d["device_id"]: d for d in (await world.admin.http.get("/v1/admin/devices")).json()}
    assert devices["lamson-h09"]["user_id"] == "u-ngoc" and devices["lamson-h09"]["revoked_at"] is None


async def test_users_list_their_teams_and_wards(world: World) -> None:
    users = {u["id"]: u for u in (await world.admin.http.get("/v1/admin/users")).json()}
    assert users["u-ngoc"]["team_ids"] == ["ls-t1"] and users["u-ngoc"]["role"] == "officer"
    assert users["u-minh"]["ward_ids"] == ["lam-son", "phu-son"]
    assert users["admin"]["role"] == "admin"


async def test_tokens_are_stored_only_as_hashes(world: World, db_url: str) -> None:
    from . import storedb

    dump = await storedb.dump(db_url)
    assert world.officer_a.token and world.officer_a.token not in dump
    assert world.admin.token and world.admin.token not in dump


async def test_an_officer_of_one_ward_cannot_write_another_ward(world: World) -> None:
    answer = await world.officer_c.push_ok([premises("p-ls", "lam-son", "phuson-h01")])
    result = answer["results"][0]
    assert result["status"] == "rejected"
    assert result["errors"][0]["code"] == "forbidden"
    assert await world.officer_a.pull_all() == []


async def test_an_officer_of_one_ward_cannot_read_another_ward(world: World) -> None:
    await world.officer_a.push_ok([premises("p-ls", "lam-son", "lamson-h01")])
    await world.officer_c.push_ok([premises("p-ps", "phu-son", "phuson-h01")])
    assert [r["id"] for r in await world.officer_c.pull_all()] == ["p-ps"]
    assert [r["id"] for r in await world.officer_a.pull_all()] == ["p-ls"]
    assert sorted(r["id"] for r in await world.supervisor.pull_all()) == ["p-ls", "p-ps"]
    assert sorted(r["id"] for r in await world.admin.pull_all()) == ["p-ls", "p-ps"]


async def test_an_officer_cannot_edit_a_record_of_another_ward_by_its_id(world: World) -> None:
    await world.officer_c.push_ok([premises("p-ps", "phu-son", "phuson-h01")])
    ts = "1686300000000-0000-lamson-h01"
    answer = await world.officer_a.push_ok(
        [{"collection": "premises", "id": "p-ps", "fields": {"name": {"value": "hijacked", "ts": ts}}}]
    )
    assert answer["results"][0]["status"] == "rejected"
    assert answer["results"][0]["errors"][0]["code"] == "forbidden"
    answer = await world.officer_a.push_ok(
        [{"collection": "premises", "id": "p-ps", "delete": {"ts": ts}}]
    )
    assert answer["results"][0]["errors"][0]["code"] == "forbidden"
    (record,) = await world.officer_c.pull_all()
    assert record["fields"]["name"] == "Nhà trọ Lê Lợi" and record["deleted"] is False


async def test_moving_a_record_to_a_ward_outside_scope_is_forbidden(world: World) -> None:
    await world.officer_a.push_ok([premises("p1", "lam-son", "lamson-h01", ms=1_686_200_000_000)])
    move = {"collection": "premises", "id": "p1", "fields": {"ward_id": {"value": "phu-son", "ts": "1686100000000-0000-lamson-h01"}}}
    answer = await world.officer_a.push_ok([move])
    assert answer["results"][0]["errors"][0]["code"] == "forbidden"


async def test_a_push_for_another_device_is_403(world: World) -> None:
    body = {"device_id": "lamson-h02", "changeset_id": "x1", "changes": []}
    response = await world.officer_a.http.post("/v1/sync/push", json=body)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_unknown_routes_and_methods_are_problems(world: World) -> None:
    response = await world.admin.http.get("/v1/nothing-here")
    assert response.status_code == 404 and response.headers["content-type"].startswith(PROBLEM)
    response = await world.admin.http.put("/v1/sync/pull")
    assert response.status_code == 405 and response.headers["content-type"].startswith(PROBLEM)
