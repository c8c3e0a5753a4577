"""The identity lifecycle (PROTOCOL.md sections 2, 7 and 10), over HTTP and through the SDK.

Token re-issue (a revoked handheld's stranded outbox syncs as its own), user update,
disable and enable (scope follows on the next request, on every worker), the last
enabled admin kept, ward and team changes, and one-time enrolment codes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from client_sdk import AsyncPatrolClient, AuthError, PatrolClient
from schemas import NewTeam, NewUser, NewWard, Premises, User, UserUpdate
from sync_server.loopback import LoopbackServer
from sync_server.services.enrolment import FailureLimiter, normalise
from sync_server.settings import Settings
from sync_server.stores import store_for

from .helpers import Api, World, edit, new_id, premises, stamp

CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$")


async def pull_ids(api: Api) -> set[str]:
    return {r["id"] for r in await api.pull_all()}


async def status(api: Api) -> int:
    return (await api.http.get("/v1/sync/pull")).status_code


async def add_device(world: World, device_id: str, user_id: str) -> Api:
    answer = await world.admin.http.post("/v1/admin/devices", json={"device_id": device_id, "user_id": user_id})
    assert answer.status_code == 201, answer.text
    return Api(world.base_url, answer.json()["token"], device_id)


@pytest.fixture
async def anonymous(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=world.base_url, timeout=30) as http:
        yield http


# -- token re-issue ------------------------------------------------------------------------


async def test_a_reissued_token_works_and_the_old_one_stops_at_once(world: World) -> None:
    assert await status(world.officer_a) == 200
    answer = await world.admin.http.post("/v1/admin/devices/lamson-h01/token")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["device_id"] == "lamson-h01" and body["user_id"] == "u-ngoc" and body["token"] != world.officer_a.token
    assert await status(world.officer_a) == 401
    renewed = Api(world.base_url, body["token"], "lamson-h01")
    try:
        assert await status(renewed) == 200
        assert "pst_" not in (await world.admin.http.get("/v1/admin/devices")).text
    finally:
        await renewed.aclose()


async def test_reissuing_the_token_of_an_unknown_device_is_404(world: World) -> None:
    answer = await world.admin.http.post("/v1/admin/devices/ghost-h9/token")
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("application/problem+json")


async def test_a_revoked_device_comes_back_with_a_reissued_token_and_its_pushes_are_its_own(world: World) -> None:
    record_id = new_id()
    assert (await world.admin.http.delete("/v1/admin/devices/lamson-h01")).status_code == 204
    assert (await world.officer_a.push([premises(record_id, "lam-son", "lamson-h01")])).status_code == 401
    token = (await world.admin.http.post("/v1/admin/devices/lamson-h01/token")).json()["token"]
    listed = {d["device_id"]: d for d in (await world.admin.http.get("/v1/admin/devices")).json()}
    assert listed["lamson-h01"]["revoked_at"] is None
    back = Api(world.base_url, token, "lamson-h01")
    try:
        await back.push_ok([premises(record_id, "lam-son", "lamson-h01")])
        history = (await world.admin.http.get(f"/v1/records/premises/{record_id}/history")).json()
        assert [(e["device_id"], e["user_id"]) for e in history["edits"]] == [("lamson-h01", "u-ngoc")]
    finally:
        await back.aclose()


# -- users ---------------------------------------------------------------------------------


async def test_a_user_moved_to_another_team_works_in_its_ward_from_his_next_request(world: World) -> None:
    theirs = new_id()
    await world.officer_c.push_ok([premises(theirs, "phu-son", "phuson-h01")])
    assert theirs not in await pull_ids(world.officer_a)
    answer = await world.admin.http.patch("/v1/admin/users/u-ngoc", json={"team_ids": ["ps-t1"]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"id": "u-ngoc", "name": "Lê Văn Ngọc", "role": "officer", "team_ids": ["ps-t1"], "ward_ids": [], "disabled": False}
    assert theirs in await pull_ids(world.officer_a)
    result = (await world.officer_a.push_ok([premises(new_id(), "lam-son", "lamson-h01")]))["results"][0]
    assert result["status"] == "rejected" and result["errors"][0]["code"] == "forbidden"


async def test_a_user_given_wards_and_a_new_name_and_role_sees_them_at_once(world: World) -> None:
    answer = await world.admin.http.patch("/v1/admin/users/u-ngoc", json={"name": "Lê Ngọc", "role": "supervisor", "ward_ids": ["phu-son"]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["name"] == "Lê Ngọc" and answer.json()["team_ids"] == ["ls-t1"]
    summary = await world.officer_a.http.get("/v1/reports/summary")
    assert summary.status_code == 200 and sorted(summary.json()["wards"]) == ["lam-son", "phu-son"]
    users = {u["id"]: u for u in (await world.admin.http.get("/v1/admin/users")).json()}
    assert users["u-ngoc"]["role"] == "supervisor" and users["u-ngoc"]["ward_ids"] == ["phu-son"]


async def test_a_disabled_users_devices_all_get_401_until_he_is_enabled_again(world: World) -> None:
    second = await add_device(world, "lamson-h11", "u-ngoc")
    try:
        disabled = await world.admin.http.patch("/v1/admin/users/u-ngoc", json={"disabled": True})
        assert disabled.status_code == 200 and disabled.json()["disabled"] is True
        assert [await status(world.officer_a), await status(second), await status(world.officer_b)] == [401, 401, 200]
        assert (await world.officer_a.push([premises(new_id(), "lam-son", "lamson-h01")])).status_code == 401
        enabled = await world.admin.http.patch("/v1/admin/users/u-ngoc", json={"disabled": False})
        assert enabled.status_code == 200 and enabled.json()["disabled"] is False
        assert [await status(world.officer_a), await status(second)] == [200, 200]
    finally:
        await second.aclose()


@pytest.mark.parametrize("change", [{"disabled": True}, {"role": "supervisor"}, {"role": "officer", "team_ids": ["ls-t1"]}])
async def test_the_last_enabled_admin_can_be_neither_disabled_nor_demoted(world: World, change: dict[str, Any]) -> None:
    refused = await world.admin.http.patch("/v1/admin/users/admin", json=change)
    assert refused.status_code == 409, refused.text
    assert "last enabled admin" in refused.json()["detail"] and refused.headers["content-type"].startswith("application/problem+json")
    assert await status(world.admin) == 200
    assert {u["id"]: u for u in (await world.admin.http.get("/v1/admin/users")).json()}["admin"]["role"] == "admin"
    # with a second admin, the first may step down
    assert (await world.admin.http.patch("/v1/admin/users/u-minh", json={"role": "admin"})).status_code == 200
    assert (await world.admin.http.patch("/v1/admin/users/admin", json=change)).status_code == 200


async def test_the_last_two_admins_disabling_each_other_at_once_leave_one(world: World) -> None:
    assert (await world.admin.http.patch("/v1/admin/users/u-minh", json={"role": "admin"})).status_code == 200
    answers = await asyncio.gather(
        world.admin.http.patch("/v1/admin/users/u-minh", json={"disabled": True}),
        world.supervisor.http.patch("/v1/admin/users/admin", json={"disabled": True}),
    )
    # the one that comes second is refused: 409, or 401 if its own admin was disabled first
    assert sorted(a.status_code for a in answers) in ([200, 401], [200, 409])
    listings = [await api.http.get("/v1/admin/users") for api in (world.admin, world.supervisor)]
    assert sorted(r.status_code for r in listings) == [200, 401]  # the admin still enabled, and the other
    users = next(r.json() for r in listings if r.status_code == 200)
    assert len([u for u in users if u["role"] == "admin" and not u["disabled"]]) == 1


async def test_two_admins_disabling_each_other_at_once_in_the_store_leave_one(settings: Settings, admin_token: str) -> None:
    """Straight on the store, so that both changes are under way at once (over HTTP the
    second one's token check usually comes after the first commits)."""
    store = store_for(settings.db_url)
    await store.open()
    try:
        await store.create(User(id="u-two", name="Quản trị hai", role="admin"))
        for _ in range(5):
            results = await asyncio.gather(
                store.update_user("admin", UserUpdate(disabled=True)), store.update_user("u-two", UserUpdate(disabled=True)), return_exceptions=True
            )
            assert sorted(type(r).__name__ for r in results) == ["Refused", "User"], results
            for user_id in ("admin", "u-two"):
                await store.update_user(user_id, UserUpdate(disabled=False))
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/v1/admin/users/ghost", {"name": "X"}, 404),
        ("/v1/admin/users/u-ngoc", {"team_ids": ["no-team"]}, 422),
        ("/v1/admin/users/u-ngoc", {"ward_ids": ["no-ward"]}, 422),
        ("/v1/admin/users/u-ngoc", {"role": "king"}, 400),
        ("/v1/admin/users/u-ngoc", {"password": "x"}, 400),
        ("/v1/admin/users/u-ngoc", {"disabled": 0}, 400),  # a real boolean, never a number or a string
        ("/v1/admin/users/u-ngoc", {"disabled": "true"}, 400),
        ("/v1/admin/wards/ghost", {"name": "X"}, 404),
        ("/v1/admin/wards/lam-son", {"timezone": "Asia/Tokyo"}, 400),
        ("/v1/admin/teams/ghost", {"name": "X"}, 404),
        ("/v1/admin/teams/ls-t1", {"ward_id": "no-ward"}, 422),
    ],
)
async def test_bad_changes_are_refused_and_change_nothing(world: World, path: str, body: dict[str, Any], code: int) -> None:
    before = [(await world.admin.http.get(f"/v1/admin/{kind}")).json() for kind in ("users", "wards", "teams")]
    answer = await world.admin.http.patch(path, json=body)
    assert answer.status_code == code, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert [(await world.admin.http.get(f"/v1/admin/{kind}")).json() for kind in ("users", "wards", "teams")] == before


async def test_a_change_through_one_worker_is_seen_by_the_next_request_through_another(world: World, settings: Settings) -> None:
    other = LoopbackServer(settings)  # a second worker over the same store
    await other.start()
    try:
        officer = Api(other.url, world.officer_a.token, "lamson-h01")
        try:
            assert await status(officer) == 200
            assert (await world.admin.http.patch("/v1/admin/users/u-ngoc", json={"disabled": True})).status_code == 200
            assert await status(officer) == 401
            assert (await world.admin.http.patch("/v1/admin/users/u-ngoc", json={"disabled": False, "team_ids": ["ps-t1"]})).status_code == 200
            page = (await officer.http.get("/v1/sync/pull")).json()
            theirs = new_id()
            await world.officer_c.push_ok([premises(theirs, "phu-son", "phuson-h01")])
            assert theirs in {r["id"] for r in (await officer.http.get("/v1/sync/pull", params={"cursor": page["cursor"]})).json()["records"]}
        finally:
            await officer.aclose()
    finally:
        await other.stop()


# -- wards and teams -----------------------------------------------------------------------


async def test_a_ward_is_renamed_and_keeps_its_time_zone(world: World) -> None:
    answer = await world.admin.http.patch("/v1/admin/wards/lam-son", json={"name": "Phường Hạc Thành"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"id": "lam-son", "name": "Phường Hạc Thành", "timezone": "Asia/Ho_Chi_Minh"}
    assert {w["id"]: w["name"] for w in (await world.admin.http.get("/v1/admin/wards")).json()}["lam-son"] == "Phường Hạc Thành"


async def test_a_team_is_renamed(world: World) -> None:
    answer = await world.admin.http.patch("/v1/admin/teams/ls-t1", json={"name": "Tổ tuần tra số 1"})
    assert answer.status_code == 200 and answer.json() == {"id": "ls-t1", "ward_id": "lam-son", "name": "Tổ tuần tra số 1"}


def patrol(record_id: str, ward: str, team: str, node: str) -> dict[str, Any]:
    ts = stamp(node)
    fields = {"ward_id": edit(ward, ts), "team_id": edit(team, ts), "started_at": edit("2023-06-08T20:00:00+07:00", ts)}
    return {"collection": "patrols", "id": record_id, "fields": fields}


def check(record_id: str, ward: str, team: str, node: str) -> dict[str, Any]:
    ts = stamp(node)
    fields = {
        "ward_id": edit(ward, ts),
        "premises_id": edit("prem-1", ts),
        "kind": edit("residence", ts),
        "started_at": edit("2023-06-08T09:00:00+07:00", ts),
        "team_id": edit(team, ts),
    }
    return {"collection": "checks", "id": record_id, "fields": fields}


async def test_a_team_moves_to_another_ward_only_while_no_record_names_it(world: World) -> None:
    # no record names ls-t2: it moves, and its officer's scope with it
    moved = await world.admin.http.patch("/v1/admin/teams/ls-t2", json={"ward_id": "phu-son", "name": "Tổ chuyển"})
    assert moved.status_code == 200 and moved.json() == {"id": "ls-t2", "ward_id": "phu-son", "name": "Tổ chuyển"}
    theirs = new_id()
    await world.officer_c.push_ok([premises(theirs, "phu-son", "phuson-h01")])
    assert theirs in await pull_ids(world.officer_b)
    # a patrol names ls-t1; a check, deleted since, names ls-t3: neither moves
    await world.admin.http.post("/v1/admin/teams", json={"id": "ls-t3", "ward_id": "lam-son", "name": "Tổ 3"})
    await world.officer_a.push_ok([patrol(new_id(), "lam-son", "ls-t1", "lamson-h01")])
    gone = new_id()
    created = await world.officer_a.push_ok([check(gone, "lam-son", "ls-t3", "lamson-h01")])
    top = max(created["results"][0]["record"]["stamps"].values())
    deleted = await world.officer_a.push_ok([{"collection": "checks", "id": gone, "delete": {"ts": stamp("lamson-h01"), "base": top}}])
    assert deleted["results"][0]["record"]["deleted"] is True
    for team in ("ls-t1", "ls-t3"):
        refused = await world.admin.http.patch(f"/v1/admin/teams/{team}", json={"ward_id": "phu-son"})
        assert refused.status_code == 409, refused.text
        assert "records name it" in refused.json()["detail"]
    assert {t["id"]: t["ward_id"] for t in (await world.admin.http.get("/v1/admin/teams")).json()}["ls-t1"] == "lam-son"
    # naming the ward it is in already is no move
    assert (await world.admin.http.patch("/v1/admin/teams/ls-t1", json={"ward_id": "lam-son", "name": "Tổ 1"})).status_code == 200


# -- enrolment -----------------------------------------------------------------------------


async def test_an_enrolment_code_is_exchanged_once_for_a_new_token(world: World, anonymous: httpx.AsyncClient) -> None:
    made = await world.admin.http.post("/v1/admin/devices/lamson-h01/enrolment")
    assert made.status_code == 201, made.text
    enrolment = made.json()
    assert CODE.match(enrolment["code"]), enrolment
    assert enrolment["url"] == f"{world.base_url}/app/#enrol={enrolment['code']}"
    left = dt.datetime.fromisoformat(enrolment["expires_at"]) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=9) < left <= dt.timedelta(minutes=10)
    assert await status(world.officer_a) == 200  # the old token works until the code is used
    answer = await anonymous.post("/v1/enrol", json={"code": enrolment["code"]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["device_id"], body["user_id"]) == ("lamson-h01", "u-ngoc") and body["token"].startswith("pst_")
    assert await status(world.officer_a) == 401
    async with httpx.AsyncClient(base_url=world.base_url, headers={"Authorization": f"Bearer {body['token']}"}) as device:
        assert (await device.get("/v1/sync/pull")).status_code == 200
    again = await anonymous.post("/v1/enrol", json={"code": enrolment["code"]})
    assert again.status_code == 404 and again.headers["content-type"].startswith("application/problem+json")


async def test_a_code_is_accepted_as_typed_in_lower_case_without_hyphens(world: World, anonymous: httpx.AsyncClient) -> None:
    code = (await world.admin.http.post("/v1/admin/devices/lamson-h02/enrolment")).json()["code"]
    typed = " " + code.replace("-", "").lower().replace("1", "l").replace("0", "o") + " "
    assert (await anonymous.post("/v1/enrol", json={"code": typed})).status_code == 200


async def test_two_exchanges_of_one_code_at_once_give_one_token(world: World, anonymous: httpx.AsyncClient) -> None:
    code = (await world.admin.http.post("/v1/admin/devices/lamson-h01/enrolment")).json()["code"]
    answers = await asyncio.gather(*(anonymous.post("/v1/enrol", json={"code": code}) for _ in range(2)))
    assert sorted(a.status_code for a in answers) == [200, 404]
    token = next(a.json()["token"] for a in answers if a.status_code == 200)
    async with httpx.AsyncClient(base_url=world.base_url, headers={"Authorization": f"Bearer {token}"}) as device:
        assert (await device.get("/v1/sync/pull")).status_code == 200


@pytest.mark.parametrize("code", ["", "ABCDE-FGHJK", "ABCDE-FGHJK-MNPQU", "ABCDE-FGHJK-MNPQR-S", "x" * 500, "ABCDE FGHJK MNPQ!"])
async def test_what_cannot_be_a_code_is_422(world: World, anonymous: httpx.AsyncClient, code: str) -> None:
    answer = await anonymous.post("/v1/enrol", json={"code": code})
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")


async def test_an_enrolment_registers_a_device_id_not_known_yet_for_the_given_user(world: World, anonymous: httpx.AsyncClient) -> None:
    unknown = await world.admin.http.post("/v1/admin/devices/lamson-h20/enrolment")
    assert unknown.status_code == 404 and "user_id" in unknown.json()["detail"]
    assert (await world.admin.http.post("/v1/admin/devices/lamson-h20/enrolment", json={"user_id": "ghost"})).status_code == 422
    assert (await world.admin.http.post("/v1/admin/devices/lamson-h01/enrolment", json={"user_id": "u-lan"})).status_code == 409
    assert (await world.admin.http.post("/v1/admin/devices/bad id/enrolment", json={"user_id": "u-ngoc"})).status_code == 422
    made = await world.admin.http.post("/v1/admin/devices/lamson-h20/enrolment", json={"user_id": "u-ngoc"})
    assert made.status_code == 201, made.text
    assert "lamson-h20" in {d["device_id"] for d in (await world.admin.http.get("/v1/admin/devices")).json()}
    body = (await anonymous.post("/v1/enrol", json={"code": made.json()["code"]})).json()
    assert (body["device_id"], body["user_id"]) == ("lamson-h20", "u-ngoc")
    new = Api(world.base_url, body["token"], "lamson-h20")
    try:
        await new.push_ok([premises(new_id(), "lam-son", "lamson-h20")])
    finally:
        await new.aclose()


async def test_a_new_code_replaces_the_devices_unused_one_and_revoking_voids_it_until_a_new_one(world: World, anonymous: httpx.AsyncClient) -> None:
    first = (await world.admin.http.post("/v1/admin/devices/lamson-h01/enrolment")).json()["code"]
    second = (await world.admin.http.post("/v1/admin/devices/lamson-h01/enrolment")).json()["code"]
    assert (await anonymous.post("/v1/enrol", json={"code": first})).status_code == 404
    assert (await world.admin.http.delete("/v1/admin/devices/lamson-h01")).status_code == 204
    assert (await anonymous.post("/v1/enrol", json={"code": second})).status_code == 404
    # the handheld turns up again: a code made now brings it back
    third = (await world.admin.http.post("/v1/admin/devices/lamson-h01/enrolment")).json()["code"]
    token = (await anonymous.post("/v1/enrol", json={"code": third})).json()["token"]
    async with httpx.AsyncClient(base_url=world.base_url, headers={"Authorization": f"Bearer {token}"}) as device:
        assert (await device.get("/v1/sync/pull")).status_code == 200


async def test_an_expired_code_is_404(settings: Settings, admin_token: str, anonymous: httpx.AsyncClient, world: World) -> None:
    brief = LoopbackServer(msgspec.structs.replace(settings, enrolment_ttl_s=0.2))
    await brief.start()
    try:
        async with httpx.AsyncClient(base_url=brief.url, headers={"Authorization": f"Bearer {admin_token}"}) as admin:
            code = (await admin.post("/v1/admin/devices/lamson-h01/enrolment")).json()["code"]
        await asyncio.sleep(0.3)
        assert (await anonymous.post("/v1/enrol", json={"code": code})).status_code == 404
    finally:
        await brief.stop()


async def test_failed_exchanges_from_one_address_are_limited_with_429(settings: Settings, admin_token: str, world: World) -> None:
    strict = LoopbackServer(msgspec.structs.replace(settings, enrol_max_failures=3))
    await strict.start()
    try:
        async with httpx.AsyncClient(base_url=strict.url, timeout=30) as http:
            code = (await http.post("/v1/admin/devices/lamson-h01/enrolment", headers={"Authorization": f"Bearer {admin_token}"})).json()["code"]
            answers = [await http.post("/v1/enrol", json={"code": c}) for c in ("nope", "ABCDE-FGHJK-MNPQR", "ABCDE-FGHJK-MNPQS")]
            assert [a.status_code for a in answers] == [422, 404, 404]
            limited = await http.post("/v1/enrol", json={"code": code})  # even a good code, from this address, for now
            assert limited.status_code == 429, limited.text
            assert 500 <= int(limited.headers["retry-after"]) <= 600
            assert limited.headers["content-type"].startswith("application/problem+json")
            assert (await world.officer_a.http.get("/v1/sync/pull")).status_code == 200  # nothing else is limited
    finally:
        await strict.stop()


def test_the_failure_limit_counts_per_address_in_a_sliding_window() -> None:
    now = [1000.0]
    limiter = FailureLimiter(max_failures=2, window_s=60, clock=lambda: now[0])
    limiter.failed("10.0.0.1")
    now[0] += 30
    limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 30 and limiter.retry_after("10.0.0.2") is None
    now[0] += 30
    assert limiter.retry_after("10.0.0.1") is None  # the first failure left the window


def test_the_failure_limit_forgets_old_addresses_when_full() -> None:
    now = [0.0]
    limiter = FailureLimiter(max_failures=1, window_s=10, clock=lambda: now[0], max_clients=2)
    limiter.failed("a")
    limiter.failed("b")
    limiter.failed("c")  # full: the oldest address is dropped
    assert limiter.retry_after("a") is None and limiter.retry_after("c") == 10


def test_codes_read_the_way_crockford_means() -> None:
    assert normalise("7kq2m-xw4pd-9ht3r") == "7KQ2MXW4PD9HT3R"
    assert normalise("IL0O1 23456 789AB") == "1100123456789AB"


async def test_the_openapi_document_shows_the_enrol_call_open_and_the_others_behind_a_token(world: World, anonymous: httpx.AsyncClient) -> None:
    paths = (await anonymous.get("/schema/openapi.json")).json()["paths"]
    assert "security" not in paths["/v1/enrol"]["post"]
    assert paths["/v1/admin/devices/{device_id}/token"]["post"]["security"] == [{"bearer": []}]
    assert paths["/v1/admin/devices/{device_id}/enrolment"]["post"]["requestBody"]["required"] is False  # {"user_id"} or nothing
    for path in ("/v1/admin/users/{user_id}", "/v1/admin/wards/{ward_id}", "/v1/admin/teams/{team_id}"):
        assert "patch" in paths[path]


# -- the SDK ---------------------------------------------------------------------------------


def handheld(world: World, token: str, path: Path, device_id: str = "lamson-h01", user_id: str = "u-ngoc") -> AsyncPatrolClient:
    return AsyncPatrolClient(world.base_url, token=token, device_id=device_id, user_id=user_id, path=path)


async def test_a_revoked_handheld_syncs_its_stranded_edits_under_a_reissued_token(world: World, tmp_path: Path) -> None:
    assert world.officer_a.token is not None
    async with handheld(world, world.officer_a.token, tmp_path / "h01.db") as client:
        house = await client.create(Premises(id=new_id(), ward_id="lam-son", name="Nhà trọ Lê Lợi", kind="boarding_house"))
        await client.sync()
        await client.update(Premises, house.id, owner_name="Nguyễn Văn An")  # offline, then the handheld is lost
        assert (await world.admin.http.delete("/v1/admin/devices/lamson-h01")).status_code == 204
        with pytest.raises(AuthError, match="re-issue"):
            await client.sync()
        assert await client.pending_count() == 1
        token = (await world.admin.http.post("/v1/admin/devices/lamson-h01/token")).json()["token"]
        client.set_token(token)
        report = await client.sync()
        assert report.pushed == 1 and report.rejected == 0 and await client.pending_count() == 0
    history = (await world.admin.http.get(f"/v1/records/premises/{house.id}/history")).json()["edits"]
    assert {(e["device_id"], e["user_id"]) for e in history} == {("lamson-h01", "u-ngoc")} and len(history) == 2
    stored = {r["id"]: r for r in await world.admin.pull_all()}[house.id]
    assert stored["fields"]["owner_name"] == "Nguyễn Văn An" and stored["stamps"]["owner_name"].endswith("-lamson-h01")


async def test_a_client_made_anew_with_the_reissued_token_opens_the_same_outbox(world: World, tmp_path: Path) -> None:
    assert world.officer_a.token is not None
    async with handheld(world, world.officer_a.token, tmp_path / "h01.db") as client:
        house = await client.create(Premises(id=new_id(), ward_id="lam-son", name="Karaoke Hoa Hồng", kind="karaoke"))
    assert (await world.admin.http.delete("/v1/admin/devices/lamson-h01")).status_code == 204
    async with AsyncPatrolClient(world.base_url, token=world.admin.token or "", device_id="admin-cli", user_id="admin", path=tmp_path / "a.db") as admin:
        token = (await admin.reissue_token("lamson-h01")).token
    async with handheld(world, token, tmp_path / "h01.db") as client:
        assert await client.pending_count() == 1
        assert (await client.sync()).pushed == 1
    assert house.id in await pull_ids(world.officer_b)


async def test_a_handheld_enrols_with_a_code_and_syncs(world: World, tmp_path: Path) -> None:
    async with AsyncPatrolClient(world.base_url, token=world.admin.token or "", device_id="admin-cli", user_id="admin", path=tmp_path / "a.db") as admin:
        enrolment = await admin.create_enrolment("lamson-h30", user_id="u-hung")
        moved = await admin.update_user("u-hung", UserUpdate(name="Trần Hùng"))
        assert moved.name == "Trần Hùng" and moved.team_ids == ["ls-t2"]
    issued = await AsyncPatrolClient.enrol(world.base_url, enrolment.code)
    assert (issued.device_id, issued.user_id) == ("lamson-h30", "u-hung")
    async with handheld(world, issued.token, tmp_path / "h30.db", issued.device_id, issued.user_id) as client:
        await client.create(Premises(id=new_id(), ward_id="lam-son", name="Nhà nghỉ Sao Mai", kind="lodging"))
        assert (await client.sync()).pushed == 1



def test_the_blocking_client_enrols_and_takes_a_new_token(threaded_server: str, admin_token: str, tmp_path: Path) -> None:
    with PatrolClient(threaded_server, token=admin_token, device_id="admin-cli", user_id="admin", path=tmp_path / "a.db") as admin:
        admin.create_ward(NewWard(id="lam-son", name="Phường Lam Sơn"))
        admin.create_team(NewTeam(id="ls-t1", ward_id="lam-son", name="Tổ tuần tra 1"))
        admin.create_user(NewUser(id="u-ngoc", name="Lê Văn Ngọc", role="officer", team_ids=["ls-t1"]))
        token = admin.register_device("lamson-h01", "u-ngoc").token
        code = admin.create_enrolment("lamson-h01").code
        assert admin.update_team("ls-t1", name="Tổ một").name == "Tổ một"
        assert admin.update_ward("lam-son", "Phường Hạc Thành").name == "Phường Hạc Thành"
        assert admin.update_user("u-ngoc", UserUpdate(name="Lê Ngọc")).name == "Lê Ngọc"
    with PatrolClient(threaded_server, token=token, device_id="lamson-h01", user_id="u-ngoc", path=tmp_path / "h01.db") as client:
        client.create(Premises(id=new_id(), ward_id="lam-son", name="Quán bar Đêm", kind="bar"))
        issued = PatrolClient.enrol(threaded_server, code)
        with pytest.raises(AuthError):
            client.sync()
        client.set_token(issued.token)
        assert client.sync().pushed == 1
