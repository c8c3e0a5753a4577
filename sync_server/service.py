"""Push and pull: the engine driven inside store transactions. No HTTP, no SQL."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from typing import Any

import msgspec

from schemas import (
    HLC,
    SERVER_NODE,
    Change,
    ChangeResult,
    Conflict,
    PullResponse,
    PushResponse,
    Warning,
    stamp_ms,
)

from . import codec
from .codec import DecodedPush, Rejected
from .engine import Context, Outcome, RecordState, apply_change
from .engine.state import encode_crdt, encode_doc
from .errors import ChangesetReused, Forbidden
from .principal import Principal
from .settings import Settings
from .stores import ConflictRow, EditRow, RecordRow, Store

__all__ = ["SyncService", "utc_now"]

Key = tuple[str, str]
_json = msgspec.json.Encoder()


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _EditDiff(msgspec.Struct, omit_defaults=True):
    """An edit-log entry's body: each changed field's old and new value."""

    fields: dict[str, tuple[Any, Any]]
    deleted: tuple[bool, bool] | None = None


@dataclasses.dataclass(slots=True)
class _Applied:
    key: Key
    outcome: Outcome


class SyncService:
    def __init__(self, store: Store, settings: Settings, hlc: HLC | None = None) -> None:
        self.store = store
        self.settings = settings
        self.hlc = hlc or HLC(SERVER_NODE)

    # -- push -----------------------------------------------------------------

    async def push(self, principal: Principal, push: DecodedPush) -> bytes:
        """Apply a change set; the answer is JSON, kept for retries (idempotency)."""
        if push.device_id != principal.device_id:
            raise Forbidden(f"this token belongs to device {principal.device_id}, not {push.device_id}")
        # A client that hangs up must not cancel a transaction half-way.
        return await asyncio.shield(self._push(principal, push))

    async def _push(self, principal: Principal, push: DecodedPush) -> bytes:
        async with self.store.write() as tx:
            prior = await tx.changeset(push.device_id, push.changeset_id)
            if prior is not None:
                if prior.body_hash != push.body_hash:
                    raise ChangesetReused(
                        f"change set {push.changeset_id} of device {push.device_id} was sent before with another body"
                    )
                return prior.response
            keys = list(dict.fromkeys((c.collection, c.id) for c in push.changes if isinstance(c, Change)))
            working: dict[Key, RecordState] = await tx.records(keys) if keys else {}
            stored = set(working)
            ctx = Context(
                principal=principal,
                hlc=self.hlc,
                now_ms=time.time_ns() // 1_000_000,
                max_skew_ms=self.settings.max_clock_skew_ms,
                max_text_bytes=self.settings.max_text_bytes,
            )
            applied: list[_Applied | Rejected] = []
            dirty: dict[Key, None] = {}
            for change in push.changes:
                if isinstance(change, Rejected):
                    applied.append(change)
                    continue
                key = (change.collection, change.id)
                outcome = apply_change(working.get(key), change, ctx)
                if outcome.state is None:
                    applied.append(Rejected(change.collection, change.id, outcome.errors))
                    continue
                if outcome.changed:
                    working[key] = outcome.state
                    dirty[key] = None
                applied.append(_Applied(key, outcome))

            if dirty:
                first = await tx.next_seqs(len(dirty))
                for offset, key in enumerate(dirty):
                    working[key].seq = first + offset
            docs = {key: encode_doc(working[key]) for key in dirty}
            now = utc_now()
            rows = [RecordRow(working[key], docs[key], encode_crdt(working[key])) for key in dirty]
            edits, conflicts = self._logs(principal, push, applied, working, now)
            ids = await tx.save(rows, edits, [_conflict_row(c) for c in conflicts])
            for conflict_id, conflict in zip(ids, conflicts):
                conflict.id = f"c-{conflict_id}"

            results: list[ChangeResult[msgspec.Raw]] = []
            for item in applied:
                if isinstance(item, Rejected):
                    results.append(ChangeResult(collection=item.collection, id=item.id, status="rejected", errors=item.errors))
                    continue
                state = working[item.key]
                doc = docs.get(item.key) or encode_doc(state)
                results.append(
                    ChangeResult(collection=state.collection, id=state.id, status="applied", seq=state.seq, record=msgspec.Raw(doc))
                )
            answer = PushResponse[msgspec.Raw](
                changeset_id=push.changeset_id,
                cursor=await tx.cursor(),
                results=results,
                conflicts=conflicts,
                warnings=self._warnings(principal, applied, ctx),
            )
            encoded = _json.encode(answer)
            await tx.remember(push.device_id, push.changeset_id, push.body_hash, encoded)
        return encoded

    def _logs(
        self,
        principal: Principal,
        push: DecodedPush,
        applied: list[_Applied | Rejected],
        working: dict[Key, RecordState],
        now: str,
    ) -> tuple[list[EditRow], list[Conflict]]:
        edits: list[EditRow] = []
        conflicts: list[Conflict] = []
        for item in applied:
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
                        diff=_json.encode(_EditDiff(fields=outcome.diff, deleted=outcome.deleted)),
                    )
                )
            for c in outcome.conflicts:
                conflicts.append(
                    Conflict(
                        id="",  # numbered by the store
                        collection=state.collection,
                        record_id=state.id,
                        field=c.field,
                        kind=c.kind,
                        winner=c.winner,
                        server=c.server,
                        client=c.client,
                        ward_id=state.ward_id,
                        device_id=principal.device_id,
                        user_id=principal.user_id,
                        changeset_id=push.changeset_id,
                        created_at=now,
                    )
                )
        return edits, conflicts

    def _warnings(self, principal: Principal, applied: list[_Applied | Rejected], ctx: Context) -> list[Warning]:
        restamped = [a.outcome for a in applied if isinstance(a, _Applied) and a.outcome.restamped]
        if not restamped:
            return []
        ahead_s = (max(stamp_ms(o.top_sent) for o in restamped) - ctx.now_ms) / 1000
        count = sum(o.restamped for o in restamped)
        return [
            Warning(
                code="clock_skew",
                detail=(
                    f"device {principal.device_id} sent stamps {ahead_s:.0f} s ahead of the server clock; "
                    f"{count} edits were applied at server time instead. Check the device's clock."
                ),
            )
        ]

    # -- pull -----------------------------------------------------------------

    async def pull(
        self, principal: Principal, cursor: str | None, limit: int, collections: frozenset[str] | None, fmt: codec.Format
    ) -> bytes:
        wards = None if principal.is_admin else principal.wards
        page = await self.store.pull(wards, cursor, limit, collections)
        if fmt == "msgpack":
            records: list[Any] = [msgspec.json.decode(doc) for doc in page.docs]
            return codec.encode(PullResponse[Any](records=records, cursor=page.cursor, more=page.more), "msgpack")
        raw = [msgspec.Raw(doc) for doc in page.docs]
        return codec.encode(PullResponse[msgspec.Raw](records=raw, cursor=page.cursor, more=page.more))


def _conflict_row(c: Conflict) -> ConflictRow:
    return ConflictRow(
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
