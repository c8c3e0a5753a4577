"""The push writer: change sets merged in groups, committed one group at a time.

Handlers queue change sets; one writer task takes whatever is waiting (up to a
bound) as a group and handles it in two steps:

1. **plan** (no transaction): read the change sets' stored answers and the
   records they touch, and merge the change sets one after the other, in arrival
   order, in memory.  This is where the CPU goes, so it runs while earlier groups
   are still being written; records they are writing are taken from them rather
   than from the store.
2. **finish** (one write transaction): check that nothing the plan read has
   changed since (no change set answered meanwhile, every record still at the seq
   the plan merged from); if something has (another worker, a failed previous
   group) merge again inside the transaction.  Then number the new versions,
   write records, edit log, conflicts and answers, and commit.

On a store that takes **one-hop** writes (``stores.OneHopWrites``: SQLite) the
finish is numbered and encoded in the plan step, after the heads the group before
it will leave, and handed to the store at once without waiting for that group's
commit; the store checks and writes the groups in the order handed (by default in
a process of its own, ``stores/sqlite/_process.py``).  A group whose check fails
(its heads moved: another process wrote, or the group before it failed) is
planned again in an ordinary transaction, and so is every plan made over it.

Each change set stays all-or-nothing and gets the answer it would have got
alone; only the fsync and the round trips are shared.  If a group's transaction
fails, its change sets are retried one by one, so a change set that breaks the
store fails alone.

The queue is bounded by the changes it holds (``Settings.max_queued_changes``,
counted from submission to answer): past it a push is refused at once with 503
and ``Retry-After``, and a push not answered within ``push_timeout_s`` answers
503 too (it stays queued; its retry gets the stored answer).  Listeners
(``PushWriter.listeners``) hear what each committed group did, for metrics.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec

from schemas import HLC, Change, Conflict, Key
from schemas.stamps import utc_now, wall_ms

from .. import stagetimes
from ..engine import Context, RecordState, apply_change
from ..engine.answer import Applied, clock_warnings, logged_conflicts, own_results, push_answer
from ..engine.guards import REFERENCES
from ..engine.state import encode_crdt, encode_doc
from ..errors import ChangesetReused, Forbidden, Unavailable
from ..principal import Principal
from ..settings import Settings
from ..stores import (
    AlreadyExists,
    ConflictRow,
    EditRow,
    Heads,
    OneHopWrites,
    PlannedWrite,
    ReadTx,
    RecordRow,
    ResolvedConflict,
    StoredChangeset,
    StoreUnavailable,
    SyncStore,
    WriteTx,
)
from ..stores._rows import encode_diff
from ..wire.answers import split_stored, with_own
from ..wire.codec import DecodedPush, Rejected

__all__ = ["GroupStats", "PushOutcome", "PushWriter"]

log = logging.getLogger("patrol_sync.writer")

ChangesetKey = tuple[str, str]
_json = msgspec.json.Encoder()
#: a group is cut at this many change sets, or once it holds this many changes
_GROUP_CHANGESETS = 64
_GROUP_CHANGES = 20_000
#: planning yields to the event loop this often (changes), so that the write
#: running beside it is never kept waiting for long
_YIELD_EVERY = 25
#: groups handed to a one-hop store and not yet answered, at most
_MAX_IN_FLIGHT = 8
#: planned writes' numbers (``PlannedWrite.id``): one count for the process, so that a
#: store never meets the same number from two writers
_PLANNED_IDS = itertools.count(1)


@dataclasses.dataclass(slots=True)
class PushOutcome:
    """A change set's answer (JSON), and what fleet health wants to know of it."""

    answer: bytes
    rejected: int = 0
    #: answered from the stored answer of an earlier identical push
    replayed: bool = False
    #: results whose record the device computes itself (``engine.own``), noted when the
    #: push asked ``Prefer: return=minimal``; None: not noted (the answer stays whole)
    own: frozenset[int] | None = None


@dataclasses.dataclass(slots=True, frozen=True)
class GroupStats:
    """What one committed group did (change sets answered from a stored answer excluded)."""

    changesets: int
    applied: int  # changes applied (a change that altered nothing counts: it was accepted)
    rejected: int
    conflicts: int
    replayed: int  # change sets answered from the stored answer of an earlier identical push
    seconds: float  # the write transaction, from begin to commit


@dataclasses.dataclass(slots=True)
class _Job:
    principal: Principal
    push: DecodedPush
    future: asyncio.Future[PushOutcome]
    #: a conflict this change set resolves, marked so in the same transaction if it applies
    resolution: ResolvedConflict | None = None

    @property
    def id(self) -> ChangesetKey:
        return self.push.device_id, self.push.changeset_id


@dataclasses.dataclass(slots=True)
class _Merged:
    """One change set merged into the group's working state."""

    job: _Job
    items: list[Applied | Rejected]
    now_ms: int
    conflicts: list[Conflict] = dataclasses.field(default_factory=list)
    #: each record as it stood just before this change set (None: it did not exist)
    before: dict[Key, RecordState | None] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(slots=True)
class _Plan:
    merged: list[_Merged]
    #: every record the group touches, as it will be written (or as it stands)
    working: dict[Key, RecordState]
    #: records that got a new version, in first-touched order
    dirty: dict[Key, None]
    #: the state each touched record was merged from (None: did not exist)
    origin: dict[Key, RecordState | None]
    #: stored answers of the group's change sets that were applied before the plan
    prior: dict[ChangesetKey, StoredChangeset]
    #: numbered and encoded for a one-hop write (``PushWriter._prepare``)
    prepared: _Prepared | None = None


@dataclasses.dataclass(slots=True)
class _Prepared:
    write: PlannedWrite
    #: every change set's answer once it is written (the group's earlier ones included)
    stored: dict[ChangesetKey, StoredChangeset]
    #: the store's heads once it is written
    after: Heads


class PushWriter:
    def __init__(self, store: SyncStore, settings: Settings, hlc: HLC) -> None:
        self.store = store
        self.settings = settings
        self.hlc = hlc
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        #: changes submitted and not yet answered (the queue's bound is on these)
        self.queued_changes = 0
        self.listeners: list[Callable[[GroupStats], None]] = []
        #: the store takes a planned group in one call (``stores.OneHopWrites``)
        self._one_hop = store if isinstance(store, OneHopWrites) else None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="patrol-sync writer")

    async def stop(self) -> None:
        """Finish the change sets already queued, then stop."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None

    async def submit(self, principal: Principal, push: DecodedPush, resolution: ResolvedConflict | None = None) -> PushOutcome:
        """Queue a change set and wait for its answer (503 when the queue is full or
        the answer is late: the change set may still commit; a retry is safe)."""
        retry_after = {"Retry-After": str(self.settings.retry_after_s)}
        count = max(1, len(push.changes))
        if self.queued_changes and self.queued_changes + count > self.settings.max_queued_changes:
            raise Unavailable(f"{self.queued_changes} changes are waiting to be written; try again shortly", headers=retry_after)
        job = _Job(principal, push, asyncio.get_running_loop().create_future(), resolution)
        self.queued_changes += count
        job.future.add_done_callback(lambda _: self._answered(count))
        self._queue.put_nowait(job)
        # a client that hangs up does not cancel its change set: it is applied, or not, whole
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), self.settings.push_timeout_s)
        except TimeoutError:
            raise Unavailable(
                f"change set {push.changeset_id} is queued but not committed yet; send it again (same id) shortly",
                headers=retry_after,
            ) from None

    def _answered(self, count: int) -> None:
        self.queued_changes -= count

    # -- the loop -------------------------------------------------------------------

    async def _next_group(self) -> list[_Job]:
        group = [await self._queue.get()]
        changes = len(group[0].push.changes)
        while not self._queue.empty() and len(group) < _GROUP_CHANGESETS and changes < _GROUP_CHANGES:
            job = self._queue.get_nowait()
            group.append(job)
            changes += len(job.push.changes)
        return group

    async def _loop(self) -> None:
        #: writes handed on and the plans they were given, oldest first
        inflight: list[tuple[asyncio.Task[_Plan | None], _Plan | None]] = []
        while True:
            group = await self._next_group()
            if len(inflight) >= _MAX_IN_FLIGHT:  # the store lags: wait for the oldest
                await asyncio.wait([inflight[0][0]])
            # a write done by now, as planned or not, is in what this plan reads; one still
            # in flight is in its overlay, and its refusal refuses this plan too (``after``)
            inflight = [(task, handed) for task, handed in inflight if not task.done()]
            overlay: dict[Key, RecordState] = {}
            for _, handed in inflight:
                if handed is not None:
                    overlay.update({key: handed.working[key] for key in handed.dirty})
            plan: _Plan | None
            try:
                async with self.store.read() as reads:
                    plan = await self._plan(group, reads, overlay)
                if plan is not None and self._one_hop is not None:
                    last = inflight[-1][1] if inflight else None
                    if not inflight:
                        self._prepare(plan, await self._one_hop.heads(), self._one_hop)
                    elif last is not None and last.prepared is not None:
                        self._prepare(plan, last.prepared.after, self._one_hop, after=last.prepared.write.id)
            except Exception:
                log.debug("planning outside a transaction failed; planning inside one", exc_info=True)
                plan = None
            if plan is None or plan.prepared is None:  # an ordinary write: after every one in flight
                for task, handed in inflight:
                    if await task is not handed:
                        plan = None
                inflight = []
            writing = asyncio.create_task(self._finish(group, plan))
            writing.add_done_callback(self._done(len(group)))
            inflight.append((writing, plan))

    def _done(self, count: int) -> Callable[[asyncio.Task[Any]], None]:
        def mark(_task: asyncio.Task[Any]) -> None:
            for _ in range(count):
                self._queue.task_done()

        return mark

    async def _finish(self, group: list[_Job], plan: _Plan | None) -> _Plan | None:
        """Write one group; returns its plan, or None when any of it failed."""
        started = time.perf_counter()
        try:
            plan, answers = await self._write(group, plan)
        except Exception as exc:
            if len(group) > 1:
                for job in group:  # find the one that fails; the others commit alone
                    await self._finish([job], None)
                return None
            if isinstance(exc, StoreUnavailable):  # a restart, an overload, a deadlock: a 503, one line
                log.warning("push of change set %s failed: %s", group[0].push.changeset_id, exc)
            elif not isinstance(exc, (ChangesetReused, Forbidden, AlreadyExists)):  # (a conflict resolved meanwhile)
                log.exception("push of change set %s failed", group[0].push.changeset_id)
            _settle(group[0].future, exc)
            return None
        for job, answer in zip(group, answers, strict=True):
            _settle(job.future, answer)
        if self.listeners:
            self._tell(plan, answers, time.perf_counter() - started)
        return plan

    def _tell(self, plan: _Plan, answers: list[PushOutcome | Exception], seconds: float) -> None:
        applied = sum(1 for m in plan.merged for item in m.items if isinstance(item, Applied))
        stats = GroupStats(
            changesets=len(plan.merged),
            applied=applied,
            rejected=sum(_rejected(m) for m in plan.merged),
            conflicts=sum(len(m.conflicts) for m in plan.merged),
            replayed=sum(1 for a in answers if isinstance(a, PushOutcome) and a.replayed),
            seconds=seconds,
        )
        for listener in self.listeners:
            try:
                listener(stats)
            except Exception:  # a broken listener must never fail a commit already made
                log.exception("a writer listener failed")

    async def _write(self, group: list[_Job], plan: _Plan | None) -> tuple[_Plan, list[PushOutcome | Exception]]:
        if plan is not None and self._one_hop is not None:
            written = await self._write_planned(group, plan, self._one_hop)
            if written is not None:
                return plan, written
            plan = None  # the store moved since the plan (another process, a failed group): plan again, locked
        async with self.store.write() as tx:
            stored = await tx.changesets(list(dict.fromkeys(job.id for job in group)))
            if plan is None or not await self._still_valid(plan, stored, tx):
                plan = await self._plan(group, tx, {})
            numbered = _number(plan, await tx.next_seqs(len(plan.dirty)))
            first_conflict = await tx.next_conflict_ids(len(numbered.conflicts)) if numbered.conflicts else 0
            writes = _encode(plan, numbered, first_conflict, tx.cursor(), stored)
            if writes.resolved:
                await tx.resolve_conflicts(writes.resolved)
            await tx.save(writes.records, numbered.edits, writes.conflicts, writes.answers)
        return plan, _answers(group, plan, stored)

    def _prepare(self, plan: _Plan, heads: Heads, store: OneHopWrites, after: int = 0) -> None:
        """Number and encode the plan after ``heads`` for a one-hop write (``plan.prepared``);
        ``after``: the planned write still in flight those heads follow (0: read from the store)."""
        # what the plan was merged from, noted before numbering gives the new versions seqs
        origin = {key: state.seq for key, state in plan.origin.items() if state is not None}
        created = [key for key, state in plan.origin.items() if state is None]
        numbered = _number(plan, heads.seq + 1)
        stored = dict(plan.prior)
        writes = _encode(plan, numbered, heads.conflict + 1, store.encode_cursor(heads.seq + len(plan.dirty)), stored)
        planned = PlannedWrite(
            heads=heads,
            fresh=[m.job.id for m in plan.merged],
            origin=origin,
            created=created,
            records=writes.records,
            edits=numbered.edits,
            conflicts=writes.conflicts,
            answers=writes.answers,
            resolved=writes.resolved,
            id=next(_PLANNED_IDS),
            after=after,
        )
        plan.prepared = _Prepared(planned, stored, Heads(heads.seq + len(plan.dirty), heads.conflict + len(numbered.conflicts)))

    async def _write_planned(self, group: list[_Job], plan: _Plan, store: OneHopWrites) -> list[PushOutcome | Exception] | None:
        """The group written in one call; None when the store has moved since it was
        numbered (nothing written)."""
        if plan.prepared is None:
            self._prepare(plan, await store.heads(), store)
        assert plan.prepared is not None
        if not await store.write_planned(plan.prepared.write):
            return None
        return _answers(group, plan, plan.prepared.stored)

    async def _still_valid(self, plan: _Plan, stored: dict[ChangesetKey, StoredChangeset], tx: WriteTx) -> bool:
        if any(m.job.id in stored for m in plan.merged):
            return False  # answered meanwhile (a retry that raced its original)
        expected = {key: state.seq for key, state in plan.origin.items() if state is not None}
        return await tx.seqs(list(plan.origin)) == expected

    # -- merging ---------------------------------------------------------------------

    async def _plan(self, group: list[_Job], reads: ReadTx, overlay: dict[Key, RecordState]) -> _Plan:
        prior = await reads.changesets(list(dict.fromkeys(job.id for job in group)))
        fresh: list[_Job] = []
        taken: set[ChangesetKey] = set()
        for job in group:
            if job.id not in prior and job.id not in taken:
                taken.add(job.id)
                fresh.append(job)
        keys = list(dict.fromkeys((c.collection, c.id) for j in fresh for c in j.push.changes if isinstance(c, Change)))
        # the records they name (a check's premises, ...), read in the same query: their ward
        named = dict.fromkeys(k for j in fresh for c in j.push.changes if isinstance(c, Change) for k in _references(c))
        missing = [k for k in dict.fromkeys([*keys, *named]) if k not in overlay]
        working = await reads.records(missing) if missing else {}
        refs = {k: working.pop(k) for k in named if k in working and k not in keys}
        working.update({k: overlay[k] for k in keys if k in overlay})
        refs.update({k: overlay[k] for k in named if k in overlay and k not in keys})
        origin: dict[Key, RecordState | None] = {k: working.get(k) for k in keys}
        dirty: dict[Key, None] = {}
        merged = [await self._merge(job, working, dirty, refs) for job in fresh]
        return _Plan(merged, working, dirty, origin, prior)

    async def _merge(self, job: _Job, working: dict[Key, RecordState], dirty: dict[Key, None], refs: dict[Key, RecordState]) -> _Merged:
        def ward_of(key: Key) -> str | None:
            held = working.get(key) or refs.get(key)
            return held.ward_id if held is not None else None

        settings = self.settings
        server_made = job.resolution is not None  # a supervisor's resolution: stamped by the server's clock
        registered = job.principal.registered_ms if settings.stamps_after_registration and not server_made else 0
        ctx = Context(
            principal=job.principal,
            hlc=self.hlc,
            now_ms=wall_ms(),
            max_skew_ms=settings.max_clock_skew_ms,
            max_text_bytes=settings.max_text_bytes,
            max_record_bytes=settings.max_record_bytes,
            max_set_elements=settings.max_set_elements,
            node=self.hlc.node if server_made else job.push.device_id,
            floor_ms=registered - settings.max_clock_skew_ms if registered else 0,
            ward_of=ward_of,
        )
        items: list[Applied | Rejected] = []
        before: dict[Key, RecordState | None] = {}
        watch = stagetimes.timer("loop: merge")
        watch.start()
        for n, change in enumerate(job.push.changes, 1):
            if n % _YIELD_EVERY == 0:
                watch.stop()
                await asyncio.sleep(0)  # let the previous group's write make progress meanwhile
                watch.start()
            if isinstance(change, Rejected):
                items.append(change)
                continue
            key = (change.collection, change.id)
            if key not in before:
                before[key] = working.get(key)
            outcome = apply_change(working.get(key), change, ctx)
            if outcome.state is None:
                items.append(Rejected(change.collection, change.id, outcome.errors))
                continue
            if outcome.changed:
                working[key] = outcome.state
                dirty[key] = None
            items.append(Applied(key, outcome))
        watch.stop()
        return _Merged(job, items, ctx.now_ms, before=before)


@dataclasses.dataclass(slots=True)
class _Numbered:
    """A plan's new versions numbered: their documents, edit-log rows and conflicts."""

    docs: dict[Key, bytes]
    edits: list[EditRow]
    conflicts: list[Conflict]


@dataclasses.dataclass(slots=True)
class _Writes:
    records: list[RecordRow]
    conflicts: list[ConflictRow]
    answers: list[StoredChangeset]
    resolved: list[ResolvedConflict]


def _number(plan: _Plan, first_seq: int) -> _Numbered:
    """Give the plan's new versions their seqs, from ``first_seq`` on, and encode them."""
    for offset, key in enumerate(plan.dirty):
        plan.working[key].seq = first_seq + offset
    with stagetimes.timer("loop: encode records"):
        docs = {key: encode_doc(plan.working[key]) for key in plan.dirty}
    now = utc_now()
    edits: list[EditRow] = []
    conflicts: list[Conflict] = []
    with stagetimes.timer("loop: edit log rows"):
        for m in plan.merged:
            _log(m, plan.working, now, edits, conflicts)
    return _Numbered(docs, edits, conflicts)


def _encode(plan: _Plan, numbered: _Numbered, first_conflict: int, cursor: str, stored: dict[ChangesetKey, StoredChangeset]) -> _Writes:
    """Number the conflicts, store each change set's answer in ``stored`` and encode the rows."""
    for offset, conflict in enumerate(numbered.conflicts):
        conflict.id = f"c-{first_conflict + offset}"
    with stagetimes.timer("loop: idempotency answer (stored)"):
        for m in plan.merged:
            stored[m.job.id] = StoredChangeset(*m.job.id, m.job.push.body_hash, _answer(m, plan.working, numbered.docs, cursor))
    resolved = [r for r, n in ((m.job.resolution, _rejected(m)) for m in plan.merged) if r is not None and n == 0]
    with stagetimes.timer("loop: encode records"):
        rows = [RecordRow(plan.working[key], numbered.docs[key], encode_crdt(plan.working[key])) for key in plan.dirty]
    return _Writes(rows, [_conflict_row(c) for c in numbered.conflicts], [stored[m.job.id] for m in plan.merged], resolved)


def _answers(group: list[_Job], plan: _Plan, stored: dict[ChangesetKey, StoredChangeset]) -> list[PushOutcome | Exception]:
    """Each change set's answer: its own, a replay of the stored one, or the refusal of a reused id."""
    merged_by_id = {m.job.id: m for m in plan.merged}
    answers: list[PushOutcome | Exception] = []
    for job in group:
        answer = stored[job.id]
        if answer.body_hash != job.push.body_hash:
            answers.append(ChangesetReused(f"change set {job.push.changeset_id} of device {job.push.device_id} was sent before with another body"))
            continue
        body, own = split_stored(answer.response)
        if (mine := merged_by_id.get(job.id)) is not None and mine.job is job:
            answers.append(PushOutcome(body, rejected=_rejected(mine), own=own))
        else:
            answers.append(PushOutcome(body, replayed=True, own=own))
    return answers


def _references(change: Change) -> list[Key]:
    """The records a change's fields name (``engine.guards.REFERENCES``)."""
    named: list[Key] = []
    fields = change.fields  # type: ignore[attr-defined]  # (each collection's subclass declares it)
    for name, target in REFERENCES.items():
        value = getattr(getattr(fields, name, None), "value", None)  # (absent, UNSET and set edits: no value)
        if isinstance(value, str):
            named.append((target, value))
    return named


def _log(m: _Merged, working: dict[Key, RecordState], now: str, edits: list[EditRow], conflicts: list[Conflict]) -> None:
    principal, push = m.job.principal, m.job.push
    m.conflicts = []
    for item in m.items:
        if isinstance(item, Rejected):
            continue
        state = working[item.key]
        outcome = item.outcome
        if outcome.diff or outcome.deleted:
            edits.append(
                EditRow(
                    collection=state.collection,
                    record_id=state.id,
                    ward_id=state.ward_id,
                    seq=state.seq,
                    at=now,
                    user_id=principal.user_id,
                    device_id=principal.device_id,
                    changeset_id=push.changeset_id,
                    diff=encode_diff(outcome.diff, outcome.deleted),
                )
            )
        m.conflicts.extend(logged_conflicts(outcome, state, principal, push.changeset_id, now))
    conflicts.extend(m.conflicts)


def _answer(m: _Merged, working: dict[Key, RecordState], docs: dict[Key, bytes], cursor: str) -> bytes:
    warnings = clock_warnings(m.items, m.job.principal.device_id, m.now_ms)
    answer = push_answer(m.job.push.changeset_id, m.items, working, docs, cursor, m.conflicts, warnings)
    if not m.job.push.minimal:
        return answer
    return with_own(answer, own_results(m.job.push.changes, m.items, m.before, working, m.job.push.device_id))


def _rejected(m: _Merged) -> int:
    return sum(1 for item in m.items if isinstance(item, Rejected))


def _settle(future: asyncio.Future[PushOutcome], result: PushOutcome | BaseException) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


def _conflict_row(c: Conflict) -> ConflictRow:
    return ConflictRow(
        id=int(c.id.removeprefix("c-")),
        collection=c.collection,
        record_id=c.record_id,
        ward_id=c.ward_id,
        field=c.field,
        kind=c.kind,
        winner=c.winner,
        server=_json.encode(c.server),
        client=_json.encode(c.client),
        device_id=c.device_id,
        user_id=c.user_id,
        changeset_id=c.changeset_id,
        created_at=c.created_at,
    )
