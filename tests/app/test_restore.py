"""A server restored from a backup (410 on the next pull), as the SDK handles it: the
app pulls everything again, keeps its pending edits, and sends back what it held that
the backup lacks, so the server ends with every record again."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync_server import backup

from ..helpers import World
from .conftest import App, AppServer, new_device, server_records

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_after_a_restore_the_app_pulls_afresh_and_sends_back_what_the_backup_lacks(
    app: App, app_server: AppServer, app_world: World, tmp_path: Path
) -> None:
    device = await new_device(app_world)
    await app.open()
    await app.enrol_with_token(device, "u-ngoc")
    before = await app.add_premises("Nhà trọ Trước Sao Lưu")
    await app.wait_idle()
    await app.sync()
    taken = tmp_path / "backup.db"
    backup.backup(app_server.settings.db_url, taken)

    after = await app.add_premises("Nhà trọ Sau Sao Lưu")  # synced, then lost by the restore
    await app.wait_idle()
    await app.sync()
    await app.edit("premises", before, fills={"address": "12 Lê Lợi"})
    await app.wait_idle()
    await app.sync()
    await app.page.context.set_offline(True)
    pending = await app.add_premises("Nhà trọ Chưa Gửi")  # still in the outbox at the restore

    await app_server.stop()
    backup.restore(taken, app_server.settings.db_url)
    await app_server.start()
    assert after not in await server_records(app_world.supervisor)

    await app.page.context.set_offline(False)
    await app.wait_idle()
    await app.sync()
    assert "khôi phục" in await app.message()
    assert await app.pending() == 0
    on_server = await server_records(app_world.supervisor)
    assert on_server[after]["fields"]["name"] == "Nhà trọ Sau Sao Lưu"
    assert on_server[before]["fields"]["address"] == "12 Lê Lợi"
    assert on_server[pending]["fields"]["name"] == "Nhà trọ Chưa Gửi"
    names = sorted(p["fields"]["name"] for p in await app.list("premises"))
    assert names == sorted(r["fields"]["name"] for r in on_server.values() if r["collection"] == "premises")
