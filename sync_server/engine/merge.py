"""Field-by-field merge of one change into a record (PROTOCOL.md sections 3 and 4).

Every policy is a join: the stored state of a field only ever moves to the
greater of two candidates under a total order, so any arrival order of the same
edits ends in the same state.

| policy | a field's state            | order                                        |
| ------ | -------------------------- | -------------------------------------------- |
| lww    | value, stamp               | higher stamp                                 |
| first  | value, stamp               | lower stamp                                  |
| rank   | value, stamp               | higher rank, then higher stamp               |
| set    | element -> (stamp, present)| per element: higher stamp, then add          |
| delete | tombstone stamp            | higher stamp; deleted while above all fields |

Two edits with the same stamp and different values (a device that reused a stamp,
two server workers stamping in one millisecond) are ordered by the encoded value,
so even that case converges. Which side wins is decided in ``schemas/order.py``, the
one place the SDK and conflict resolution ask too.

Conflicts are logged, never resolved here: a concurrent edit is one whose ``base``
differs from the stamp the server holds, unless both stamps come from the same
device (that device's own later edit).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Literal

import msgspec

from schemas import COLLECTIONS, HLC, Change, ConflictKind, ConflictSide, ErrorItem, SetEdit, order
from schemas.collections import CollectionSpec, FieldSpec, Policy
from schemas.stamps import stamp_ms, stamp_node, utc_text
from schemas.text import nfc

from ..principal import Principal
from .guards import REFERENCES, WardOf, foreign_stamp, reference_error, size_error
from .state import RecordState

__all__ = ["ConflictDraft", "Context", "Outcome", "apply_change"]

Winner = Literal["server", "client"]


@dataclasses.dataclass(slots=True)
class Context:
    """What the engine knows of the world: the caller, the server's clocks, the limits."""

    principal: Principal
    hlc: HLC
    now_ms: int
    max_skew_ms: int = 600_000
    max_text_bytes: int = 65_536
    max_record_bytes: int = 256 * 1024
    max_set_elements: int = 2_000
    #: the node every pushed stamp must name (the device; ``server`` for the server's
    #: own edits); None: any (the engine's own tests replay many devices at once)
    node: str | None = None
    #: stamps before this (ms since the epoch: the device's registration less the skew
    #: window) cannot be true and are replaced by the server's, as stamps too far ahead are
    floor_ms: int = 0
    #: the ward of a record the server holds, for references to other records (None: unchecked)
    ward_of: WardOf | None = None


@dataclasses.dataclass(slots=True)
class ConflictDraft:
    field: str | None
    kind: ConflictKind
    winner: Winner
    server: ConflictSide
    client: ConflictSide


@dataclasses.dataclass(slots=True)
class Outcome:
    """What one change did. ``state`` is None when the change was rejected."""

    state: RecordState | None
    errors: list[ErrorItem] = dataclasses.field(default_factory=list)
    changed: bool = False
    #: field -> (old value, new value), for the edit log
    diff: dict[str, tuple[Any, Any]] = dataclasses.field(default_factory=dict)
    #: (was deleted, is deleted) when the change flipped it
    deleted: tuple[bool, bool] | None = None
    conflicts: list[ConflictDraft] = dataclasses.field(default_factory=list)
    #: stamps that were too far ahead and were replaced by the server's
    restamped: int = 0
    #: the highest stamp the change carried as sent (for measuring device clocks)
    top_sent: str = ""
    #: a new record that is exactly the change's fields as sent: each value unchanged (no
    #: NFC), each set its distinct elements, no field added by the server. Set by the fast
    #: path only (False says nothing): what ``own.computable`` would find, known for free
    #: (``answer.own_results``; ``tests/test_fast_create.py`` holds it to the rule).
    as_sent: bool = dataclasses.field(default=False, compare=False)


@dataclasses.dataclass(slots=True)
class _Op:
    """One field edit, validated and with plain JSON values."""

    field: FieldSpec
    ts: str
    base: str | None
    value: Any = None
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()


def _reject(code: str, detail: str, field: str | None = None) -> Outcome:
    return Outcome(state=None, errors=[ErrorItem(code=code, detail=detail, field=field)])


class _TooLarge(Exception):
    pass


def _clean_text(value: Any, limit: int) -> Any:
    """NFC-normalise every string of a value and hold it to the byte limit."""
    if isinstance(value, str):
        if value.isascii():  # ASCII is NFC, one byte a character
            if len(value) > limit:
                raise _TooLarge
            return value
        if len(value) * 4 > limit and len(value.encode()) > limit:
            raise _TooLarge
        return nfc(value)
    if isinstance(value, list):
        return [_clean_text(v, limit) for v in value]
    return value


def _clean_value(f: FieldSpec, value: Any, limit: int) -> Any:
    """A field's value as stored: builtins for typed values, text NFC and within ``limit``."""
    if f.needs_builtins:
        return msgspec.to_builtins(value)
    if value.__class__ is str or value.__class__ is list:
        return _clean_text(value, limit)
    return value


def _ops(spec: CollectionSpec, change: Change, ctx: Context) -> list[_Op] | Outcome:
    ops = []
    fields = spec.fields
    limit = ctx.max_text_bytes
    for name, edit in change.edits():
        f = fields[name]
        base = edit.base
        if base is not None and edit.ts < base:
            return _reject("invalid", f"stamp {edit.ts} is older than its base {base}", name)
        try:
            if f.policy is Policy.SET:
                assert isinstance(edit, SetEdit)
                add = tuple(_clean_text(edit.add, limit))
                remove = tuple(_clean_text(edit.remove, limit))
                if set(add) & set(remove):
                    return _reject("invalid", "an element is both added and removed", name)
                ops.append(_Op(f, edit.ts, base, add=add, remove=remove))
            else:
                ops.append(_Op(f, edit.ts, base, _clean_value(f, edit.value, limit)))  # type: ignore[attr-defined]
        except _TooLarge:
            return _reject("too_large", f"text longer than {limit} bytes", name)
    return ops


def _check_scope(state: RecordState | None, ops: list[_Op], change: Change, spec: CollectionSpec, ctx: Context) -> Outcome | str:
    """The record's ward, or the rejection of a change the caller may not make."""
    given = {op.field.name: op for op in ops}
    if state is None:
        if not ops:
            return _reject("invalid", f"{spec.name}/{change.id} does not exist")
        missing = [name for name in spec.required if name not in given]
        if missing:
            return _reject("invalid", "a new record needs " + ", ".join(missing), missing[0])
        ward = str(given["ward_id"].value)
    else:
        ward = state.ward_id
    wards = {ward}
    if "ward_id" in given:
        wards.add(str(given["ward_id"].value))
    for w in sorted(wards):
        if not ctx.principal.may_see(w):
            return _reject("forbidden", "this ward is not in your scope", "ward_id")  # naming nothing of it
    author = given.get("created_by")
    if state is None and author and author.value != ctx.principal.user_id and not ctx.principal.is_admin:
        return _reject("forbidden", "created_by must be the calling user", "created_by")
    return ward


def _restamp(ops: list[_Op], change: Change, ctx: Context) -> tuple[int, str | None]:
    """Distrust stamps too far ahead of the server's clock, or earlier than the device
    can have made them (before its registration): use the server's HLC."""
    limit = f"{min(ctx.now_ms + ctx.max_skew_ms, 10**13 - 1):013d}"  # stamps start with 13 digits: compare as text
    floor = f"{min(max(ctx.floor_ms, 0), 10**13 - 1):013d}"
    server_stamp: str | None = None
    count = 0
    trusted = ""
    for op in ops:
        if op.ts[:13] > limit or op.ts[:13] < floor:
            server_stamp = server_stamp or ctx.hlc.now()
            op.ts = server_stamp
            count += 1
        elif op.ts > trusted:
            trusted = op.ts
    delete_ts = change.delete.ts if change.delete else None
    if delete_ts is not None:
        if delete_ts[:13] > limit or delete_ts[:13] < floor:
            delete_ts = server_stamp or ctx.hlc.now()
            count += 1
        elif delete_ts > trusted:
            trusted = delete_ts
    if trusted:
        ctx.hlc.observe(trusted)
    return count, delete_ts


def _fill_authorship(spec: CollectionSpec, ops: list[_Op], names: set[str], ctx: Context) -> None:
    """A creating change without ``created_by``/``created_at`` gets the caller and the
    stamp's time. Done for every change that carries all required fields (not only
    the one that happens to arrive first) so that arrival order does not matter."""
    if not ops or not names.issuperset(spec.required):
        return
    ts = max(op.ts for op in ops)
    if "created_by" not in names:
        ops.append(_Op(spec.fields["created_by"], ts, None, value=ctx.principal.user_id))
    if "created_at" not in names:
        when = msgspec.convert(utc_text(stamp_ms(ts)), dt.datetime)  # stored as a sent one is: one form, one encoding
        ops.append(_Op(spec.fields["created_at"], ts, None, value=msgspec.to_builtins(when)))


def _create(spec: CollectionSpec, change: Change, ward: str, ops: list[_Op], delete_ts: str | None) -> Outcome:
    """The fast path: a record the server has never seen, so nothing to dispute."""
    state = RecordState(spec.name, change.id, ward, {}, {})
    fields, stamps, sets = state.fields, state.stamps, state.sets
    for op in ops:
        name = op.field.name
        if op.field.policy is Policy.SET:
            elements = {e: [op.ts, True] for e in op.add}
            elements.update({e: [op.ts, False] for e in op.remove})
            if not elements:
                continue
            sets[name] = elements
            fields[name] = sorted(op.add)
        else:
            fields[name] = op.value
        stamps[name] = op.ts
    if "ward_id" in fields:
        state.ward_id = fields["ward_id"]
    state.tomb = delete_ts
    out = Outcome(state=state, changed=True, diff={name: (None, value) for name, value in fields.items()})
    if state.deleted:
        out.deleted = (False, True)
    return out


def apply_change(state: RecordState | None, change: Change, ctx: Context, *, fast: bool = True) -> Outcome:
    """Merge one change into ``state`` (the record as stored, or None for a new one).

    ``state`` is not modified; the outcome carries the new state.  A new record takes
    :func:`_create_fresh` first (``fast=False``: never, the reference the property
    tests hold it to); anything out of the ordinary goes the general way.
    """
    spec = COLLECTIONS[change.collection]
    if fast and state is None and (fresh := _create_fresh(spec, change, ctx)) is not None:
        return fresh
    if ctx.node is not None and (foreign := foreign_stamp(change, ctx.node)) is not None:
        return Outcome(state=None, errors=[foreign])
    ops = _ops(spec, change, ctx)
    if isinstance(ops, Outcome):
        return ops
    delete = change.delete
    if delete is not None and delete.base is not None and delete.ts < delete.base:
        return _reject("invalid", f"stamp {delete.ts} is older than its base {delete.base}")
    if not ops and delete is None:
        return _reject("invalid", "a change needs fields or delete")
    scope = _check_scope(state, ops, change, spec, ctx)
    if isinstance(scope, Outcome):
        return scope
    if (wrong := reference_error(spec.name, scope, ((op.field.name, op.value) for op in ops), ctx.ward_of)) is not None:
        return Outcome(state=None, errors=[wrong])
    top_sent = max([op.ts for op in ops] + ([delete.ts] if delete else []))
    restamped, delete_ts = _restamp(ops, change, ctx)
    _fill_authorship(spec, ops, {op.field.name for op in ops}, ctx)
    if state is None:
        out = _create(spec, change, scope, ops, delete_ts)
        out.restamped, out.top_sent = restamped, top_sent
        return _within_limits(None, out, ctx)

    new = state.copy()
    merger = _Merger(new, ctx.principal)
    for op in ops:
        merger.apply(op)
    if delete_ts is not None:
        merger.delete(delete_ts, delete.base if delete else None, state)
    elif ops:
        merger.edit_after_delete(state, ops)

    out = Outcome(state=new, conflicts=merger.conflicts, restamped=restamped, top_sent=top_sent)
    out.changed = merger.touched
    for name in merger.names:
        old, now = state.fields.get(name), new.fields.get(name)
        if old != now:
            out.diff[name] = (old, now)
    if new.deleted != state.deleted:
        out.deleted = (state.deleted, new.deleted)
    return _within_limits(state, out, ctx)


def _create_fresh(spec: CollectionSpec, change: Change, ctx: Context) -> Outcome | None:
    """A new record in one pass over its edits, with no per-field objects (issue 16).

    Only for the ordinary case: every stamp the device's own, within the clock
    window and at or after its base; sets only added to; all required fields; a
    ward in scope; the caller as author; no reference to another ward; within the
    size limits.  Anything else answers None, before any side effect, and the
    general path decides (and words the rejection).  The outcome is the one the
    general path gives (``tests/test_fast_create.py`` holds them equal).
    """
    if change.delete is not None:
        return None
    specs = spec.fields
    limit = ctx.max_text_bytes
    node = ctx.node
    high = f"{min(ctx.now_ms + ctx.max_skew_ms, 10**13 - 1):013d}"
    low = f"{min(max(ctx.floor_ms, 0), 10**13 - 1):013d}"
    fields: dict[str, Any] = {}
    stamps: dict[str, str] = {}
    sets: dict[str, dict[str, list[Any]]] = {}
    names: list[str] = []
    top = ""
    as_sent = True
    try:
        for name, edit in change.edits():
            ts, base = edit.ts, edit.base
            if (node is not None and ts[19:] != node) or (base is not None and ts < base) or not low <= ts[:13] <= high:
                return None
            if ts > top:
                top = ts
            names.append(name)
            f = specs[name]
            if f.policy is Policy.SET:
                assert isinstance(edit, SetEdit)
                if edit.remove:
                    return None
                add = _clean_text(edit.add, limit)
                if not add:
                    as_sent = False
                    continue
                sets[name] = {e: [ts, True] for e in add}
                fields[name] = sorted(add)
                as_sent = as_sent and len(sets[name]) == len(add) and add == edit.add
            else:
                sent = edit.value  # type: ignore[attr-defined]
                fields[name] = value = _clean_value(f, sent, limit)
                as_sent = as_sent and (value is sent or f.needs_builtins)
            stamps[name] = ts
    except _TooLarge:
        return None
    if not names or not set(spec.required).issubset(names):
        return None
    ward = fields.get("ward_id")
    principal = ctx.principal
    if not isinstance(ward, str) or not principal.may_see(ward):
        return None
    author = fields.get("created_by")
    if "created_by" in names and author != principal.user_id and not principal.is_admin:
        return None
    named = [(name, fields[name]) for name in REFERENCES if name in fields]  # (the only ones it looks at)
    if named and reference_error(spec.name, ward, named, ctx.ward_of) is not None:
        return None
    if "created_by" not in names:
        as_sent = False
        fields["created_by"] = principal.user_id
        stamps["created_by"] = top
    if "created_at" not in names:
        as_sent = False
        fields["created_at"] = msgspec.to_builtins(msgspec.convert(utc_text(stamp_ms(top)), dt.datetime))
        stamps["created_at"] = top
    state = RecordState(spec.name, change.id, ward, fields, stamps, sets)
    diff = {name: (None, value) for name, value in fields.items()}
    if size_error(None, state, diff, ctx.max_record_bytes, ctx.max_set_elements) is not None:
        return None
    ctx.hlc.observe(top)
    return Outcome(state=state, changed=True, diff=diff, top_sent=top, as_sent=as_sent)


def _within_limits(before: RecordState | None, out: Outcome, ctx: Context) -> Outcome:
    """The outcome, or its rejection when it grows the record past a limit (``guards``)."""
    if out.state is None or not out.diff:
        return out
    error = size_error(before, out.state, out.diff, ctx.max_record_bytes, ctx.max_set_elements)
    return out if error is None else Outcome(state=None, errors=[error])


class _Merger:
    """Applies ops to one record, noting what moved and which conflicts to log."""

    __slots__ = ("state", "principal", "conflicts", "touched", "names")

    def __init__(self, state: RecordState, principal: Principal) -> None:
        self.state = state
        self.principal = principal
        self.conflicts: list[ConflictDraft] = []
        self.touched = False
        self.names: list[str] = []

    def _set(self, name: str, value: Any, ts: str) -> None:
        self.state.fields[name] = value
        self.state.stamps[name] = ts
        if name == "ward_id":
            self.state.ward_id = value
        self.touched = True
        self.names.append(name)

    def _conflict(self, op: _Op, kind: ConflictKind, winner: Winner, cur: Any, cur_ts: str, value: Any = None) -> None:
        self.conflicts.append(
            ConflictDraft(
                op.field.name,
                kind,
                winner,
                ConflictSide(value=cur, ts=cur_ts),
                ConflictSide(value=op.value if value is None else value, ts=op.ts),
            )
        )

    def apply(self, op: _Op) -> None:
        name = op.field.name
        policy = op.field.policy
        if policy is Policy.SET:
            self._set_field(op)
            return
        cur_ts = self.state.stamps.get(name)
        if cur_ts is None:
            self._set(name, op.value, op.ts)
            return
        cur = self.state.fields.get(name)
        if op.ts == cur_ts and op.value == cur:
            return  # the same edit again
        concurrent = op.base != cur_ts and stamp_node(cur_ts) != stamp_node(op.ts) and op.value != cur
        if policy is Policy.LWW:
            wins = order.lww_wins(op.ts, op.value, cur_ts, cur)
            if concurrent:
                self._conflict(op, "concurrent_edit", "client" if wins else "server", cur, cur_ts)
            if wins:
                self._set(name, op.value, op.ts)
        elif policy is Policy.FIRST:
            if op.value == cur:
                if op.ts < cur_ts:  # the same value, written earlier: keep the earliest stamp
                    self.state.stamps[name] = op.ts
                    self.touched = True
                return
            earlier = order.first_wins(op.ts, op.value, cur_ts, cur)
            self._conflict(op, "immutable", "client" if earlier else "server", cur, cur_ts)
            if earlier:
                self._set(name, op.value, op.ts)
        else:  # rank
            rank = op.field.rank or {}
            new_rank, cur_rank = rank[op.value], rank[str(cur)]
            wins = order.rank_wins(rank, op.ts, op.value, cur_ts, cur)
            if new_rank < cur_rank:
                self._conflict(op, "rank", "server", cur, cur_ts)  # a step back is kept out
            elif concurrent:
                self._conflict(op, "rank", "client" if wins else "server", cur, cur_ts)
            if wins:
                self._set(name, op.value, op.ts)

    def _set_field(self, op: _Op) -> None:
        name = op.field.name
        elements = self.state.sets.get(name, {})
        moved = False
        for element, present in [(e, True) for e in op.add] + [(e, False) for e in op.remove]:
            cur = elements.get(element)
            if cur is not None:
                cur_ts, cur_present = cur
                if cur_ts == op.ts and cur_present == present:
                    continue
                arriving_wins = order.element_wins(op.ts, present, cur_ts, cur_present)
                unseen = op.base is None or op.base < cur_ts
                if cur_present != present and unseen and stamp_node(cur_ts) != stamp_node(op.ts):
                    self._conflict(
                        op,
                        "concurrent_edit",
                        "client" if arriving_wins else "server",
                        {"add" if cur_present else "remove": [element]},
                        cur_ts,
                        {"add" if present else "remove": [element]},
                    )
                if not arriving_wins:
                    continue
            elements[element] = [op.ts, present]
            moved = True
        if moved:
            self.state.sets[name] = elements
            self.state.fields[name] = sorted(e for e, (_, p) in elements.items() if p)
            self.state.stamps[name] = max(ts for ts, _ in elements.values())
            self.touched = True
            self.names.append(name)

    def delete(self, ts: str, base: str | None, before: RecordState | None) -> None:
        state = self.state
        if state.tomb is None or ts > state.tomb:
            state.tomb = ts
            self.touched = True
        top = state.top_stamp
        if before is not None and before.deleted:
            return  # deleting a deleted record: nothing to dispute
        client = ConflictSide(value=None, ts=ts, deleted=True)
        if not state.deleted:  # an edit stamped after the delete stands
            if stamp_node(top) != stamp_node(ts):
                self.conflicts.append(ConflictDraft(None, "delete", "server", ConflictSide(value=None, ts=top), client))
        elif before is not None and before.top_stamp > (base or "") and stamp_node(before.top_stamp) != stamp_node(ts):
            # the delete wins over edits its device had not seen
            server = ConflictSide(value=None, ts=before.top_stamp)
            self.conflicts.append(ConflictDraft(None, "delete", "client", server, client))

    def edit_after_delete(self, before: RecordState, ops: list[_Op]) -> None:
        """An edit that meets a tombstone: it brings the record back if stamped later."""
        if not before.deleted or before.tomb is None:
            return
        top = max(op.ts for op in ops)
        if stamp_node(top) == stamp_node(before.tomb):
            return
        edited = {op.field.name: op.value if op.field.policy is not Policy.SET else {"add": list(op.add), "remove": list(op.remove)} for op in ops}
        server = ConflictSide(value=None, ts=before.tomb, deleted=True)
        client = ConflictSide(value=edited, ts=top)
        winner: Winner = "server" if self.state.deleted else "client"
        self.conflicts.append(ConflictDraft(None, "delete", winner, server, client))

