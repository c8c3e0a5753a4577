"""Online backup and restore of the SQLite store, end to end.

The server runs as a process; two handhelds (the SDK) sync checks all along; the
backup is taken while they push; more writes follow; the store is restored from
the backup (refused while the server has it open) and the server restarted. Then:
the store is the backup's, whole (each change set in it all or nothing), its
reports agree with its records, every cursor handed out before gets 410; the
handhelds' next sync starts over and sends back what they made after the backup,
so the server holds every record again, and then the handhelds hold what it holds.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from client_sdk import AsyncPatrolClient, PatrolSyncError, RetryPolicy, new_id
from schemas import Check, Premises
from sync_server.backup import in_use
from sync_server.stores.sqlite.store import path_from_url

from ._process import ROOT, ServerProcess, cli

pytestmark = pytest.mark.slow

DEVICES = ("ls-h1", "ls-h2")


async def pull_everything(url: str, token: str) -> tuple[dict[str, dict[str, Any]], str]:
    records: dict[str, dict[str, Any]] = {}
    cursor = ""
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        while True:
            response = await http.get("/v1/sync/pull", params={"cursor": cursor})
            assert response.status_code == 200, response.text
            page = response.json()
            records.update({r["id"]: r for r in page["records"]})
            cursor = page["cursor"]
            if not page["more"]:
                return records, cursor


async def writing(client: AsyncPatrolClient, premises_id: str, stop: asyncio.Event, rng: random.Random) -> int:
    made = 0
    while not stop.is_set():
        async with client.batch():
            for _ in range(rng.randint(1, 6)):
                await client.create(Check(id=new_id(), ward_id="lam-son", premises_id=premises_id, kind="residence", started_at="2023-06-01T08:00:00+07:00"))  # type: ignore[arg-type]
                made += 1
        try:
            await client.sync()
        except PatrolSyncError:
            await asyncio.sleep(0.1)
    return made


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sync_server", *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


async def test_a_restored_backup_is_consistent_and_devices_get_410_send_back_and_converge(
    sqlite_url: str, make_server: type[ServerProcess], tmp_path: Path
) -> None:
    admin_token = cli("admin", "bootstrap", "--db", sqlite_url)
    server = make_server(sqlite_url)
    await server.start()
    tokens = {}
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {admin_token}"}) as admin:
        await admin.post("/v1/admin/wards", json={"id": "lam-son", "name": "Lam Sơn"})
        await admin.post("/v1/admin/teams", json={"id": "t", "ward_id": "lam-son", "name": "Tổ"})
        for device in DEVICES:
            await admin.post("/v1/admin/users", json={"id": f"u-{device}", "name": device, "role": "supervisor", "team_ids": ["t"]})
            tokens[device] = (await admin.post("/v1/admin/devices", json={"device_id": device, "user_id": f"u-{device}"})).json()["token"]
    clients = [
        AsyncPatrolClient(server.url, token=tokens[d], device_id=d, user_id=f"u-{d}", path=tmp_path / f"{d}.db", retry=RetryPolicy(attempts=3, base_delay=0.05, max_delay=0.3))
        for d in DEVICES
    ]
    for client in clients:
        await client.open()
    place = await clients[0].create(Premises(id=new_id(), ward_id="lam-son", name="Nhà trọ Lê Lợi", kind="boarding_house"))
    photo_bytes = b"\xff\xd8 the fire exit, locked" * 1000
    photo = await clients[0].put_blob(photo_bytes)
    await clients[0].create(Check(id=new_id(), ward_id="lam-son", premises_id=place.id, kind="fire_safety", started_at="2023-06-01T08:00:00+07:00", photos=[photo]))  # type: ignore[arg-type]
    await clients[0].sync()

    # devices sync while the backup is taken
    stop = asyncio.Event()
    rng = random.Random(7)
    writers = [asyncio.create_task(writing(c, place.id, stop, random.Random(rng.random()))) for c in clients]
    await asyncio.sleep(1.5)
    backup = tmp_path / "backups" / "store-backup.db"
    backup.parent.mkdir()
    done = await asyncio.to_thread(run_cli, "admin", "backup", "--db", sqlite_url, "--to", str(backup))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("backed up") and "1 blob files copied" in done.stdout
    await asyncio.sleep(1.5)  # more writes, which the backup does not hold
    stop.set()
    made = sum(await asyncio.gather(*writers))
    for client in clients:
        await client.sync()
    before, old_cursor = await pull_everything(server.url, admin_token)
    assert len(before) == made + 2  # and the premises and the check with the photo

    # restore: refused while the server has the store open
    refused = run_cli("admin", "restore", "--from", str(backup), "--db", sqlite_url)
    assert refused.returncode == 1 and "open in another process" in refused.stderr
    server.stop()
    assert not in_use(path_from_url(sqlite_url))
    blobs = path_from_url(sqlite_url).with_suffix(".blobs")
    assert blobs.is_dir()
    shutil.rmtree(blobs)  # the disk that held them is lost too: the backup brings them back
    restored = run_cli("admin", "restore", "--from", str(backup), "--db", sqlite_url)
    assert restored.returncode == 0, restored.stderr
    assert "1 blob files copied" in restored.stdout
    await server.start()

    # the store is the backup, whole
    after, _ = await pull_everything(server.url, admin_token)
    assert set(after) < set(before)  # the writes after the backup are gone
    for record_id, record in after.items():
        assert before[record_id]["seq"] >= record["seq"]
    conn = sqlite3.connect(path_from_url(sqlite_url))
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for changeset_id, count in conn.execute("SELECT changeset_id, count(*) FROM edits GROUP BY changeset_id"):
            answered = conn.execute("SELECT count(*) FROM changesets WHERE changeset_id = ?", (changeset_id,)).fetchone()[0]
            assert answered == 1 and count >= 1
    finally:
        conn.close()
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {tokens['ls-h1']}"}) as h1:
        summary = (await h1.get("/v1/reports/summary", params={"ward": "lam-son"})).json()
        assert summary["checks"] == sum(1 for r in after.values() if r["collection"] == "checks" and not r["deleted"])
        assert (await h1.get("/v1/sync/pull", params={"cursor": old_cursor})).status_code == 410
        assert (await h1.get(f"/v1/blobs/{photo}")).content == photo_bytes
        assert (await h1.get("/v1/blobs/missing")).json()["ids"] == []

    # every device starts over and sends back what it made that the backup lacks
    sent_back = 0
    for client in clients:
        report = await client.sync()
        assert any(w.code == "server_reset" for w in report.warnings)
        sent_back += report.restored
    assert sent_back == len(before) - len(after)  # each lost record once, by its author's device
    final, _ = await pull_everything(server.url, admin_token)
    assert set(final) == set(before) and all(final[i]["fields"] == before[i]["fields"] for i in before)
    for client in clients:  # and, after one more sync, they hold what the server holds
        await client.sync()
        mine = {r.id: r for r in [r async for r in client.pulled_records()]}
        assert set(mine) == set(final)
        assert all(mine[i].seq == final[i]["seq"] and mine[i].fields == final[i]["fields"] for i in final)
        await client.aclose()
    print(f"\nbackup: {len(before)} records before the restore, {len(after)} in the backup, {len(before) - len(after)} written after it")


def test_backup_and_restore_refuse_what_they_cannot_do(tmp_path: Path) -> None:
    missing = run_cli("admin", "backup", "--db", f"sqlite:///{tmp_path / 'none.db'}", "--to", str(tmp_path / "b.db"))
    assert missing.returncode == 1 and "no store" in missing.stderr
    postgres = run_cli("admin", "backup", "--db", "postgresql://localhost/x", "--to", str(tmp_path / "b.db"))
    assert postgres.returncode == 1 and "pg_dump" in postgres.stderr
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    junk = run_cli("admin", "restore", "--from", str(tmp_path / "junk.db"), "--db", f"sqlite:///{tmp_path / 's.db'}")
    assert junk.returncode == 1 and "restore" in junk.stderr
    assert not (tmp_path / "s.db").exists() or (tmp_path / "s.db").stat().st_size == 0
