"""Test helpers: an API client over real HTTP, stamps, and a populated world."""

from __future__ import annotations

import base64
import dataclasses
import itertools
import uuid
from typing import Any

import httpx
import msgspec

from sync_server.services import identity
from sync_server.stores import store_for

_counter = itertools.count()
BASE_MS = 1_686_200_000_000  # June 2023


def stamp(node: str, ms: int | None = None, counter: int = 0) -> str:
    return f"{(ms if ms is not None else BASE_MS + next(_counter)):013d}-{counter:04x}-{node}"


def edit(value: Any, ts: str, base: str | None = None) -> dict[str, Any]:
    return {"value": value, "ts": ts, "base": base}


def new_id() -> str:
    return str(uuid.uuid4())


class Api:
    """One caller (one device token) of a running server."""

    def __init__(self, base_url: str, token: str | None, device_id: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30)
        self.device_id = device_id
        self.token = token

    async def aclose(self) -> None:
        await self.http.aclose()

    async def push(self, changes: list[dict[str, Any]], changeset_id: str | None = None, **kw: Any) -> httpx.Response:
        body = {"device_id": self.device_id, "changeset_id": changeset_id or new_id(), "changes": changes}
        return await self.http.post("/v1/sync/push", json=body, **kw)

    async def push_ok(self, changes: list[dict[str, Any]], changeset_id: str | None = None) -> dict[str, Any]:
        response = await self.push(changes, changeset_id)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def pull_all(self, limit: int | None = None, collections: str | None = None) -> list[dict[str, Any]]:
        records, cursor = [], ""
        while True:
            params: dict[str, Any] = {"cursor": cursor}
            if limit:
                params["limit"] = limit
            if collections:
                params["collections"] = collections
            response = await self.http.get("/v1/sync/pull", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            records += page["records"]
            cursor = page["cursor"]
            if not page["more"]:
                return records


def premises(record_id: str, ward: str, node: str, name: str = "Nhà trọ Lê Lợi", kind: str = "boarding_house", ms: int | None = None) -> dict[str, Any]:
    ts = stamp(node, ms)
    return {
        "collection": "premises",
        "id": record_id,
        "fields": {"ward_id": edit(ward, ts), "name": edit(name, ts), "kind": edit(kind, ts)},
    }


def violation(record_id: str, ward: str, node: str, status: str = "open", ms: int | None = None, **extra: Any) -> dict[str, Any]:
    ts = stamp(node, ms)
    fields = {
        "ward_id": edit(ward, ts),
        "check_id": edit("chk-1", ts),
        "premises_id": edit("prem-1", ts),
        "category": edit("fire_safety", ts),
        "status": edit(status, ts),
    }
    fields.update({k: edit(v, ts) for k, v in extra.items()})
    return {"collection": "violations", "id": record_id, "fields": fields}


@dataclasses.dataclass
class World:
    """Two wards, their teams and people, each with a device."""

    base_url: str
    admin: Api
    officer_a: Api  # lam-son, team ls-t1
    officer_b: Api  # lam-son, team ls-t2
    officer_c: Api  # phu-son
    supervisor: Api  # lam-son and phu-son, no team

    def all(self) -> list[Api]:
        return [self.admin, self.officer_a, self.officer_b, self.officer_c, self.supervisor]


async def make_world(base_url: str, admin_token: str) -> World:
    admin = Api(base_url, admin_token, "admin-cli")
    for path, body in [
        ("/v1/admin/wards", {"id": "lam-son", "name": "Phường Lam Sơn"}),
        ("/v1/admin/wards", {"id": "phu-son", "name": "Phường Phú Sơn"}),
        ("/v1/admin/teams", {"id": "ls-t1", "ward_id": "lam-son", "name": "Tổ tuần tra 1"}),
        ("/v1/admin/teams", {"id": "ls-t2", "ward_id": "lam-son", "name": "Tổ tuần tra 2"}),
        ("/v1/admin/teams", {"id": "ps-t1", "ward_id": "phu-son", "name": "Tổ tuần tra Phú Sơn"}),
        ("/v1/admin/users", {"id": "u-ngoc", "name": "Lê Văn Ngọc", "role": "officer", "team_ids": ["ls-t1"]}),
        ("/v1/admin/users", {"id": "u-hung", "name": "Trần Văn Hùng", "role": "officer", "team_ids": ["ls-t2"]}),
        ("/v1/admin/users", {"id": "u-lan", "name": "Nguyễn Thị Lan", "role": "officer", "team_ids": ["ps-t1"]}),
        ("/v1/admin/users", {"id": "u-minh", "name": "Phạm Minh", "role": "supervisor", "ward_ids": ["lam-son", "phu-son"]}),
    ]:
        response = await admin.http.post(path, json=body)
        assert response.status_code == 201, response.text
    apis = []
    for device, user in [("lamson-h01", "u-ngoc"), ("lamson-h02", "u-hung"), ("phuson-h01", "u-lan"), ("sup-laptop", "u-minh")]:
        response = await admin.http.post("/v1/admin/devices", json={"device_id": device, "user_id": user})
        assert response.status_code == 201, response.text
        apis.append(Api(base_url, response.json()["token"], device))
    return World(base_url, admin, *apis)


def cursor_epoch(cursor: str) -> str:
    """The store epoch in a pull cursor the server made (``sync_server/stores/cursors.py``),
    for tests that forge cursors of the first form, ``base64url("<epoch>:<position>")``."""
    if "." in cursor:
        packed = cursor.split(".")[0]
        return base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4)).hex()
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split(":")[0]


def decode_msgpack(content: bytes) -> Any:
    return msgspec.msgpack.decode(content)


async def bootstrap_admin(db_url: str) -> str:
    """The first admin's token of a fresh store (``patrol-sync admin bootstrap``)."""
    store = store_for(db_url)
    await store.open()
    try:
        return await identity.bootstrap(store)
    finally:
        await store.close()
