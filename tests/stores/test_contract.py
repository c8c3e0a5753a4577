"""The store contract: what every backend promises, checked on each of them directly.

Modelled on Kinto's ``kinto/core/storage/testing.py``: one suite, run against every
backend (``store_kind``: ``sqlite``, ``postgresql``), calling the store's own methods
with the store's own types; no HTTP, no writer. A new backend passes this file before
anything else. Grouped by role (``sync_server/stores/base.py``): sync (records,
pulls and cursors, idempotency, and the transaction contract the push writer relies
on), identity and sessions, reports, blobs, fleet health, lifecycle.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from collections.abc import AsyncIterator, Callable

import msgspec
import pytest

from schemas import Device, DeviceToken, Team, TeamUpdate, User, UserUpdate, Ward
from sync_server.engine.state import RecordState, encode_crdt, encode_doc
from sync_server.stores import (
    AlreadyExists,
    ConsoleSession,
    CursorExpired,
    CursorInvalid,
    HealthUpdate,
    ListQuery,
    NotFound,
    RecordRow,
    ResolvedConflict,
    Store,
    StoredChangeset,
    UnknownReference,
    store_for,
)
from sync_server.stores._paging import decode_cursor
from sync_server.stores.base import EnrolmentRow
from sync_server.stores.errors import Refused

from ._support import BA_DINH, LAM_SON, TS_LATER, conflict_row, ids_of, people, pull_all, state, write


@pytest.fixture
async def store(new_db_url: Callable[[], str]) -> AsyncIterator[Store]:
    s = store_for(new_db_url())
    await s.open()
    yield s
    await s.close()


def _position(store: Store, cursor: str) -> int:
    return decode_cursor(store.epoch, cursor)  # type: ignore[attr-defined]  # both backends keep an epoch


# -- sync: records -------------------------------------------------------------------------


async def test_a_saved_record_is_read_back_by_key_outside_and_inside_a_write(store: Store) -> None:
    await write(store, state("p1", name="Nhà trọ Lê Lợi"))
    async with store.read() as reads:
        outside = await reads.records([("premises", "p1"), ("premises", "nobody")])
    async with store.write() as tx:
        inside = await tx.records([("premises", "p1")])
    assert list(outside) == [("premises", "p1")]
    assert outside[("premises", "p1")].fields["name"] == "Nhà trọ Lê Lợi"  # NFC text, byte-exact
    assert outside[("premises", "p1")].seq > 0
    assert inside == outside


async def test_seqs_answers_the_current_seq_of_existing_records_only(store: Store) -> None:
    first = state("p1")
    await write(store, first)
    again = state("p1", name="Đổi tên")
    await write(store, again)
    async with store.write() as tx:
        seqs = await tx.seqs([("premises", "p1"), ("premises", "p2")])
    assert seqs == {("premises", "p1"): again.seq}
    assert again.seq > first.seq


async def test_a_record_has_one_row_a_new_version_replaces_the_old(store: Store) -> None:
    await write(store, state("p1", name="cũ"))
    await write(store, state("p1", name="mới"))
    page = await store.pull(None, None, 100, None)
    assert [msgspec.json.decode(d)["fields"]["name"] for d in page.docs] == ["mới"]


async def test_a_pulled_document_is_the_stored_document_byte_for_byte(store: Store) -> None:
    s = state("p1", name="Nhà nghỉ Hoàng Anh")
    await write(store, s)
    page = await store.pull(None, None, 10, None)
    assert page.docs == [encode_doc(s)]


async def test_a_tombstoned_record_is_pulled_as_deleted_with_its_fields(store: Store) -> None:
    s = state("p1")
    await write(store, s)
    s.tomb = TS_LATER
    await write(store, s)
    (doc,) = (await store.pull(None, None, 10, None)).docs
    assert msgspec.json.decode(doc)["deleted"] is True
    assert msgspec.json.decode(doc)["fields"]["name"] == "Nhà p1"
    async with store.read() as reads:
        assert (await reads.records([("premises", "p1")]))[("premises", "p1")].tomb == TS_LATER


# -- sync: pulls and cursors -------------------------------------------------------------------


async def test_an_empty_store_pulls_nothing_and_its_cursor_pulls_nothing_again(store: Store) -> None:
    page = await store.pull(None, None, 10, None)
    assert (page.docs, page.more) == ([], False)
    again = await store.pull(None, page.cursor, 10, None)
    assert (again.docs, again.more) == ([], False)


async def test_pull_serves_records_in_commit_order(store: Store) -> None:
    await write(store, state("b"))
    await write(store, state("a"), state("c"))
    await write(store, state("b", name="again"))
    served, _, _ = await pull_all(store)
    assert served == ["a", "c", "b"]  # b moved behind its newer version, once


async def test_following_cursors_serves_every_record_once_without_gaps(store: Store) -> None:
    expected = []
    for batch in range(5):
        names = [f"r{batch}-{n}" for n in range(5)]
        await write(store, *(state(name) for name in names))
        expected += names
    served, _, pages = await pull_all(store, limit=4)
    assert served == expected
    assert pages == 7  # 25 records, 4 a page: 6 full pages and one of 1


async def test_more_is_true_until_the_last_page(store: Store) -> None:
    await write(store, *(state(f"r{n}") for n in range(5)))
    first = await store.pull(None, None, 3, None)
    last = await store.pull(None, first.cursor, 3, None)
    exact = await store.pull(None, None, 5, None)
    assert (len(first.docs), first.more, len(last.docs), last.more) == (3, True, 2, False)
    assert (len(exact.docs), exact.more) == (5, False)


async def test_a_page_stops_before_the_record_that_would_pass_max_bytes(store: Store) -> None:
    await write(store, *(state(f"r{n}", name="x" * 300) for n in range(6)))
    size = len((await store.pull(None, None, 1, None)).docs[0]) + 1
    page = await store.pull(None, None, 100, None, max_bytes=size * 2 + 10)
    assert len(page.docs) == 2 and page.more
    served, _, pages = await pull_all(store, limit=100, max_bytes=size * 2 + 10)
    assert len(served) == len(set(served)) == 6 and pages == 3


async def test_a_page_holds_one_record_even_past_max_bytes(store: Store) -> None:
    await write(store, state("big", name="x" * 2000), state("next"))
    page = await store.pull(None, None, 100, None, max_bytes=10)
    assert ids_of(page.docs) == ["big"] and page.more


async def test_pull_serves_only_the_asked_wards(store: Store) -> None:
    await write(store, state("a", ward=LAM_SON), state("b", ward=BA_DINH), state("c", ward="hoan-kiem"))
    assert (await pull_all(store, wards=frozenset({LAM_SON})))[0] == ["a"]
    assert (await pull_all(store, wards=frozenset({LAM_SON, "hoan-kiem"})))[0] == ["a", "c"]
    assert (await pull_all(store))[0] == ["a", "b", "c"]


async def test_no_ward_at_all_pulls_nothing_and_keeps_the_cursor(store: Store) -> None:
    await write(store, state("a"))
    start = (await store.pull(None, None, 10, None)).cursor
    await write(store, state("b"))
    page = await store.pull(frozenset(), start, 10, None)
    assert (page.docs, page.cursor, page.more) == ([], start, False)


async def test_pull_serves_only_the_asked_collections(store: Store) -> None:
    await write(store, state("p1"), state("c1", collection="checks"), state("t1", collection="tips"))
    served, _, _ = await pull_all(store, collections=frozenset({"checks", "tips"}))
    assert served == ["c1", "t1"]


async def test_a_record_changed_after_a_cursor_is_served_again_as_it_now_stands(store: Store) -> None:
    await write(store, state("p1", name="cũ"), state("p2"))
    _, cursor, _ = await pull_all(store)
    await write(store, state("p1", name="mới"))
    page = await store.pull(None, cursor, 10, None)
    assert [msgspec.json.decode(d)["fields"]["name"] for d in page.docs] == ["mới"]


@pytest.mark.parametrize("cursor", ["***", "bm90LWEtY3Vyc29y", base64.urlsafe_b64encode(b"epoch:-1").decode(), base64.urlsafe_b64encode(b"e:99999999999999999999").decode()])
async def test_an_unreadable_cursor_raises_cursor_invalid(store: Store, cursor: str) -> None:
    with pytest.raises(CursorInvalid):
        await store.pull(None, cursor, 10, None)


async def test_a_cursor_of_another_epoch_raises_cursor_expired(store: Store) -> None:
    with pytest.raises(CursorExpired):
        await store.pull(None, base64.urlsafe_b64encode(b"another-epoch:0").decode(), 10, None)


async def test_a_cursor_ahead_of_the_store_raises_cursor_expired(store: Store) -> None:
    await write(store, state("p1"))
    _, cursor, _ = await pull_all(store)
    ahead = base64.urlsafe_b64encode(f"{store.epoch}:{_position(store, cursor) + (1 << 40)}".encode()).decode()  # type: ignore[attr-defined]
    with pytest.raises(CursorExpired):
        await store.pull(None, ahead, 10, None)


async def test_a_store_reopened_keeps_its_records_epoch_and_cursors(new_db_url: Callable[[], str]) -> None:
    url = new_db_url()
    first = store_for(url)
    await first.open()
    await write(first, state("p1"))
    _, cursor, _ = await pull_all(first)
    await first.close()
    second = store_for(url)
    await second.open()
    try:
        await write(second, state("p2"))
        assert (await pull_all(second, cursor))[0] == ["p2"]
    finally:
        await second.close()


# -- sync: idempotency of change sets ---------------------------------------------------------------


async def test_a_change_set_answer_is_kept_under_its_device_and_id(store: Store) -> None:
    answer = StoredChangeset("h-01", "cs-1", b"\x01" * 32, b'{"changeset_id":"cs-1"}')
    await write(store, state("p1"), answers=[answer])
    async with store.read() as reads:
        found = await reads.changesets([("h-01", "cs-1"), ("h-02", "cs-1"), ("h-01", "cs-2")])
    async with store.write() as tx:
        inside = await tx.changesets([("h-01", "cs-1")])
    assert found == inside == {("h-01", "cs-1"): answer}


async def test_one_change_set_id_is_separate_on_two_devices(store: Store) -> None:
    one = StoredChangeset("h-01", "cs-1", b"a", b"1")
    two = StoredChangeset("h-02", "cs-1", b"b", b"2")
    await write(store, answers=[one])
    await write(store, answers=[two])
    async with store.read() as reads:
        assert await reads.changesets([("h-01", "cs-1"), ("h-02", "cs-1")]) == {("h-01", "cs-1"): one, ("h-02", "cs-1"): two}


async def test_a_second_answer_for_one_change_set_fails_and_the_first_stays(store: Store) -> None:
    """The writer checks ``tx.changesets`` first; should two writers race past it, the
    store's key refuses the second answer, and with it the second transaction's records."""
    first = StoredChangeset("h-01", "cs-1", b"a", b"first")
    await write(store, answers=[first])
    with pytest.raises(Exception):  # noqa: B017 - the driver's own unique violation
        await write(store, state("p-second"), answers=[StoredChangeset("h-01", "cs-1", b"a", b"second")])
    async with store.read() as reads:
        assert await reads.changesets([("h-01", "cs-1")]) == {("h-01", "cs-1"): first}
        assert await reads.records([("premises", "p-second")]) == {}


# -- sync: the transaction contract the push writer relies on (sync_server/writer.py) ---------------


async def test_a_transaction_that_fails_leaves_nothing(store: Store) -> None:
    """``PushWriter._finish`` retries a failed group's change sets one by one: that is
    sound only if the failed transaction wrote nothing at all (records, edit log,
    conflicts, answers) and the store takes the next transaction as usual."""
    s = state("p1")
    with pytest.raises(RuntimeError):
        async with store.write() as tx:
            s.seq = await tx.next_seqs(1)
            first_conflict = await tx.next_conflict_ids(1)
            await tx.save(
                [RecordRow(s, encode_doc(s), encode_crdt(s))],
                [],
                [conflict_row(first_conflict, s)],
                [StoredChangeset("h-01", "cs-1", b"a", b"1")],
            )
            raise RuntimeError("the writer failed after saving")
    assert (await pull_all(store))[0] == []
    async with store.read() as reads:
        assert await reads.records([("premises", "p1")]) == {}
        assert await reads.changesets([("h-01", "cs-1")]) == {}
    assert await store.conflicts([LAM_SON], None, None, None, 10) == []
    await write(store, state("p2"))
    assert (await pull_all(store))[0] == ["p2"]


async def test_a_transaction_the_database_refuses_leaves_nothing(store: Store) -> None:
    """A failure inside the database (a trigger here; a full disk, a constraint in
    life) surfaces from the ``write()`` block, at ``save`` or at commit (SQLite writes at
    commit), and no part of the transaction stays: the writer's answer to that change
    set is an error and nothing it wrote is pulled."""
    from tests import storedb

    await storedb.fail_inserts_of(store.url, "p-bad", "refused on purpose")
    with pytest.raises(Exception, match="refused on purpose"):
        await write(store, state("p-good"), state("p-bad"), edits=True, answers=[StoredChangeset("h-01", "cs-1", b"a", b"1")])
    assert (await pull_all(store))[0] == []
    assert await store.history("premises", "p-good") is None
    async with store.read() as reads:
        assert await reads.changesets([("h-01", "cs-1")]) == {}


async def test_writes_are_invisible_until_the_transaction_commits(store: Store) -> None:
    """The writer answers a push only after ``write()`` has exited: nothing of a
    transaction may be pulled or read before then (a device must never pull a version
    whose change set could still fail)."""
    saved, release = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        async with store.write() as tx:
            s = state("p1")
            s.seq = await tx.next_seqs(1)
            await tx.save([RecordRow(s, encode_doc(s), encode_crdt(s))], [], [], [])
            saved.set()
            await release.wait()

    task = asyncio.create_task(writer())
    await saved.wait()
    try:
        assert (await store.pull(None, None, 10, None)).docs == []
        async with store.read() as reads:
            assert await reads.records([("premises", "p1")]) == {}
    finally:
        release.set()
        await task
    assert (await pull_all(store))[0] == ["p1"]


async def test_the_transaction_cursor_is_just_after_its_own_writes(store: Store) -> None:
    """The push answer carries ``tx.cursor()``: pulling from it after the commit serves
    none of that transaction's records (the device has them from the answer) and every
    later commit."""
    await write(store, state("before"))
    cursor = await write(store, state("mine-1"), state("mine-2"))
    await write(store, state("after"))
    assert (await pull_all(store, cursor))[0] == ["after"]


async def test_a_transaction_that_writes_no_record_still_has_a_cursor(store: Store) -> None:
    """A group of replays or rejections numbers nothing (``next_seqs(0)``) yet answers a
    cursor: one that skips nothing committed later."""
    await write(store, state("p1"))
    async with store.write() as tx:
        await tx.next_seqs(0)
        cursor = tx.cursor()
    await write(store, state("p2"))
    assert (await pull_all(store, cursor))[0] == ["p2"]


async def test_cursors_only_move_forward_across_commits(store: Store) -> None:
    """Each committed transaction's cursor is past the one before: a device that keeps
    the highest cursor it was answered never goes back."""
    positions = [_position(store, await write(store, state(f"p{n}"))) for n in range(5)]
    assert positions == sorted(positions) and len(set(positions)) == 5


async def test_numbers_of_a_later_transaction_are_above_every_committed_one(store: Store) -> None:
    """``next_seqs`` and ``next_conflict_ids`` give consecutive numbers that no other
    transaction gets: the writer numbers a group's versions and conflicts from them
    (``first + offset``), even after a transaction that failed."""
    a = state("a")
    await write(store, a, conflicts=2)
    with pytest.raises(RuntimeError):
        async with store.write() as tx:
            await tx.next_seqs(3)
            await tx.next_conflict_ids(3)
            raise RuntimeError("failed")
    async with store.write() as tx:
        first_seq = await tx.next_seqs(2)
        first_conflict = await tx.next_conflict_ids(2)
        b, c = state("b"), state("c")
        b.seq, c.seq = first_seq, first_seq + 1
        await tx.save([RecordRow(x, encode_doc(x), encode_crdt(x)) for x in (b, c)], [], [conflict_row(first_conflict, b), conflict_row(first_conflict + 1, c)], [])
    assert first_seq > a.seq
    ids = [c.id for c in await store.conflicts([LAM_SON], None, None, None, 10)]
    assert ids == ["c-1", "c-2", f"c-{first_conflict}", f"c-{first_conflict + 1}"] and first_conflict > 2


async def test_a_plan_made_outside_a_transaction_is_found_stale_inside_one(store: Store) -> None:
    """The writer merges from ``read()`` outside the transaction, then, inside ``write()``,
    compares ``tx.seqs`` of the records it merged with the seqs it merged from, and looks
    for its change sets' answers again: a record changed, a record created, or a change
    set answered since must all show there."""
    await write(store, state("p1"))
    async with store.read() as reads:
        origin = {key: s.seq for key, s in (await reads.records([("premises", "p1"), ("premises", "p-new")])).items()}
        assert await reads.changesets([("h-01", "cs-1")]) == {}
    await write(store, state("p1", name="changed"), state("p-new"), answers=[StoredChangeset("h-01", "cs-1", b"a", b"1")])
    async with store.write() as tx:
        now = await tx.seqs([("premises", "p1"), ("premises", "p-new")])
        answered = await tx.changesets([("h-01", "cs-1")])
    assert now != origin and now[("premises", "p1")] > origin[("premises", "p1")] and ("premises", "p-new") in now
    assert list(answered) == [("h-01", "cs-1")]


async def test_the_seqs_a_transaction_numbers_are_the_seqs_read_back_after_it_commits(store: Store) -> None:
    """The writer plans the next group while this one commits, taking the records this
    one writes from memory (its overlay) with the seqs it numbered them; the next
    transaction then checks them with ``tx.seqs``. That holds only if the store keeps
    each version under exactly the seq it was given."""
    a, b = state("a"), state("b")
    await write(store, a, b)
    async with store.write() as tx:
        assert await tx.seqs([("premises", "a"), ("premises", "b")]) == {("premises", "a"): a.seq, ("premises", "b"): b.seq}
    async with store.read() as reads:
        assert {k: s.seq for k, s in (await reads.records([("premises", "a")])).items()} == {("premises", "a"): a.seq}


async def test_a_transaction_reads_what_a_transaction_before_it_committed(store: Store) -> None:
    """Two write transactions on one record, the second begun while the first still
    runs: the second reads the first's version (after it commits), never the one
    before, so it merges onto it and nothing is lost (SQLite: one writer at a time;
    PostgreSQL: the record's key lock and READ COMMITTED)."""
    await write(store, state("p1", name="v1"))
    first_in = asyncio.Event()
    seen: dict[str, str] = {}

    async def first() -> None:
        async with store.write() as tx:
            await tx.records([("premises", "p1")])
            first_in.set()
            await asyncio.sleep(0.1)
            s = state("p1", name="v2")
            s.seq = await tx.next_seqs(1)
            await tx.save([RecordRow(s, encode_doc(s), encode_crdt(s))], [], [], [])

    async def second() -> None:
        await first_in.wait()
        async with store.write() as tx:
            seen["name"] = (await tx.records([("premises", "p1")]))[("premises", "p1")].fields["name"]

    await asyncio.gather(first(), second())
    assert seen == {"name": "v2"}


async def test_a_reader_following_cursors_meets_every_version_committed_meanwhile(store: Store) -> None:
    """Pulls interleaved with commits: whatever order they come in, following cursors
    serves every record at least once, in its latest version at the end."""
    served: list[str] = []
    cursor = None
    for n in range(6):
        await write(store, state(f"p{n}"), state("shared", name=f"v{n}"))
        if n % 2:
            more, cursor, _ = await pull_all(store, cursor, limit=2)
            served += more
    more, cursor, _ = await pull_all(store, cursor, limit=2)
    served += more
    assert {f"p{n}" for n in range(6)} | {"shared"} == set(served)


async def test_resolving_a_conflict_commits_with_the_transaction_and_only_once(store: Store) -> None:
    """A supervisor's resolution is written by the push that carries it out: marked in
    the same transaction as its edit. A second resolution of the same conflict fails
    its whole transaction with AlreadyExists (the writer answers it 409), edit included."""
    await write(store, state("p1"), conflicts=1)
    await write(store, state("p1", name="chosen"))  # (the edit is any record write)
    resolution = ResolvedConflict(1, "u-super", "2026-11-23T09:00:00.000Z", b'{"choice":"server"}')
    async with store.write() as tx:
        await tx.next_seqs(0)
        await tx.resolve_conflicts([resolution])
        await tx.save([], [], [], [])
    done = await store.conflict(1)
    assert done is not None and (done.status, done.resolved_by, done.resolution) == ("resolved", "u-super", {"choice": "server"})
    with pytest.raises(AlreadyExists):
        async with store.write() as tx:
            s = state("p1", name="second resolution")
            s.seq = await tx.next_seqs(1)
            await tx.resolve_conflicts([ResolvedConflict(1, "u-admin", "2026-11-23T09:01:00.000Z", b'{"choice":"client"}')])
            await tx.save([RecordRow(s, encode_doc(s), encode_crdt(s))], [], [], [])
    async with store.read() as reads:
        assert (await reads.records([("premises", "p1")]))[("premises", "p1")].fields["name"] == "chosen"
    assert (await store.conflict(1)).resolved_by == "u-super"  # type: ignore[union-attr]


# -- identity ----------------------------------------------------------------------------------


async def test_created_entities_are_listed_in_id_order(store: Store) -> None:
    await people(store)
    assert [w.id for w in await store.entities(Ward)] == [BA_DINH, LAM_SON]  # type: ignore[union-attr]
    assert await store.entities(Team) == [Team(id="t-lamson", ward_id=LAM_SON, name="Tổ 1")]
    users = await store.entities(User)
    assert [u.id for u in users] == ["u-admin", "u-officer", "u-super"]  # type: ignore[union-attr]
    assert users[1] == User(id="u-officer", name="Nguyễn Văn An", role="officer", team_ids=["t-lamson"])
    (device,) = await store.entities(Device)
    assert isinstance(device, Device) and (device.device_id, device.user_id, device.revoked_at) == ("h-01", "u-officer", None)


async def test_a_token_hash_gives_its_principal_and_scope(store: Store) -> None:
    await people(store)
    await store.create(DeviceToken(device_id="h-admin", user_id="u-admin", token=""), "hash-admin")
    officer = await store.principal("hash-h01")
    admin = await store.principal("hash-admin")
    assert officer is not None and (officer.user_id, officer.device_id, officer.role, officer.wards) == ("u-officer", "h-01", "officer", frozenset({LAM_SON}))
    assert officer.registered_ms > 0
    assert admin is not None and admin.wards == frozenset({LAM_SON, BA_DINH})
    assert await store.principal("hash-unknown") is None


async def test_creating_twice_or_naming_what_does_not_exist_is_refused(store: Store) -> None:
    await people(store)
    with pytest.raises(AlreadyExists):
        await store.create(Ward(id=LAM_SON, name="again"))
    with pytest.raises(UnknownReference):
        await store.create(Team(id="t-x", ward_id="no-ward", name="x"))
    with pytest.raises(UnknownReference):
        await store.create(User(id="u-x", name="x", role="officer", team_ids=["no-team"]))
    with pytest.raises(UnknownReference):
        await store.create(DeviceToken(device_id="h-x", user_id="no-user", token=""), "hash-x")


async def test_a_revoked_device_stops_at_once_and_a_new_token_brings_it_back(store: Store) -> None:
    await people(store)
    await store.revoke_device("h-01")
    assert await store.principal("hash-h01") is None
    assert await store.reissue_token("h-01", "hash-new") == "u-officer"
    assert await store.principal("hash-h01") is None
    assert (await store.principal("hash-new")) is not None
    with pytest.raises(NotFound):
        await store.revoke_device("h-nobody")
    with pytest.raises(NotFound):
        await store.reissue_token("h-nobody", "hash-y")


async def test_updating_a_user_changes_his_scope_and_disabling_stops_his_devices(store: Store) -> None:
    await people(store)
    moved = await store.update_user("u-officer", UserUpdate(name="Nguyễn Văn Ân", team_ids=[], ward_ids=[BA_DINH]))
    assert (moved.name, moved.team_ids, moved.ward_ids) == ("Nguyễn Văn Ân", [], [BA_DINH])
    assert (await store.principal("hash-h01")).wards == frozenset({BA_DINH})  # type: ignore[union-attr]
    await store.update_user("u-officer", UserUpdate(disabled=True))
    assert await store.principal("hash-h01") is None
    with pytest.raises(NotFound):
        await store.update_user("u-nobody", UserUpdate(name="x"))
    with pytest.raises(UnknownReference):
        await store.update_user("u-super", UserUpdate(ward_ids=["no-ward"]))


async def test_one_user_is_read_alone_with_his_teams_and_wards_disabled_or_not(store: Store) -> None:
    await people(store)
    listed = {u.id: u for u in await store.entities(User)}  # type: ignore[union-attr]
    assert await store.user("u-officer") == listed["u-officer"]
    await store.update_user("u-super", UserUpdate(disabled=True))
    alone = await store.user("u-super")
    assert alone is not None and alone.disabled and alone.ward_ids == [BA_DINH]
    assert await store.user("u-nobody") is None


async def test_the_last_enabled_admin_cannot_be_demoted_or_disabled(store: Store) -> None:
    await people(store)
    with pytest.raises(Refused):
        await store.update_user("u-admin", UserUpdate(disabled=True))
    with pytest.raises(Refused):
        await store.update_user("u-admin", UserUpdate(role="supervisor"))
    await store.update_user("u-super", UserUpdate(role="admin"))
    assert (await store.update_user("u-admin", UserUpdate(disabled=True))).disabled


async def test_wards_are_renamed_and_teams_move_only_before_their_first_record(store: Store) -> None:
    await people(store)
    assert await store.rename_ward(LAM_SON, "Phường Lam Sơn mới") == Ward(id=LAM_SON, name="Phường Lam Sơn mới")
    moved = await store.update_team("t-lamson", TeamUpdate(ward_id=BA_DINH, name="Tổ 2"))
    assert moved == Team(id="t-lamson", ward_id=BA_DINH, name="Tổ 2")
    await write(store, state("c1", collection="checks", ward=BA_DINH, team_id="t-lamson", started_at="2026-11-23T08:00:00+07:00"))
    with pytest.raises(Refused):
        await store.update_team("t-lamson", TeamUpdate(ward_id=LAM_SON))
    with pytest.raises(NotFound):
        await store.rename_ward("no-ward", "x")
    with pytest.raises(NotFound):
        await store.update_team("no-team", TeamUpdate(name="x"))


def _enrolment(device: str, user: str | None, code: str, expires: str = "2026-11-23T09:00:00.000Z") -> EnrolmentRow:
    return EnrolmentRow(device, user, code, f"placeholder-{device}", "2026-11-23T08:00:00.000Z", expires)


async def test_an_enrolment_code_is_exchanged_once_for_a_token(store: Store) -> None:
    await people(store)
    assert await store.add_enrolment(_enrolment("h-new", "u-officer", "code-1")) == "u-officer"
    assert await store.principal("placeholder-h-new") is not None  # registered, under a token nobody holds
    now = "2026-11-23T08:30:00.000Z"
    assert await store.redeem_enrolment("code-1", "hash-h-new", now) == ("h-new", "u-officer")
    assert await store.redeem_enrolment("code-1", "hash-again", now) is None
    assert (await store.principal("hash-h-new")) is not None and await store.principal("placeholder-h-new") is None


async def test_an_enrolment_code_dies_when_it_expires_or_is_replaced(store: Store) -> None:
    await people(store)
    await store.add_enrolment(_enrolment("h-01", None, "code-old"))
    await store.add_enrolment(_enrolment("h-01", None, "code-new"))
    assert await store.redeem_enrolment("code-old", "hash-a", "2026-11-23T08:30:00.000Z") is None
    assert await store.redeem_enrolment("code-new", "hash-b", "2026-11-23T09:00:00.000Z") is None  # expired at 09:00
    with pytest.raises(NotFound):
        await store.add_enrolment(_enrolment("h-unknown", None, "code-x"))
    with pytest.raises(Refused):
        await store.add_enrolment(_enrolment("h-01", "u-super", "code-y"))


async def test_sessions_live_while_used_and_end_when_idle_or_on_a_new_password(store: Store) -> None:
    await people(store)
    await store.set_password("u-super", "argon-hash")
    assert await store.password_of("u-super") == ("supervisor", "argon-hash")
    assert await store.password_of("u-nobody") is None
    await store.create_session("sid-1", "u-super", "csrf-1", now=1000.0)
    assert await store.session("sid-1", idle_s=600, now=1100.0) == ConsoleSession(user_id="u-super", csrf="csrf-1")
    assert await store.session("sid-1", idle_s=600, now=1650.0) is not None  # seen at 1100: still alive
    assert await store.session("sid-1", idle_s=600, now=2400.0) is None  # idle past 600 s: ended
    assert await store.session("sid-1", idle_s=600, now=2401.0) is None
    await store.create_session("sid-2", "u-super", "csrf-2", now=3000.0)
    await store.set_password("u-super", "another-hash")
    assert await store.session("sid-2", idle_s=600, now=3001.0) is None
    await store.create_session("sid-3", "u-super", "csrf-3", now=4000.0)
    await store.end_session("sid-3")
    assert await store.session("sid-3", idle_s=600, now=4001.0) is None
    with pytest.raises(NotFound):
        await store.set_password("u-nobody", "x")


async def test_a_user_principal_carries_his_scope_for_the_console(store: Store) -> None:
    await people(store)
    found = await store.user_principal("u-super", "console")
    assert found is not None and (found.user_id, found.device_id, found.role, found.wards) == ("u-super", "console", "supervisor", frozenset({BA_DINH}))
    assert await store.user_principal("u-nobody", "console") is None


async def test_failed_sign_ins_are_counted_per_key_and_cleared(store: Store) -> None:
    for at in (100.0, 200.0, 300.0):
        await store.note_sign_in(["user:u-super", "ip:10.0.0.1"], failed=True, now=at)
    await store.note_sign_in(["ip:10.0.0.2"], failed=True, now=300.0)
    assert await store.sign_in_failures(["user:u-super", "ip:10.0.0.9"], since=150.0) == 2
    assert await store.sign_in_failures(["ip:10.0.0.2"], since=0.0) == 1
    await store.note_sign_in(["user:u-super", "ip:10.0.0.1"], failed=False, now=400.0)
    assert await store.sign_in_failures(["user:u-super", "ip:10.0.0.1"], since=0.0) == 0


# -- reports ------------------------------------------------------------------------------------


def _check(record_id: str, ward: str = LAM_SON, started_at: str = "2026-11-23T08:00:00+07:00", **fields: object) -> RecordState:
    return state(record_id, "checks", ward, premises_id="p1", kind="residence", started_at=started_at, created_by="u-officer", **fields)


async def test_reports_count_what_is_written_with_the_record_and_forget_deleted_records(store: Store) -> None:
    await people(store)
    await write(
        store,
        state("p1", kind="boarding_house"),
        _check("c1"),
        _check("c2"),
        _check("c-other", ward=BA_DINH),
        state("v1", "violations", check_id="c1", premises_id="p1", category="fire_safety", status="open", fine_vnd=500_000, created_at="2026-11-23T08:10:00+07:00"),
    )
    report = await store.summary([LAM_SON], None, None)
    assert (report.checks, report.premises_checked, report.violations_recorded, report.fines_vnd) == (2, 1, 1, 500_000)
    assert report.violations_by_category == {"fire_safety": 1} and report.premises_checked_by_kind == {"boarding_house": 1}
    gone = state("c2", "checks", LAM_SON)
    gone.tomb = TS_LATER
    await write(store, gone)
    assert (await store.summary([LAM_SON], None, None)).checks == 1
    assert (await store.summary([LAM_SON, BA_DINH], None, None)).checks == 2


async def test_checks_are_grouped_by_the_wards_local_day(store: Store) -> None:
    await people(store)
    await write(store, state("p1"), _check("late", started_at="2026-11-22T23:30:00+00:00"), _check("early", started_at="2026-11-23T01:00:00+00:00"))
    rows = await store.check_rows([LAM_SON], "day", None, None)
    assert [(r.key, r.checks) for r in rows] == [("2026-11-23", 2)]  # 06:30 and 08:00 in Hà Nội
    dated = await store.check_rows([LAM_SON], "day", dt.date(2026, 11, 24), None)
    assert dated == []


async def test_a_record_list_pages_in_its_order_and_refuses_a_foreign_position(store: Store) -> None:
    await people(store)
    await write(store, state("p1"), *(_check(f"c{n}", started_at=f"2026-11-{10 + n}T08:00:00+07:00") for n in range(5)))
    first = await store.record_list(ListQuery("checks", [LAM_SON], sort="-date", limit=3))
    rest = await store.record_list(ListQuery("checks", [LAM_SON], sort="-date", after=first[-1].position, limit=3))
    assert ids_of(r.doc for r in first + rest) == ["c4", "c3", "c2", "c1", "c0"]
    with pytest.raises(CursorInvalid):
        await store.record_list(ListQuery("checks", [LAM_SON], after=["x", "y", "z"]))


async def test_premises_are_found_by_folded_word_prefixes(store: Store) -> None:
    await people(store)
    await write(store, state("p1", name="Nhà trọ Hoàng Anh", kind="boarding_house"), state("p2", name="Karaoke Ánh Dương", kind="karaoke"))
    hits = await store.search_premises([LAM_SON], ["hoang", "an"], None, 10)
    assert [h.id for h in hits] == ["p1"] and hits[0].name == "Nhà trọ Hoàng Anh"
    assert await store.search_premises([BA_DINH], ["hoang"], None, 10) == []
    assert [h.id for h in await store.search_premises([LAM_SON], ["anh"], "karaoke", 10)] == ["p2"]


async def test_history_answers_a_records_edits_oldest_first(store: Store) -> None:
    await write(store, state("p1", name="cũ"), edits=True)
    await write(store, state("p1", name="mới"), edits=True)
    history = await store.history("premises", "p1")
    assert history is not None and history.ward_id == LAM_SON
    assert [e.changes["name"].new for e in history.edits] == ["cũ", "mới"]
    assert await store.history("premises", "p-none") is None


async def test_conflicts_are_listed_by_ward_oldest_first_and_read_one_by_one(store: Store) -> None:
    await write(store, state("p1"), conflicts=3)
    await write(store, state("t1", "tips", BA_DINH), conflicts=1)
    listed = await store.conflicts([LAM_SON], "open", None, None, 10)
    assert [c.id for c in listed] == ["c-1", "c-2", "c-3"]
    assert [c.id for c in await store.conflicts([LAM_SON], None, None, 1, 1)] == ["c-2"]
    assert [c.id for c in await store.conflicts([LAM_SON, BA_DINH], None, "tips", None, 10)] == ["c-4"]
    assert await store.conflicts([LAM_SON], "resolved", None, None, 10) == []
    one = await store.conflict(2)
    assert one is not None and (one.server.value, one.client.value, one.winner, one.status) == ("cũ", "mới", "client", "open")
    assert await store.conflict(99) is None


# -- blobs -------------------------------------------------------------------------------------

PHOTO = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


async def test_a_blob_is_readable_in_the_wards_of_the_records_that_name_it(store: Store) -> None:
    access = await store.blob_access(PHOTO, [LAM_SON])
    assert (access.named, access.size) == (False, None)
    await write(store, state("v1", "violations", photos=[PHOTO]))
    assert (await store.blob_access(PHOTO, [LAM_SON])).named
    assert not (await store.blob_access(PHOTO, [BA_DINH])).named
    await store.blob_stored(PHOTO, 1234, "h-01")
    assert (await store.blob_access(PHOTO, [LAM_SON])).size == 1234


async def test_missing_blobs_are_named_and_not_uploaded_in_id_order(store: Store) -> None:
    await write(store, state("v1", "violations", photos=[OTHER, PHOTO]), state("v2", "violations", BA_DINH, photos=["sha256:" + "c" * 64]))
    assert await store.missing_blobs([LAM_SON], None, 10) == [PHOTO, OTHER]
    assert await store.missing_blobs([LAM_SON], PHOTO, 10) == [OTHER]
    await store.blob_stored(PHOTO, 10)
    assert await store.missing_blobs([LAM_SON], None, 10) == [OTHER]


async def test_unnamed_bytes_count_against_their_first_uploader_until_a_record_names_them(store: Store) -> None:
    await store.blob_stored(PHOTO, 100, "h-01")
    await store.blob_stored(PHOTO, 100, "h-02")  # idempotent: the first uploader stays
    await store.blob_stored(OTHER, 50, "h-01")
    assert (await store.unnamed_blob_bytes("h-01"), await store.unnamed_blob_bytes("h-02")) == (150, 0)
    await write(store, state("v1", "violations", photos=[PHOTO]))
    assert await store.unnamed_blob_bytes("h-01") == 50


async def test_only_old_unnamed_blobs_are_forgotten(store: Store) -> None:
    await store.blob_stored(PHOTO, 100, "h-01")
    await store.blob_stored(OTHER, 100, "h-01")
    await write(store, state("v1", "violations", photos=[PHOTO]))
    assert await store.forget_unnamed_blobs("2000-01-01T00:00:00.000Z", 10) == []  # none stored that early
    assert await store.forget_unnamed_blobs("2999-01-01T00:00:00.000Z", 10) == [OTHER]
    assert (await store.blob_access(PHOTO, [LAM_SON])).size == 100
    assert (await store.blob_access(OTHER, [LAM_SON])).size is None


# -- fleet health --------------------------------------------------------------------------------


async def test_health_updates_merge_into_one_row_per_device(store: Store) -> None:
    await people(store)
    await store.record_health([])
    await store.record_health([HealthUpdate("h-01", last_push_at="2026-11-23T08:00:00.000Z", client="app", pending=3, rejected=1)])
    await store.record_health(
        [
            HealthUpdate("h-01", last_pull_at="2026-11-23T08:01:00.000Z", pending=0, rejected=2),
            HealthUpdate("h-01", clock_offset_ms=-120, rejected=1),
        ]
    )
    (health,) = await store.fleet_health(None)
    assert (health.last_push_at, health.last_pull_at, health.client, health.pending, health.clock_offset_ms, health.rejected) == (
        "2026-11-23T08:00:00.000Z",
        "2026-11-23T08:01:00.000Z",
        "app",
        0,
        -120,
        4,
    )


async def test_fleet_health_lists_devices_of_the_asked_wards_even_never_seen(store: Store) -> None:
    await people(store)
    await store.create(DeviceToken(device_id="h-super", user_id="u-super", token=""), "hash-super")
    await store.revoke_device("h-super")
    everyone = await store.fleet_health(None)
    assert [(d.device_id, d.wards, d.revoked, d.last_push_at, d.rejected) for d in everyone] == [
        ("h-01", [LAM_SON], False, None, 0),
        ("h-super", [BA_DINH], True, None, 0),
    ]
    assert [d.device_id for d in await store.fleet_health([BA_DINH])] == ["h-super"]


# -- lifecycle ---------------------------------------------------------------------------------


async def test_ping_answers_true_while_open_and_false_once_closed(new_db_url: Callable[[], str]) -> None:
    s = store_for(new_db_url())
    await s.open()
    assert await s.ping() is True
    await s.close()
    assert await s.ping() is False
