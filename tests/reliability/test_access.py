"""Access matrix: every endpoint x every role x own and other ward.

Roles: an officer of lam-son, a supervisor of lam-son only, a supervisor of both
wards, the admin, a revoked device, an unknown token, no token. "Own" ward is
lam-son, "other" is phu-son (in the scope of the two-ward supervisor and the admin
only). Each role gets a world of its own and walks every endpoint with both wards;
every answer is compared with what PROTOCOL.md sections 2, 6 and 7 allow, and
answers that list things are checked to hold nothing outside the caller's scope.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from ..helpers import Api, World, edit, new_id, premises, stamp, violation

WARDS = ("lam-son", "phu-son")
OPEN, SUP_WARD, SUP_RECORD, ANY_WARD, ANY_DEVICE, ADMIN = "open", "supervisor-ward", "supervisor-record", "any-ward", "any-device", "admin"


@dataclasses.dataclass
class Role:
    name: str
    scope: frozenset[str]
    supervisor: bool = False
    admin: bool = False
    authenticated: bool = True


ROLES = [
    Role("officer", frozenset({"lam-son"})),
    Role("supervisor-of-one", frozenset({"lam-son"}), supervisor=True),
    Role("supervisor-of-both", frozenset(WARDS), supervisor=True),
    Role("admin", frozenset(WARDS), supervisor=True, admin=True),
    Role("revoked", frozenset(), authenticated=False),
    Role("unknown", frozenset(), authenticated=False),
    Role("none", frozenset(), authenticated=False),
]


@dataclasses.dataclass
class Fixture:
    """What the endpoints are called on: one record and one open conflict per ward."""

    records: dict[str, str]
    conflicts: dict[str, str]
    blobs: dict[str, str]
    photos: dict[str, bytes]


async def prepare(world: World) -> Fixture:
    records, conflicts, blobs, photos = {}, {}, {}, {}
    for ward, first, second in (("lam-son", world.officer_a, world.officer_b), ("phu-son", world.officer_c, world.admin)):
        # a photo of this ward, uploaded and named by a violation
        photo = f"ảnh vi phạm {ward} {new_id()}".encode()
        blob_id = "sha256:" + hashlib.sha256(photo).hexdigest()
        assert (await first.http.put(f"/v1/blobs/{blob_id}", content=photo)).status_code == 201
        with_photo = violation(new_id(), ward, first.device_id or "")
        with_photo["fields"]["photos"] = {"add": [blob_id], "ts": stamp(first.device_id or "")}
        await first.push_ok([with_photo])
        blobs[ward], photos[ward] = blob_id, photo
        record_id = new_id()
        await first.push_ok([premises(record_id, ward, first.device_id or "")])
        # a concurrent edit from another device (base null): a conflict in this ward
        answer = await second.push_ok([{"collection": "premises", "id": record_id, "fields": {"name": edit("Tên khác", stamp(second.device_id or ""))}}])
        assert answer["conflicts"], answer
        records[ward], conflicts[ward] = record_id, answer["conflicts"][0]["id"]
    return Fixture(records, conflicts, blobs, photos)


async def caller(world: World, role: Role) -> Api:
    if role.name == "officer":
        return world.officer_a
    if role.name == "supervisor-of-both":
        return world.supervisor
    if role.name == "admin":
        return world.admin
    if role.name == "supervisor-of-one":
        await world.admin.http.post("/v1/admin/users", json={"id": "u-sup1", "name": "Giám sát", "role": "supervisor", "ward_ids": ["lam-son"]})
        answer = await world.admin.http.post("/v1/admin/devices", json={"device_id": "sup1-laptop", "user_id": "u-sup1"})
        return Api(world.base_url, answer.json()["token"], "sup1-laptop")
    if role.name == "revoked":
        answer = await world.admin.http.post("/v1/admin/devices", json={"device_id": "lamson-h09", "user_id": "u-ngoc"})
        token = answer.json()["token"]
        assert (await world.admin.http.delete("/v1/admin/devices/lamson-h09")).status_code == 204
        return Api(world.base_url, token, "lamson-h09")
    if role.name == "unknown":
        return Api(world.base_url, "x" * 43, "lamson-h01")
    return Api(world.base_url, None, "lamson-h01")


@dataclasses.dataclass
class Call:
    name: str
    kind: str
    method: str
    path: str  # {ward}, {record}, {conflict}, {device}, {blob}
    body: Any = None
    ok: int = 200


CALLS = [
    Call("healthz", OPEN, "GET", "/healthz"),
    Call("openapi", OPEN, "GET", "/schema/openapi.json"),
    Call("metrics", OPEN, "GET", "/metrics"),
    Call("summary report", SUP_WARD, "GET", "/v1/reports/summary?ward={ward}"),
    Call("checks report", SUP_WARD, "GET", "/v1/reports/checks?group_by=officer&ward={ward}"),
    Call("targets report", SUP_WARD, "GET", "/v1/reports/targets?ward={ward}"),
    Call("conflict list", SUP_WARD, "GET", "/v1/conflicts?ward={ward}"),
    Call("fleet health", SUP_WARD, "GET", "/v1/devices/health?ward={ward}"),
    Call("record list", SUP_WARD, "GET", "/v1/records/violations?ward={ward}"),
    Call("record list file", SUP_WARD, "GET", "/v1/records/premises?ward={ward}&format=csv"),
    Call("record history", SUP_RECORD, "GET", "/v1/records/premises/{record}/history"),
    Call("conflict resolution", SUP_RECORD, "POST", "/v1/conflicts/{conflict}/resolve", {"choice": "kept"}),
    Call("premises search", ANY_WARD, "GET", "/v1/search/premises?q=nha&ward={ward}"),
    Call("blob download", ANY_WARD, "GET", "/v1/blobs/{blob}"),
    Call("blob range", ANY_WARD, "GET", "/v1/blobs/{blob}", ok=206),
    Call("blob size", ANY_WARD, "HEAD", "/v1/blobs/{blob}"),
    Call("missing blobs", ANY_WARD, "GET", "/v1/blobs/missing?ward={ward}"),
    Call("blob upload", ANY_DEVICE, "PUT", "/v1/blobs/{blob}"),
    Call("ward creation", ADMIN, "POST", "/v1/admin/wards", {"id": "{new}", "name": "Phường mới"}, 201),
    Call("team creation", ADMIN, "POST", "/v1/admin/teams", {"id": "{new}", "ward_id": "{ward}", "name": "Tổ mới"}, 201),
    Call("user creation", ADMIN, "POST", "/v1/admin/users", {"id": "{new}", "name": "Mới", "role": "admin", "ward_ids": ["{ward}"]}, 201),
    Call("device registration", ADMIN, "POST", "/v1/admin/devices", {"device_id": "{new}", "user_id": "u-ngoc"}, 201),
    Call("device revocation", ADMIN, "DELETE", "/v1/admin/devices/{device}", None, 204),
    Call("ward list", ADMIN, "GET", "/v1/admin/wards"),
    Call("team list", ADMIN, "GET", "/v1/admin/teams"),
    Call("user list", ADMIN, "GET", "/v1/admin/users"),
    Call("device list", ADMIN, "GET", "/v1/admin/devices"),
    Call("token re-issue", ADMIN, "POST", "/v1/admin/devices/{device}/token"),
    Call("enrolment creation", ADMIN, "POST", "/v1/admin/devices/{device}/enrolment", None, 201),
    Call("enrolment of a new device", ADMIN, "POST", "/v1/admin/devices/{new}/enrolment", {"user_id": "u-hung"}, 201),
    Call("user update", ADMIN, "PATCH", "/v1/admin/users/u-hung", {"name": "Trần Hùng", "ward_ids": ["{ward}"]}),
    Call("user disabling", ADMIN, "PATCH", "/v1/admin/users/u-tam", {"disabled": True}),  # nobody else locked out
    Call("ward rename", ADMIN, "PATCH", "/v1/admin/wards/{ward}", {"name": "Phường đổi tên"}),
    Call("team update", ADMIN, "PATCH", "/v1/admin/teams/{team}", {"name": "Tổ đổi tên"}),
    # no token needed, whatever the caller sends: the one-time code is the credential
    Call("enrolment exchange", OPEN, "POST", "/v1/enrol", {"code": "{code}"}),
]


def expected(call: Call, role: Role, ward: str) -> int:
    if call.kind == OPEN:
        return 200
    if not role.authenticated:
        return 401
    in_scope = ward in role.scope
    if call.kind == ADMIN:
        return call.ok if role.admin else 403
    if call.kind == ANY_DEVICE:  # an upload: any device may send bytes it holds (stored already: 200)
        return call.ok
    if call.kind == ANY_WARD:
        return call.ok if in_scope else 403
    if not role.supervisor:
        return 403
    if call.kind == SUP_WARD:
        return 200 if in_scope else 403
    return 200 if in_scope else 404  # a record or conflict of another ward does not exist for you


def fill(value: Any, subst: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, text in subst.items():
            value = value.replace("{" + key + "}", text)
        return value
    if isinstance(value, list):
        return [fill(v, subst) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, subst) for k, v in value.items()}
    return value


def wards_in(call: Call, answer: Any, scope: frozenset[str]) -> set[str]:
    """The wards an answer shows things of (fleet health: of devices working in none
    of the caller's wards; a device that also works elsewhere lists its other wards)."""
    if call.name == "conflict list":
        return {c["ward_id"] for c in answer["conflicts"]}
    if call.name == "premises search":
        return {hit["ward_id"] for hit in answer["results"]}
    if call.name == "missing blobs":
        return set()  # checked by the missing-list tests; here: 200 in scope, 403 outside
    if call.name in ("summary report", "checks report", "targets report"):
        return set(answer["wards"])
    if call.name == "fleet health":
        return {w for device in answer["devices"] if not set(device["wards"]) & scope for w in device["wards"]}
    return set()


@pytest.fixture(params=ROLES, ids=[r.name for r in ROLES])
def role(request: pytest.FixtureRequest) -> Role:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def who(world: World, role: Role) -> AsyncIterator[Api]:
    api = await caller(world, role)
    yield api
    if api not in world.all():
        await api.aclose()


async def test_no_role_reads_writes_or_administers_outside_its_scope(world: World, role: Role, who: Api) -> None:
    fixture = await prepare(world)
    await world.admin.http.post("/v1/admin/users", json={"id": "u-tam", "name": "Tạm", "role": "officer"})
    users_before = (await world.admin.http.get("/v1/admin/users")).json()
    wrong: list[str] = []
    for n, (call, ward) in enumerate((c, w) for c in CALLS for w in WARDS):
        victim = f"victim-{n}"
        await world.admin.http.post("/v1/admin/devices", json={"device_id": victim, "user_id": "u-hung"})
        subst = {"ward": ward, "record": fixture.records[ward], "conflict": fixture.conflicts[ward], "device": victim, "new": f"new-{n}", "blob": fixture.blobs[ward]}
        subst["team"] = {"lam-son": "ls-t1", "phu-son": "ps-t1"}[ward]
        if call.name == "enrolment exchange":
            subst["code"] = (await world.admin.http.post(f"/v1/admin/devices/{victim}/enrolment")).json()["code"]
        if call.name == "blob upload":
            response = await who.http.put(fill(call.path, subst), content=fixture.photos[ward])
        elif call.name == "blob range":
            response = await who.http.get(fill(call.path, subst), headers={"Range": "bytes=0-3"})
        else:
            response = await who.http.request(call.method, fill(call.path, subst), json=fill(call.body, subst))
        want = expected(call, role, ward)
        if response.status_code != want:
            wrong.append(f"{call.name} in {ward}: {response.status_code} (expected {want}) {response.text[:200]}")
            continue
        if want >= 400 and call.method != "HEAD":
            assert response.headers["content-type"].startswith("application/problem+json")
        elif call.kind == ANY_WARD and call.name.startswith("blob") and call.method == "GET":
            photo = fixture.photos[ward]
            assert response.content == (photo[:4] if want == 206 else photo), call.name
        elif response.headers.get("content-type", "").startswith("text/csv"):
            shown = {w for w, name in (("lam-son", "Phường Lam Sơn"), ("phu-son", "Phường Phú Sơn")) if name in response.content.decode("utf-8-sig")}
            if shown - role.scope:
                wrong.append(f"{call.name}: shows {sorted(shown - role.scope)}")
        elif want == 200 and call.kind not in (OPEN, ANY_DEVICE) and not call.name.startswith("blob"):
            leaked = wards_in(call, response.json(), role.scope) - role.scope
            if leaked:
                wrong.append(f"{call.name} in {ward}: shows {sorted(leaked)}")
    assert not wrong, "\n".join(wrong)
    if not role.admin:  # nothing was created by the refused admin calls
        assert (await world.admin.http.get("/v1/admin/users")).json() == users_before


async def test_pulls_and_pushes_stay_in_scope(world: World, role: Role, who: Api) -> None:
    await prepare(world)
    pulled = await who.http.get("/v1/sync/pull")
    pushed = {}
    for ward in WARDS:
        change = premises(new_id(), ward, who.device_id or "")
        pushed[ward] = change["id"]
        response = await who.push([change])
        if not role.authenticated:
            assert response.status_code == 401
            continue
        assert response.status_code == 200, response.text
        result = response.json()["results"][0]
        if ward in role.scope:
            assert result["status"] == "applied"
        else:
            assert result["status"] == "rejected" and result["errors"][0]["code"] == "forbidden"
    if not role.authenticated:
        assert pulled.status_code == 401
        stored = {r["id"] for r in await world.admin.pull_all()}
        assert not stored & set(pushed.values())
        return
    assert pulled.status_code == 200
    assert {r["ward_id"] for r in pulled.json()["records"]} == set(role.scope)
    everything = {r["id"]: r["ward_id"] for r in await world.admin.pull_all()}
    assert {ward for ward, record_id in pushed.items() if record_id in everything} == set(role.scope)
    # another device's id in the envelope is refused whole
    body = {"device_id": "phuson-h01", "changeset_id": new_id(), "changes": [premises(new_id(), "phu-son", "phuson-h01")]}
    assert (await who.http.post("/v1/sync/push", json=body)).status_code == 403


async def test_a_revoked_token_stops_working_on_the_next_request(world: World) -> None:
    answer = (await world.admin.http.post("/v1/admin/devices", json={"device_id": "lost-h1", "user_id": "u-ngoc"})).json()
    async with httpx.AsyncClient(base_url=world.base_url, headers={"Authorization": f"Bearer {answer['token']}"}) as lost:
        assert (await lost.get("/v1/sync/pull")).status_code == 200
        assert (await world.admin.http.delete("/v1/admin/devices/lost-h1")).status_code == 204
        assert (await lost.get("/v1/sync/pull")).status_code == 401
