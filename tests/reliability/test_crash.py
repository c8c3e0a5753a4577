"""Crash safety: the server killed with SIGKILL at random moments, again and again.

The server runs as its own process on a SQLite file. Six handhelds (the SDK, each
with its own local store) keep making records and editing two records their ward
shares, and sync all along; a killer SIGKILLs the server at a random moment
(KILLS times), checks the store as the crash left it, and restarts it on the same
file; the handhelds' syncs fail, retry and carry on. Afterwards:

- every change set that got a 200 is fully present, with the answer it got;
- none is half-applied: right after each kill, each change set sent so far has all
  its records and its stored answer, or none of them;
- none is applied twice: every answer to one change set is the same bytes, a record
  keeps the seq its first answer gave it, and the edit log has one entry per change;
- every handheld converges: its pulled records are the server's, for its wards.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import sqlite3
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from client_sdk import AsyncPatrolClient, PatrolSyncError, RetryPolicy, new_id
from schemas import Premises
from sync_server.stores.sqlite.store import path_from_url

from ..budget import budget
from ._process import ServerProcess, cli

pytestmark = pytest.mark.slow

KILLS = budget(12, 48)  # half of them at a push on the wire
DEVICES = [("ls-h1", "lam-son"), ("ls-h2", "lam-son"), ("ls-h3", "lam-son"), ("ps-h1", "phu-son"), ("ps-h2", "phu-son"), ("ps-h3", "phu-son")]
SHARED = {"lam-son": "shared-lam-son", "phu-son": "shared-phu-son"}
RETRY = RetryPolicy(attempts=4, base_delay=0.05, max_delay=0.5)


class Recorder(httpx.AsyncBaseTransport):
    """Passes requests through; keeps every push it sent and every 200 answer to one."""

    def __init__(self, log: dict[str, Any]) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.log = log

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        push = request.url.path == "/v1/sync/push"
        if push:
            raw = await request.aread()  # the SDK streams its (gzip) push bodies in pieces
            body = json.loads(gzip.decompress(raw) if request.headers.get("content-encoding") == "gzip" else raw)
            self.log["sent"][body["changeset_id"]] = body
            self.log["pushing"].set()
        response = await self.inner.handle_async_request(request)
        if push:
            content = await response.aread()  # decompressed already
            if response.status_code == 200:
                self.log["answers"][body["changeset_id"]].append(content)
            headers = [(k, v) for k, v in response.headers.items() if k.lower() not in ("content-encoding", "content-length")]
            return httpx.Response(response.status_code, headers=headers, content=content, request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def created_ids(body: dict[str, Any]) -> list[str]:
    """The records a change set creates (every record but the shared ones is made once)."""
    return [c["id"] for c in body["changes"] if c["id"] not in SHARED.values()]


def check_all_or_nothing(db: Path, sent: dict[str, dict[str, Any]]) -> set[str]:
    """Each change set sent so far is in the store whole (records, edit log, answer) or
    not at all; returns those in it."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        whole: set[str] = set()
        for changeset_id, body in sent.items():
            answered = conn.execute(
                "SELECT count(*) FROM changesets WHERE device_id = ? AND changeset_id = ?", (body["device_id"], changeset_id)
            ).fetchone()[0]
            if answered:
                whole.add(changeset_id)
            ids = created_ids(body)
            if not ids:
                continue
            marks = ",".join("?" * len(ids))
            present = conn.execute(f"SELECT count(*) FROM records WHERE collection = 'premises' AND id IN ({marks})", ids).fetchone()[0]
            logged = conn.execute(
                f"SELECT count(*) FROM edits WHERE changeset_id = ? AND record_id IN ({marks})", [changeset_id, *ids]
            ).fetchone()[0]
            assert (present, logged, answered) in ((0, 0, 0), (len(ids), len(ids), 1)), f"change set {changeset_id} is half-applied"
        return whole
    finally:
        conn.close()


async def device_loop(client: AsyncPatrolClient, ward: str, rng: random.Random, stop: asyncio.Event, made: list[str]) -> None:
    n = 0
    while not stop.is_set():
        async with client.batch():
            for _ in range(rng.randint(2, 8)):
                n += 1
                made.append((await client.create(Premises(id=new_id(), ward_id=ward, name=f"{client.device_id} #{n}", kind="boarding_house"))).id)
            await client.update(Premises, SHARED[ward], name=f"{client.device_id} was here ({n})")
            await client.add(Premises, SHARED[ward], "tags", f"{client.device_id}-{n}")
        try:
            await client.sync()
        except PatrolSyncError:
            await asyncio.sleep(rng.uniform(0.05, 0.3))  # the server is down: work offline, sync later
        await asyncio.sleep(rng.uniform(0, 0.05))


async def settle(client: AsyncPatrolClient, deadline: float) -> None:
    """Sync until nothing is pending and a whole sync went through."""
    while True:
        try:
            await client.sync()
            if await client.pending_count() == 0:
                await client.sync()  # pull what the others pushed last
                return
        except PatrolSyncError:
            pass
        assert time.monotonic() < deadline, f"{client.device_id} could not finish syncing"
        await asyncio.sleep(0.2)


async def test_sigkilled_server_loses_no_answered_change_set_half_applies_none_and_devices_converge(
    sqlite_url: str, make_server: type[ServerProcess], tmp_path: Path
) -> None:
    async with asyncio.timeout(420):  # whatever happens, the suite goes on
        await crash_run(sqlite_url, make_server, tmp_path)


async def crash_run(sqlite_url: str, make_server: type[ServerProcess], tmp_path: Path) -> None:
    rng = random.Random(20260611)
    db = path_from_url(sqlite_url)
    admin_token = cli("admin", "bootstrap", "--db", sqlite_url)
    server = make_server(sqlite_url)
    await server.start()

    tokens: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=30) as admin:
        for ward in SHARED:
            assert (await admin.post("/v1/admin/wards", json={"id": ward, "name": ward})).status_code == 201
            assert (await admin.post("/v1/admin/teams", json={"id": f"{ward}-t", "ward_id": ward, "name": "Tổ"})).status_code == 201
        for device, ward in DEVICES:
            user = {"id": f"u-{device}", "name": device, "role": "officer", "team_ids": [f"{ward}-t"]}
            assert (await admin.post("/v1/admin/users", json=user)).status_code == 201
            answer = await admin.post("/v1/admin/devices", json={"device_id": device, "user_id": f"u-{device}"})
            tokens[device] = answer.json()["token"]
        stamp = "1686200000000-0000-admin-cli"
        for ward, record in SHARED.items():
            change = {"collection": "premises", "id": record, "fields": {
                "ward_id": {"value": ward, "ts": stamp}, "name": {"value": "shared", "ts": stamp}, "kind": {"value": "other", "ts": stamp}}}
            body = {"device_id": "admin-cli", "changeset_id": f"seed-{ward}", "changes": [change]}
            assert (await admin.post("/v1/sync/push", json=body)).status_code == 200

    log: dict[str, Any] = {"sent": {}, "answers": defaultdict(list), "pushing": asyncio.Event()}
    clients: list[tuple[AsyncPatrolClient, str]] = []
    https: list[httpx.AsyncClient] = []
    made: list[str] = []
    for device, ward in DEVICES:
        http = httpx.AsyncClient(transport=Recorder(log), timeout=10)
        https.append(http)
        client = AsyncPatrolClient(
            server.url, token=tokens[device], device_id=device, user_id=f"u-{device}", path=tmp_path / f"{device}.db",
            http=http, retry=RETRY, max_changes=rng.choice([5, 10, 20]), rng=random.Random(rng.random()),
        )
        await client.open()
        await client.sync()  # the shared records
        clients.append((client, ward))

    stop = asyncio.Event()
    loops = [asyncio.create_task(device_loop(c, w, random.Random(rng.random()), stop, made)) for c, w in clients]
    snapshots: list[tuple[int, int]] = []
    lost_answers: set[str] = set()  # committed, but killed before the answer was read
    started = time.monotonic()
    try:
        for kill in range(KILLS):
            if kill % 2:
                await asyncio.sleep(rng.uniform(0.2, 1.2))  # a random moment of a busy server's life
            else:  # a push on the wire: most likely between its commit and its answer
                await asyncio.sleep(0.2)
                log["pushing"].clear()
                pushing = asyncio.ensure_future(log["pushing"].wait())
                await asyncio.wait([pushing, *loops], return_when=asyncio.FIRST_COMPLETED)
                pushing.cancel()
                for loop in loops:  # a device loop that died says why now, not at the suite's timeout
                    if loop.done():
                        loop.result()
                await asyncio.sleep(rng.uniform(0, 0.02))
            answered = set(log["answers"])
            server.kill()
            whole = check_all_or_nothing(db, dict(log["sent"]))
            lost_answers |= whole - answered - set(log["answers"])
            snapshots.append((len(whole), len(log["sent"])))
            await asyncio.sleep(rng.uniform(0, 0.3))  # the devices find it down meanwhile
            await server.start()
    finally:
        stop.set()
        failures = [r for r in await asyncio.gather(*loops, return_exceptions=True) if r is not None]
    assert not failures, failures
    chaos_s = time.monotonic() - started

    deadline = time.monotonic() + 120
    for client, _ in clients:
        await settle(client, deadline)
    for client, _ in clients:  # the last pushes of the others
        await settle(client, deadline)

    # -- the server's state, through the API and in the file --------------------------
    server_records: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=30) as admin:
        cursor = ""
        while True:
            page = (await admin.get("/v1/sync/pull", params={"cursor": cursor})).json()
            server_records.update({r["id"]: r for r in page["records"]})
            cursor = page["cursor"]
            if not page["more"]:
                break
    server.stop()
    assert check_all_or_nothing(db, log["sent"]) == set(log["sent"]), "every change set sent was answered in the end"
    assert lost_answers <= set(log["answers"])  # their retries got the stored answer

    # every 200 is fully present, with what it said; retries got the same bytes
    conn = sqlite3.connect(db)
    edits_per_changeset = dict(conn.execute("SELECT changeset_id, count(*) FROM edits GROUP BY changeset_id").fetchall())
    conn.close()
    retried = 0
    for changeset_id, answers in log["answers"].items():
        assert len(set(answers)) == 1, f"change set {changeset_id} got different answers"
        retried += len(answers) > 1
        body = log["sent"][changeset_id]
        answer = json.loads(answers[0])
        assert edits_per_changeset.get(changeset_id, 0) <= len(body["changes"])  # never logged twice
        results = {r["id"]: r for r in answer["results"]}
        for change in body["changes"]:
            assert results[change["id"]]["status"] == "applied"
            if change["id"] in SHARED.values():
                added = set(change["fields"].get("tags", {}).get("add", []))
                assert added <= set(server_records[change["id"]]["fields"]["tags"])  # sets only grow here
                continue
            record = server_records[change["id"]]
            assert record["seq"] == results[change["id"]]["seq"]  # not applied again since
            assert record["fields"]["name"] == change["fields"]["name"]["value"]
    assert sorted(made) == sorted(set(made)) and set(made) <= set(server_records)

    # every device converges to the server
    for client, ward in clients:
        mine = {r.id: r for r in [r async for r in client.pulled_records()]}
        theirs = {i: r for i, r in server_records.items() if r["ward_id"] == ward}
        assert set(mine) == set(theirs), client.device_id
        for record_id, record in theirs.items():
            assert mine[record_id].seq == record["seq"] and mine[record_id].fields == record["fields"], record_id
    for client, _ in clients:
        await client.aclose()
    for http in https:
        await http.aclose()

    changesets = len(log["answers"])
    print(
        f"\ncrash: {KILLS} SIGKILLs in {chaos_s:.0f} s, {server.starts} starts; {changesets} change sets answered 200 "
        f"({retried} answered more than once, {len(lost_answers)} committed with their answer lost to a kill, then answered on retry), {len(made)} records made, {len(server_records)} on the server; "
        f"after each kill, change sets whole/sent: {snapshots}"
    )
    assert len(snapshots) == KILLS and changesets > 100
