"""A server restored from a backup gets back, from the devices, what the backup lacks.

A real server on a SQLite store; an online backup; more work on two handhelds; the
server stopped, the store restored (a new epoch), a new server started. Each device's
next sync gets 410, pulls everything again and sends back what it held that the
restored server lacks or holds older, with the original stamps: the server ends up
with every edit, no conflict is logged for it, and the devices converge.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from client_sdk import AsyncPatrolClient, new_id
from schemas import Check, Premises, Violation
from sync_server import backup
from sync_server.loopback import LoopbackServer
from sync_server.settings import Settings

from ..helpers import Api, World
from .conftest import FAST, USERS

VN = dt.timezone(dt.timedelta(hours=7))


@pytest.fixture
def store_kind() -> str:
    return "sqlite"  # the backup CLI's store (PostgreSQL is backed up with pg_dump)


class Devices:
    def __init__(self, world: World, tmp_path: Path) -> None:
        self.world = world
        self.tmp_path = tmp_path
        self.open: list[AsyncPatrolClient] = []

    async def client(self, api: Api, base_url: str, **options: Any) -> AsyncPatrolClient:
        assert api.device_id is not None and api.token is not None
        client = AsyncPatrolClient(
            base_url, token=api.token, device_id=api.device_id, user_id=USERS[api.device_id],
            path=self.tmp_path / f"{api.device_id}.db", retry=FAST, **options,
        )  # fmt: skip
        await client.open()
        self.open.append(client)
        return client

    async def close(self) -> None:
        for client in self.open:
            await client.aclose()
        self.open.clear()


@pytest.fixture
async def devices(world: World, tmp_path: Path) -> AsyncIterator[Devices]:
    d = Devices(world, tmp_path)
    yield d
    await d.close()


async def _restart_restored(server: LoopbackServer, settings: Settings, taken: Path) -> LoopbackServer:
    await server.stop()
    backup.restore(taken, settings.db_url)
    restarted = LoopbackServer(settings)
    await restarted.start()
    return restarted


def _premises(name: str, **extra: Any) -> Premises:
    return Premises(id=new_id(), ward_id="lam-son", name=name, kind="boarding_house", **extra)


async def test_after_a_restore_the_devices_send_back_what_the_backup_lacks(
    server: LoopbackServer, settings: Settings, world: World, devices: Devices, tmp_path: Path
) -> None:
    h01 = await devices.client(world.officer_a, world.base_url)
    h02 = await devices.client(world.officer_b, world.base_url)
    p1 = await h01.create(_premises("Nhà trọ Lê Lợi", rooms=1))
    c1 = await h01.create(Check(id=new_id(), ward_id="lam-son", premises_id=p1.id, kind="residence", started_at=dt.datetime(2026, 11, 20, 9, tzinfo=VN)))
    p2 = await h02.create(_premises("Karaoke Hoa Sữa"))
    await h01.sync(), await h02.sync(), await h01.sync()
    taken = tmp_path / "backup" / "store.db"
    taken.parent.mkdir()
    backup.backup(settings.db_url, taken)

    # written after the backup, and synced: the restore loses it on the server
    await h01.update(Premises, p1.id, rooms=5)
    await h01.add(Premises, p1.id, "tags", "có camera")
    v1 = await h01.create(Violation(id=new_id(), ward_id="lam-son", check_id=c1.id, premises_id=p1.id, category="fire_safety", status="fined", fine_vnd=1_500_000))
    await h01.delete(Check, c1.id)
    p3 = await h02.create(_premises("Nhà nghỉ Phú Sơn"))
    await h02.update(Premises, p2.id, name="Karaoke Hoa Sữa 2")
    await h01.sync(), await h02.sync(), await h01.sync()
    # and not yet synced when the server goes down
    await h01.update(Premises, p2.id, owner_name="Nguyễn Văn Bình")
    await devices.close()

    restarted = await _restart_restored(server, settings, taken)
    try:
        url = restarted.url
        h01 = await devices.client(world.officer_a, url)
        report = await h01.sync()
        codes = [w.code for w in report.warnings]
        assert "server_reset" in codes and "restore_skipped" in codes  # p3 is Hùng's: his device brings it back
        assert report.restored == 3  # p1's rooms and tag, v1 whole, c1's delete (not p2's new name: Hùng's edit, held here)
        h02 = await devices.client(world.officer_b, url)
        report = await h02.sync()
        assert report.restored == 2 and "restore_skipped" not in [w.code for w in report.warnings]  # p3, p2's new name
        await h01.sync()

        supervisor = Api(url, world.supervisor.token, "sup-laptop")
        try:
            pulled = (await supervisor.http.get("/v1/sync/pull", params={"limit": 1000})).json()["records"]
            on_server = {r["id"]: r for r in pulled}
            assert on_server[p1.id]["fields"]["rooms"] == 5 and on_server[p1.id]["fields"]["tags"] == ["có camera"]
            assert on_server[v1.id]["fields"]["status"] == "fined" and on_server[v1.id]["fields"]["created_by"] == "u-ngoc"
            assert on_server[c1.id]["deleted"] is True
            assert on_server[p2.id]["fields"]["name"] == "Karaoke Hoa Sữa 2"
            assert on_server[p2.id]["fields"]["owner_name"] == "Nguyễn Văn Bình"
            assert on_server[p3.id]["fields"]["created_by"] == "u-hung"
            # sent back with their original stamps, as clean edits: nothing for a supervisor to review
            assert on_server[p1.id]["stamps"]["rooms"].endswith("-lamson-h01")
            assert on_server[p2.id]["stamps"]["name"].endswith("-lamson-h02")
            assert (await supervisor.http.get("/v1/conflicts")).json()["conflicts"] == []
        finally:
            await supervisor.aclose()

        # the devices hold what the server holds, and the next syncs send nothing
        for device in (h01, h02):
            again = await device.sync()
            assert again.restored == 0 and again.pushed == 0
            held = {r.id: r async for r in device.pulled_records()}
            assert {i: (r.deleted, r.fields) for i, r in held.items()} == {i: (r["deleted"], r["fields"]) for i, r in on_server.items()}
    finally:
        await devices.close()
        await restarted.stop()


async def test_a_device_told_not_to_send_back_converges_to_the_backup(
    server: LoopbackServer, settings: Settings, world: World, devices: Devices, tmp_path: Path
) -> None:
    h01 = await devices.client(world.officer_a, world.base_url, send_back_after_restore=False)
    kept = await h01.create(_premises("Nhà trọ Lê Lợi"))
    await h01.sync()
    taken = tmp_path / "store-backup.db"
    backup.backup(settings.db_url, taken)
    undone = await h01.create(_premises("Dữ liệu nhập nhầm"))  # the operator restores to undo this
    await h01.sync()
    await devices.close()

    restarted = await _restart_restored(server, settings, taken)
    try:
        h01 = await devices.client(world.officer_a, restarted.url, send_back_after_restore=False)
        report = await h01.sync()
        assert [w.code for w in report.warnings] == ["server_reset"] and report.restored == 0
        assert await h01.get(Premises, kept.id) is not None
        assert await h01.get(Premises, undone.id) is None
    finally:
        await devices.close()
        await restarted.stop()


async def test_a_server_restored_from_backup_is_pulled_again_and_pending_edits_are_kept(
    server: LoopbackServer, settings: Settings, world: World, devices: Devices, tmp_path: Path
) -> None:
    """A real restore (a new epoch, not a faked 410): the device's pull cursor is refused,
    it pulls everything again, and the edit it had not pushed yet stays pending on top."""
    h01 = await devices.client(world.officer_a, world.base_url)
    kept = await h01.create(_premises("Nhà trọ Lê Lợi", rooms=1))
    later = await h01.create(_premises("Karaoke Hoa Sữa"))
    taken = tmp_path / "store-backup.db"
    await h01.sync()
    backup.backup(settings.db_url, taken)
    await h01.update(Premises, kept.id, rooms=2)  # pending when the server goes down
    await devices.close()

    restarted = await _restart_restored(server, settings, taken)
    try:
        h01 = await devices.client(world.officer_a, restarted.url)
        report = await h01.sync(push=False)
        assert [w.code for w in report.warnings] == ["server_reset"]
        assert report.pulled == 2
        got = await h01.get(Premises, kept.id)
        assert got is not None and got.rooms == 2 and await h01.pending_count() == 1
        assert await h01.get(Premises, later.id) is not None
        await h01.sync()
        assert await h01.pending_count() == 0
        supervisor = Api(restarted.url, world.supervisor.token, "sup-laptop")
        try:
            pulled = (await supervisor.http.get("/v1/sync/pull")).json()["records"]
        finally:
            await supervisor.aclose()
        assert {r["id"]: r["fields"].get("rooms") for r in pulled} == {kept.id: 2, later.id: None}
    finally:
        await devices.close()
        await restarted.stop()
