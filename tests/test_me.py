"""A device's own scope (``GET /v1/me`` and the enrol answer): who it acts for, its role
and its wards with their names, so the handheld app sets its ward without anyone typing it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest

from schemas import DeviceScope, EnrolledDevice

from .helpers import World

LAM_SON = {"id": "lam-son", "name": "Phường Lam Sơn"}
PHU_SON = {"id": "phu-son", "name": "Phường Phú Sơn"}


@pytest.fixture
async def anonymous(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=world.base_url, timeout=30) as http:
        yield http


async def test_a_device_reads_its_user_role_and_wards_with_their_names(world: World) -> None:
    officer = await world.officer_a.http.get("/v1/me")
    assert officer.status_code == 200, officer.text
    assert officer.json() == {"device_id": "lamson-h01", "user_id": "u-ngoc", "user_name": "Lê Văn Ngọc", "role": "officer", "wards": [LAM_SON]}
    msgspec.json.decode(officer.content, type=DeviceScope)  # the SDK's type reads it
    supervisor = (await world.supervisor.http.get("/v1/me")).json()
    assert (supervisor["role"], supervisor["wards"]) == ("supervisor", [LAM_SON, PHU_SON])


async def test_the_scope_follows_a_change_of_the_users_team_and_a_wards_new_name_at_once(world: World) -> None:
    assert (await world.admin.http.patch("/v1/admin/users/u-ngoc", json={"team_ids": ["ps-t1"]})).status_code == 200
    assert (await world.admin.http.patch("/v1/admin/wards/phu-son", json={"name": "Phường Phú Sơn Mới"})).status_code == 200
    assert (await world.officer_a.http.get("/v1/me")).json()["wards"] == [{"id": "phu-son", "name": "Phường Phú Sơn Mới"}]


async def test_the_scope_needs_a_token(anonymous: httpx.AsyncClient) -> None:
    answer = await anonymous.get("/v1/me")
    assert answer.status_code == 401 and answer.headers["content-type"].startswith("application/problem+json")


async def test_the_enrol_answer_carries_the_devices_scope(world: World, anonymous: httpx.AsyncClient) -> None:
    code = (await world.admin.http.post("/v1/admin/devices/lamson-h02/enrolment")).json()["code"]
    answer = await anonymous.post("/v1/enrol", json={"code": code})
    assert answer.status_code == 200, answer.text
    enrolled = msgspec.json.decode(answer.content, type=EnrolledDevice)
    assert (enrolled.device_id, enrolled.user_id) == ("lamson-h02", "u-hung")
    assert msgspec.to_builtins(enrolled.scope) == {
        "device_id": "lamson-h02", "user_id": "u-hung", "user_name": "Trần Văn Hùng", "role": "officer", "wards": [LAM_SON],
    }


async def test_the_openapi_document_shows_the_scope_call_behind_a_token_and_the_enrol_answer_with_its_scope(anonymous: httpx.AsyncClient) -> None:
    doc = (await anonymous.get("/schema/openapi.json")).json()
    me = doc["paths"]["/v1/me"]["get"]
    assert me["security"] == [{"bearer": []}]
    assert me["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/DeviceScope"}
    enrolled = doc["paths"]["/v1/enrol"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "scope" in doc["components"]["schemas"][enrolled]["required"]


async def test_enrolling_a_device_of_a_disabled_user_is_403_and_says_why(world: World, anonymous: httpx.AsyncClient) -> None:
    code = (await world.admin.http.post("/v1/admin/devices/lamson-h02/enrolment")).json()["code"]
    assert (await world.admin.http.patch("/v1/admin/users/u-hung", json={"disabled": True})).status_code == 200
    answer = await anonymous.post("/v1/enrol", json={"code": code})
    assert answer.status_code == 403 and "disabled" in answer.json()["detail"]
