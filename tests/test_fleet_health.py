"""Fleet health (PROTOCOL.md section 6d): per device, what its requests told the server."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from sync_server.principal import Principal
from sync_server.services.fleet import FleetMonitor
from sync_server.stores import HealthUpdate, StoreUnavailable
from sync_server.stores.sqlite.store import SqliteStore

from .helpers import World, edit, premises, stamp

PROBLEM = "application/problem+json"


async def _devices(world: World, **params: str) -> dict[str, dict[str, object]]:
    response = await world.supervisor.http.get("/v1/devices/health", params=params)
    assert response.status_code == 200, response.text
    return {d["device_id"]: d for d in response.json()["devices"]}


async def test_a_push_and_a_pull_are_recorded_with_the_client_header(world: World) -> None:
    now_ms = time.time_ns() // 1_000_000
    header = {"X-Client": f"patrol-sync-python/0.1.0; schema=1; pending=40; clock={now_ms + 3_600_000:013d}-0000-lamson-h01"}
    body = {"device_id": "lamson-h01", "changeset_id": "cs1", "changes": [premises("p1", "lam-son", "lamson-h01")]}
    assert (await world.officer_a.http.post("/v1/sync/push", json=body, headers=header)).status_code == 200
    assert (await world.officer_a.http.get("/v1/sync/pull", headers=header)).status_code == 200
    device = (await _devices(world))["lamson-h01"]
    assert device["client"] == "patrol-sync-python" and device["client_version"] == "0.1.0"
    assert device["schema"] == 1 and device["pending"] == 40
    assert device["last_push_at"] and device["last_pull_at"]
    assert 3_590_000 < device["clock_offset_ms"] < 3_610_000  # type: ignore[operator]
    assert device["wards"] == ["lam-son"] and device["user_id"] == "u-ngoc" and device["revoked"] is False


async def test_a_clock_sent_as_milliseconds_alone_is_measured_too(world: World) -> None:
    ahead = time.time_ns() // 1_000_000 + 7_200_000
    header = {"X-Client": f"patrol-sync-py/0.1.0; schema=1; pending=0; clock={ahead:013d}"}
    assert (await world.officer_a.http.get("/v1/sync/pull", headers=header)).status_code == 200
    device = (await _devices(world))["lamson-h01"]
    assert 7_190_000 < device["clock_offset_ms"] < 7_210_000  # type: ignore[operator]


async def test_without_a_clock_the_offset_comes_from_the_pushed_stamps(world: World) -> None:
    ahead = time.time_ns() // 1_000_000 + 86_400_000
    await world.officer_b.push_ok([premises("p1", "lam-son", "lamson-h02", ms=ahead)])
    device = (await _devices(world))["lamson-h02"]
    assert 86_300_000 < device["clock_offset_ms"] < 86_500_000  # type: ignore[operator]
    assert device["client"] is None and device["last_pull_at"] is None


async def test_rejected_changes_are_counted_once(world: World) -> None:
    bad = {"collection": "premises", "id": "x", "fields": {"rooms": edit(-1, stamp("lamson-h01"))}}
    changes = [bad, bad, premises("p1", "lam-son", "lamson-h01")]
    await world.officer_a.push_ok(changes, changeset_id="cs-bad")
    await world.officer_a.push_ok(changes, changeset_id="cs-bad")  # a retry
    assert (await _devices(world))["lamson-h01"]["rejected"] == 2


async def test_devices_never_seen_are_listed_without_activity(world: World) -> None:
    devices = await _devices(world)
    assert devices["phuson-h01"]["last_push_at"] is None and devices["phuson-h01"]["rejected"] == 0


async def test_the_ward_filter_and_revoked_devices(world: World) -> None:
    await world.admin.http.delete("/v1/admin/devices/lamson-h02")
    lam_son = await _devices(world, ward="lam-son")
    assert set(lam_son) == {"lamson-h01", "lamson-h02", "sup-laptop"}
    assert lam_son["lamson-h02"]["revoked"] is True
    assert set(await _devices(world, ward="phu-son")) == {"phuson-h01", "sup-laptop"}


async def test_an_admin_sees_every_device(world: World) -> None:
    response = await world.admin.http.get("/v1/devices/health")
    assert {d["device_id"] for d in response.json()["devices"]} == {"admin-cli", "lamson-h01", "lamson-h02", "phuson-h01", "sup-laptop"}


@pytest.mark.parametrize("header", ["garbage", "x" * 300, "a/b; schema=zz; pending=-1; clock=tomorrow", ""])
async def test_a_malformed_client_header_never_fails_a_request(world: World, header: str) -> None:
    assert (await world.officer_a.http.get("/v1/sync/pull", headers={"X-Client": header})).status_code == 200


async def test_officers_get_403_on_fleet_health(world: World) -> None:
    response = await world.officer_a.http.get("/v1/devices/health")
    assert response.status_code == 403 and response.headers["content-type"].startswith(PROBLEM)


async def test_a_supervisor_sees_only_the_wards_of_his_own_scope_on_a_device(world: World) -> None:
    from .helpers import Api

    await world.admin.http.post("/v1/admin/users", json={"id": "u-ps", "name": "Giám sát Phú Sơn", "role": "supervisor", "ward_ids": ["phu-son"]})
    token = (await world.admin.http.post("/v1/admin/devices", json={"device_id": "ps-laptop", "user_id": "u-ps"})).json()["token"]
    other = Api(world.base_url, token, "ps-laptop")
    try:
        devices = {d["device_id"]: d for d in (await other.http.get("/v1/devices/health")).json()["devices"]}
    finally:
        await other.aclose()
    assert devices["sup-laptop"]["wards"] == ["phu-son"]  # u-minh also oversees lam-son
    assert "lamson-h01" not in devices


async def test_a_failed_health_flush_keeps_the_notes_and_logs_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    class Flaky(SqliteStore):
        failures = 1

        async def record_health(self, updates: Sequence[HealthUpdate]) -> None:
            if self.failures:
                self.failures -= 1
                raise StoreUnavailable("the database is unavailable: DeadlockDetectedError: deadlock detected")
            await super().record_health(updates)

    store = Flaky(f"sqlite:///{tmp_path / 'fleet.db'}")
    await store.open()
    try:
        fleet = FleetMonitor(store)
        officer = Principal(user_id="u-ngoc", device_id="lamson-h01", role="officer", wards=frozenset({"lam-son"}))
        fleet.note(officer, "push", None, rejected=2)
        with caplog.at_level(logging.WARNING, logger="patrol_sync.fleet"):
            await fleet.flush()  # fails: the notes stay
        assert [r.getMessage() for r in caplog.records] == [
            "could not record fleet health; will retry: the database is unavailable: DeadlockDetectedError: deadlock detected"
        ]
        assert all(r.exc_info is None for r in caplog.records)  # an expected hiccup, not a traceback in the log
        fleet.note(officer, "pull", None, rejected=1)
        await fleet.flush()
        with sqlite3.connect(tmp_path / "fleet.db") as conn:
            row = conn.execute("SELECT rejected, last_push_at IS NOT NULL, last_pull_at IS NOT NULL FROM device_health").fetchall()
        assert row == [(3, 1, 1)]
    finally:
        await store.close()
