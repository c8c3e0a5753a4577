"""What only the PostgreSQL store has: several workers on one database.

Pull horizons, key locks across workers, concurrent migrations, restores, and
the twins of SQLite-only checks. The rest of the suite runs on both stores.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from sync_server.engine.state import RecordState, encode_crdt, encode_doc
from sync_server.stores import CursorExpired, HealthUpdate, RecordRow, StoreUnavailable, store_for
from sync_server.stores.postgres import PostgresStore

from . import storedb


@pytest.fixture
def fresh_url(postgres: storedb.Cluster) -> Iterator[str]:
    url = postgres.new_database(migrated=False)
    yield url
    postgres.drop_database(url)


@pytest.fixture
async def store(fresh_url: str) -> AsyncIterator[PostgresStore]:
    s = PostgresStore(fresh_url)
    await s.open()
    yield s
    await s.close()


@pytest.fixture
async def other_worker(fresh_url: str, store: PostgresStore) -> AsyncIterator[PostgresStore]:
    """A second store on the same database: another worker process, as far as PostgreSQL can tell."""
    s = PostgresStore(fresh_url)
    await s.open()
    yield s
    await s.close()


def _state(record_id: str, ward: str = "lam-son", name: str = "Nhà trọ") -> RecordState:
    ts = "1686200000000-0000-lamson-h01"
    return RecordState("premises", record_id, ward, {"ward_id": ward, "name": name}, {"ward_id": ts, "name": ts})


async def _write(store: PostgresStore, *states: RecordState) -> None:
    async with store.write() as tx:
        await tx.seqs([(s.collection, s.id) for s in states])
        first = await tx.next_seqs(len(states))
        for offset, s in enumerate(states):
            s.seq = first + offset
        await tx.save([RecordRow(s, encode_doc(s), encode_crdt(s)) for s in states], [], [], [])


async def _ids(store: PostgresStore, cursor: str | None = None, limit: int = 100) -> tuple[list[str], str]:
    import msgspec

    page = await store.pull(None, cursor, limit, None)
    return [msgspec.json.decode(doc)["id"] for doc in page.docs], page.cursor


async def test_a_pull_stops_before_a_transaction_that_may_still_commit(store: PostgresStore, other_worker: PostgresStore) -> None:
    await _write(store, _state("before"))
    slow_started, slow_may_commit = asyncio.Event(), asyncio.Event()

    async def slow() -> None:  # took its number first, commits last
        async with store.write() as tx:
            first = await tx.next_seqs(1)
            slow_started.set()
            await slow_may_commit.wait()
            s = _state("slow")
            s.seq = first
            await tx.save([RecordRow(s, encode_doc(s), encode_crdt(s))], [], [], [])

    task = asyncio.create_task(slow())
    await slow_started.wait()
    await _write(other_worker, _state("fast"))  # another worker commits after it
    ids, cursor = await _ids(store)
    assert ids == ["before"]  # "fast" waits behind "slow": a cursor past it would skip "slow"
    slow_may_commit.set()
    await task
    ids, _ = await _ids(store, cursor)
    assert ids == ["slow", "fast"]


async def test_two_workers_creating_one_record_meet_on_its_lock(store: PostgresStore, other_worker: PostgresStore) -> None:
    key = ("premises", "p-new")
    first_read, second_read = asyncio.Event(), asyncio.Event()
    seen_by_second: dict[tuple[str, str], RecordState] = {}

    async def first() -> None:
        async with store.write() as tx:
            assert await tx.records([key]) == {}
            first_read.set()
            await asyncio.sleep(0.2)  # the second worker waits on the lock meanwhile
            assert not second_read.is_set()
            s = _state("p-new", name="first")
            s.seq = await tx.next_seqs(1)
            await tx.save([RecordRow(s, encode_doc(s), encode_crdt(s))], [], [], [])

    async def second() -> None:
        await first_read.wait()
        async with other_worker.write() as tx:
            seen_by_second.update(await tx.records([key]))  # blocks until the first commits
            second_read.set()

    await asyncio.gather(first(), second())
    assert seen_by_second[key].fields["name"] == "first"  # it merges onto the new record, not over it


async def test_several_workers_starting_at_once_migrate_once(fresh_url: str) -> None:
    stores = [PostgresStore(fresh_url) for _ in range(4)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
        assert len({s.epoch for s in stores}) == 1
    finally:
        for s in stores:
            await s.close()
    versions = await storedb.rows(fresh_url, "SELECT version FROM schema_migrations ORDER BY version")
    assert [v for (v,) in versions] == sorted({v for (v,) in versions}) and versions[0] == (1,)


async def test_new_positions_stay_above_positions_restored_from_another_cluster(store: PostgresStore, fresh_url: str) -> None:
    await _write(store, _state("old"))
    _, before = await _ids(store)
    await store.close()
    # a logical restore into a younger cluster: stored positions from far higher transaction ids
    await storedb.execute(fresh_url, "UPDATE records SET pos = pos + (10000000000::bigint << 20)")
    await store.open()
    _, cursor = await _ids(store)
    await _write(store, _state("new"))
    ids, _ = await _ids(store, cursor)
    assert ids == ["new"]
    with pytest.raises(CursorExpired):  # a restored backup: cursors of before start over
        await store.pull(None, before, 10, None)


async def test_a_long_open_transaction_holds_pulls_back_but_loses_nothing(store: PostgresStore, fresh_url: str) -> None:
    conn = await asyncpg.connect(fresh_url)
    try:
        tx = conn.transaction()
        await tx.start()
        await conn.execute("SELECT pg_current_xact_id()")  # any program's transaction with an id
        await _write(store, _state("p1"))
        ids, cursor = await _ids(store)
        assert ids == []
        await tx.rollback()
    finally:
        await conn.close()
    ids, _ = await _ids(store, cursor)
    assert ids == ["p1"]


async def test_the_edit_log_refuses_updates_and_deletes_on_postgresql(store: PostgresStore, fresh_url: str) -> None:
    await storedb.execute(
        fresh_url,
        "INSERT INTO edits (collection, record_id, ward_id, seq, at, user_id, device_id, changeset_id, diff) "
        "VALUES ('premises', 'p1', 'lam-son', 1, 'now', 'u', 'd', 'c', '\\x7b7d')",
    )
    for statement in ("UPDATE edits SET user_id = 'someone-else'", "DELETE FROM edits", "TRUNCATE edits"):
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await storedb.execute(fresh_url, statement)
    assert await storedb.rows(fresh_url, "SELECT count(*) FROM edits") == [(1,)]


async def test_workers_flushing_health_of_the_same_devices_at_once_never_deadlock(
    store: PostgresStore, other_worker: PostgresStore, fresh_url: str
) -> None:
    # Each worker flushes its fleet-health notes on its own clock; two flushes naming the same
    # devices in opposite orders deadlocked in CI until the upsert took its rows in one order.
    devices = [f"thiet-bi-{i:03d}" for i in range(300)]
    for _ in range(15):
        await asyncio.gather(
            store.record_health([HealthUpdate(d, last_push_at="2026-11-23T08:00:00.000Z", rejected=1) for d in devices]),
            other_worker.record_health([HealthUpdate(d, last_pull_at="2026-11-23T08:00:01.000Z", rejected=1) for d in reversed(devices)]),
        )
    totals = "SELECT count(*), min(rejected), max(rejected), count(last_pull_at) FROM device_health"
    assert await storedb.rows(fresh_url, totals) == [(300, 30, 30, 300)]


async def test_an_unreachable_database_is_unavailable() -> None:
    s = store_for("postgresql://nobody@127.0.0.1:9/nothing")
    with pytest.raises(StoreUnavailable):
        await s.open()
    assert not await s.ping()


def test_bootstrap_on_postgresql_works_once(fresh_url: str) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sync_server", *args], capture_output=True, text=True, timeout=60)

    first = run("admin", "bootstrap", "--db", fresh_url)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().startswith("pst_")
    again = run("admin", "bootstrap", "--db", fresh_url)
    assert again.returncode == 1 and "bootstrapped already" in again.stderr
    listed = run("admin", "user", "list", "--db", fresh_url)
    assert '"id":"admin"' in listed.stdout


async def test_rebuilt_projections_answer_the_same_reports_on_postgresql(store: PostgresStore, fresh_url: str) -> None:
    from schemas import Ward
    from sync_server.stores.postgres import _projections

    await store.create(Ward(id="lam-son", name="Phường Lam Sơn"))
    ts = "1686200000000-0000-lamson-h01"
    place = _state("p1", name="Nhà trọ Lê Lợi")
    place.fields["kind"], place.stamps["kind"] = "boarding_house", ts
    check = RecordState(
        "checks",
        "c1",
        "lam-son",
        {"ward_id": "lam-son", "premises_id": "p1", "kind": "residence", "started_at": "2023-06-08T23:30:00+00:00", "created_by": "u1"},
        {name: ts for name in ("ward_id", "premises_id", "kind", "started_at", "created_by")},
    )
    await _write(store, place, check)

    async def reports() -> list[object]:
        return [
            await store.summary(["lam-son"], None, None),
            await store.check_rows(["lam-son"], "premises_kind", None, None),
            await store.check_rows(["lam-son"], "day", None, None),
            await store.search_premises(["lam-son"], ["nha", "tro"], None, 10),
        ]

    before = await reports()
    assert before[1] and before[3]
    assert before[2][0].key == "2023-06-09"  # the ward's local day (UTC+7)
    await storedb.execute(fresh_url, "DELETE FROM p_premises; DELETE FROM p_checks")
    async with store._acquire() as conn:
        await _projections.rebuild(conn)
    assert await reports() == before
