"""One-hop writes (``stores.OneHopWrites``, SQLite only): a group numbered outside any
transaction is written only if the store still stands where it was numbered from,
in the server's own thread or in the writer process (``stores/sqlite/_process.py``),
and what waits for the writer process commits together, group by group."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from schemas import Ward
from sync_server.engine.state import RecordState, encode_crdt, encode_doc
from sync_server.stores import AlreadyExists, Heads, PlannedWrite, RecordRow, ResolvedConflict, StoredChangeset, StoreUnavailable
from sync_server.stores.sqlite import SqliteStore, _process, _sql
from sync_server.stores.sqlite._writer import WriteLock, connect

from ._support import conflict_row, edit_row, pull_all, state, write

NOW = "2026-11-23T08:00:00.000Z"


@pytest.fixture(params=["process", "thread"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(f"sqlite:///{tmp_path / 'one-hop.db'}", writer_process=request.param == "process")
    await s.open()
    yield s
    await s.close()


def planned(
    heads: Heads,
    *states: RecordState,
    changeset: str = "cs-1",
    origin: dict[tuple[str, str], int] | None = None,
    conflicts: int = 0,
    id: int = 0,
    after: int = 0,
) -> PlannedWrite:
    """The states numbered after ``heads`` as the push writer numbers them, with an edit
    each, ``conflicts`` conflicts on the first and one change set's answer."""
    for offset, s in enumerate(states, 1):
        s.seq = heads.seq + offset
    origin = origin or {}
    return PlannedWrite(
        heads=heads,
        fresh=[("h-01", changeset)],
        origin=origin,
        created=[(s.collection, s.id) for s in states if (s.collection, s.id) not in origin],
        records=[RecordRow(s, encode_doc(s), encode_crdt(s)) for s in states],
        edits=[edit_row(s, changeset) for s in states],
        conflicts=[conflict_row(heads.conflict + n + 1, states[0]) for n in range(conflicts)],
        answers=[StoredChangeset("h-01", changeset, b"hash", b'{"answer":1}')],
        resolved=[],
        id=id,
        after=after,
    )


async def stored_ids(store: SqliteStore) -> list[str]:
    served, _, _ = await pull_all(store)
    return served


async def test_a_planned_group_is_written_whole_and_the_heads_follow(store: SqliteStore) -> None:
    heads = await store.heads()
    assert heads == Heads(0, 0)
    assert await store.write_planned(planned(heads, state("p1"), state("p2"), conflicts=2))
    assert await stored_ids(store) == ["p1", "p2"]
    assert await store.heads() == Heads(2, 2)
    async with store.read() as reads:
        assert list(await reads.changesets([("h-01", "cs-1")])) == [("h-01", "cs-1")]
    # the next group numbered after those heads goes in too, its seqs the ones it was given
    assert await store.write_planned(planned(await store.heads(), state("p3"), changeset="cs-2"))
    async with store.write() as tx:
        assert await tx.seqs([("premises", "p3")]) == {("premises", "p3"): 3}


async def test_a_group_numbered_before_another_commit_is_refused_and_changes_nothing(store: SqliteStore) -> None:
    stale = await store.heads()
    await write(store, state("other"))  # another writer (a second server process, say) got there first
    assert not await store.write_planned(planned(stale, state("p1")))
    assert await stored_ids(store) == ["other"]
    assert await store.heads() == Heads(1, 0)  # read back, so the next plan starts right


async def test_a_group_whose_change_set_was_answered_meanwhile_is_refused(store: SqliteStore) -> None:
    await write(store, answers=[StoredChangeset("h-01", "cs-1", b"hash", b"{}")])
    assert not await store.write_planned(planned(await store.heads(), state("p1")))
    assert await stored_ids(store) == []


async def test_a_group_merged_over_a_record_that_changed_or_appeared_is_refused(store: SqliteStore) -> None:
    first = state("p1")
    await write(store, first)
    heads = await store.heads()
    # merged from seq 0 of p1 (it was at 1): refused
    assert not await store.write_planned(planned(heads, state("p1", name="Sửa"), origin={("premises", "p1"): 0}))
    # merged as a new p1 (it exists): refused
    assert not await store.write_planned(planned(heads, state("p1", name="Sửa")))
    # merged from where it stands: written
    assert await store.write_planned(planned(heads, state("p1", name="Sửa"), origin={("premises", "p1"): first.seq}))
    async with store.read() as reads:
        assert (await reads.records([("premises", "p1")]))[("premises", "p1")].fields["name"] == "Sửa"


async def test_groups_sent_one_after_another_without_waiting_commit_in_order(store: SqliteStore) -> None:
    """The push writer sends a group numbered after the one still in flight."""
    heads = await store.heads()
    groups = []
    for n in range(6):
        group = planned(heads, state(f"p{n}a"), state(f"p{n}b"), changeset=f"cs-{n}", id=n + 1, after=n)
        heads = Heads(heads.seq + 2, heads.conflict)
        groups.append(group)
    assert await asyncio.gather(*(store.write_planned(g) for g in groups)) == [True] * 6
    assert await stored_ids(store) == [f"p{n}{x}" for n in range(6) for x in "ab"]


async def test_a_group_numbered_after_a_refused_one_is_refused_even_where_the_heads_agree(store: SqliteStore) -> None:
    """Heads are counts: once a refused group's change sets are written another way, the
    store may stand at the very heads the group after it expects, with other versions
    under those seqs. That group was merged over the refused one's: it must not go in."""
    assert await store.write_planned(planned(await store.heads(), state("p1"), changeset="cs-a", id=1))
    assert not await store.write_planned(planned(Heads(5, 0), state("p2"), changeset="cs-x", id=2, after=1))
    await write(store, state("p2", name="Khác"))  # x's record, written otherwise: heads (2, 0)
    assert await store.heads() == Heads(2, 0)
    assert not await store.write_planned(planned(Heads(2, 0), state("p3"), changeset="cs-y", id=3, after=2))
    # numbered after heads read from the store (nothing in flight): goes in
    assert await store.write_planned(planned(Heads(2, 0), state("p3"), changeset="cs-z", id=4))
    assert await stored_ids(store) == ["p1", "p2", "p3"]


def test_a_batch_stops_before_the_first_group_that_no_longer_stands(tmp_path: Path) -> None:
    conn = connect(tmp_path / "batch.db", 1000)
    _sql.migrate(conn)
    first = planned(Heads(0, 0), state("p1"), id=1)
    second = planned(Heads(1, 0), state("p2"), changeset="cs-2", id=2, after=1)
    wrong = planned(Heads(5, 0), state("p3"), changeset="cs-3", id=3, after=2)  # (numbered after heads that never were)
    after = planned(Heads(2, 0), state("p4"), changeset="cs-4", id=4, after=3)  # (after the wrong one)
    assert _sql.write_planned_batch(conn, [(first, NOW), (second, NOW), (wrong, NOW), (after, NOW)], 0) == (2, (2, 0))
    assert [row[0] for row in conn.execute("SELECT id FROM records ORDER BY seq")] == ["p1", "p2"]
    assert not conn.in_transaction
    conn.close()


def test_a_group_the_database_refuses_fails_alone_and_its_batch_leaves_nothing(tmp_path: Path) -> None:
    conn = connect(tmp_path / "batch.db", 1000)
    _sql.migrate(conn)
    first = planned(Heads(0, 0), state("p1"), conflicts=1)
    clash = planned(Heads(1, 1), state("p2"), changeset="cs-2")
    clash.conflicts = [conflict_row(1, clash.records[0].state)]  # conflict id 1 again: the database says no
    with pytest.raises(_sql.BatchFailed) as failed:
        _sql.write_planned_batch(conn, [(first, NOW), (clash, NOW)], 0)
    assert failed.value.index == 1
    assert isinstance(failed.value.error, sqlite3.IntegrityError)
    assert conn.execute("SELECT count(*) FROM records").fetchone()[0] == 0
    assert not conn.in_transaction
    conn.close()


def test_a_group_that_resolves_a_resolved_conflict_fails_alone_and_the_others_are_planned_again(tmp_path: Path) -> None:
    """Two supervisors resolve one conflict, beside an officer's push, all three in one
    batch of the writer process: the second resolution is refused, the officer's push and
    the first resolution are rolled back with it and answered False (planned again)."""
    conn = connect(tmp_path / "batch.db", 1000)
    _sql.migrate(conn)
    assert _sql.write_planned_batch(conn, [(planned(Heads(0, 0), state("p1"), conflicts=1, id=1), NOW)], 0) == (1, (1, 1))
    officer = planned(Heads(1, 1), state("p2"), changeset="cs-2", id=2, after=1)
    first = planned(Heads(2, 1), state("p3"), changeset="cs-3", id=3, after=2)
    second = planned(Heads(3, 1), state("p4"), changeset="cs-4", id=4, after=3)
    first.resolved = [ResolvedConflict(1, "u-sup-1", NOW, b'{"choice":"server"}')]
    second.resolved = [ResolvedConflict(1, "u-sup-2", NOW, b'{"choice":"client"}')]
    answers, last = _process._write_batch(conn, [(officer, NOW), (first, NOW), (second, NOW)], 1)
    assert answers[:2] == [(False, (-1, -1)), (False, (-1, -1))]
    assert isinstance(answers[2], AlreadyExists)
    assert last == 1
    assert conn.execute("SELECT count(*) FROM records").fetchone()[0] == 1
    assert not conn.in_transaction
    conn.close()


async def test_the_writer_process_answers_a_refused_group_with_its_error_and_the_rest_false(tmp_path: Path) -> None:
    s = SqliteStore(f"sqlite:///{tmp_path / 'refused.db'}")
    await s.open()
    try:
        first = planned(Heads(0, 0), state("p1"), conflicts=1)
        clash = planned(Heads(1, 1), state("p2"), changeset="cs-2")
        clash.conflicts = [conflict_row(1, clash.records[0].state)]
        answers = await asyncio.gather(s.write_planned(first), s.write_planned(clash), return_exceptions=True)
        # committed alone, or in one batch with the clash (then rolled back, planned again)
        assert answers[0] in (True, False)
        assert isinstance(answers[1], sqlite3.IntegrityError) or answers[1] is False
        assert await s.write_planned(planned(await s.heads(), state("p3"), changeset="cs-3"))
    finally:
        await s.close()


async def test_when_the_writer_process_dies_the_store_writes_in_its_own_thread(tmp_path: Path) -> None:
    s = SqliteStore(f"sqlite:///{tmp_path / 'dies.db'}")
    await s.open()
    try:
        assert await s.write_planned(planned(await s.heads(), state("p1")))
        process = s._writer_process
        assert process is not None and process.alive
        process._process.kill()
        await asyncio.to_thread(process._process.wait)
        with contextlib.suppress(StoreUnavailable):  # sent before the death was noticed: refused, not lost
            await s.write_planned(planned(await s.heads(), state("p2"), changeset="cs-2"))
        for _ in range(50):
            if not process.alive:
                break
            await asyncio.sleep(0.05)
        assert not process.alive
        assert await s.write_planned(planned(await s.heads(), state("p3"), changeset="cs-3"))
        assert "p3" in await stored_ids(s)
    finally:
        await s.close()


async def test_closing_the_store_lets_the_writer_process_finish_and_stop(tmp_path: Path) -> None:
    s = SqliteStore(f"sqlite:///{tmp_path / 'close.db'}")
    await s.open()
    pending = [asyncio.ensure_future(s.write_planned(planned(Heads(n, 0), state(f"p{n}"), changeset=f"cs-{n}"))) for n in range(3)]
    await asyncio.sleep(0)
    process = s._writer_process
    assert await asyncio.gather(*pending) == [True, True, True]
    await s.close()
    assert process is not None and process._process.returncode == 0
    again = SqliteStore(f"sqlite:///{tmp_path / 'close.db'}")
    await again.open()
    try:
        assert await stored_ids(again) == ["p0", "p1", "p2"]
    finally:
        await again.close()


async def test_a_store_that_cannot_start_its_writer_process_writes_in_its_own_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise OSError("Resource temporarily unavailable")

    monkeypatch.setattr("sync_server.stores.sqlite.store.WriterProcess", refuse)
    s = SqliteStore(f"sqlite:///{tmp_path / 'no-process.db'}")
    await s.open()
    try:
        assert await s.write_planned(planned(await s.heads(), state("p1")))
        assert s._writer_process is None
        assert await stored_ids(s) == ["p1"]
    finally:
        await s.close()


async def test_the_writer_process_and_the_servers_writes_queue_on_one_lock(tmp_path: Path) -> None:
    """SQLite's own lock is waited for by polling, so under a stream of pushes the
    server's other writes (a photo stored, an admin's change) could wait out the busy
    timeout; both writers queue on ``<store>-writelock`` instead (``_writer.WriteLock``)."""
    s = SqliteStore(f"sqlite:///{tmp_path / 'locked.db'}")
    await s.open()
    try:
        assert await s.write_planned(planned(await s.heads(), state("p1")))  # (the writer process is up)
        lock = WriteLock(s.path)
        try:
            with lock:
                push = asyncio.ensure_future(s.write_planned(planned(await s.heads(), state("p2"), changeset="cs-2")))
                other = asyncio.ensure_future(s.create(Ward(id="ba-dinh", name="Phường Ba Đình")))
                await asyncio.sleep(0.3)
                assert not push.done() and not other.done()  # both wait for the lock...
            assert await asyncio.wait_for(push, 10)  # ...and go on once it is free
            await asyncio.wait_for(other, 10)
        finally:
            lock.close()
    finally:
        await s.close()


def test_a_writer_leaves_checkpoints_to_the_background_until_the_log_passes_200_mb(tmp_path: Path) -> None:
    """Both writers (the process and the thread) open with ``connect``. Under a steady push
    the log cannot be reset while readers hold snapshots; at the old 40 MB a commit ran a
    checkpoint nearly every time (issue 16, bench/README "Fifth pass")."""
    conn = connect(tmp_path / "pragmas.db", 1000)
    try:
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 50_000
        assert conn.execute("PRAGMA journal_size_limit").fetchone()[0] == 256 * 2**20
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: no durability traded for it
    finally:
        conn.close()
