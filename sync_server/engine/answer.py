"""A change set's answer and its conflicts, built from what the merge did.

Pure: the writer merges, numbers and writes; what a device is told about its change
set (each change applied or rejected, a record's state once, on its last result, the
conflicts it met, a warning when its clock runs ahead) is decided here from the
merge's outcomes alone, so it can be tested without a store or a queue.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import msgspec

from schemas import Change, ChangeResult, Conflict, Key, PushResponse, Warning, stamp_ms

from ..principal import Principal
from ..wire.codec import Rejected
from .merge import Outcome
from .own import computable
from .state import RecordState, encode_doc

__all__ = ["Applied", "clock_warnings", "logged_conflicts", "own_results", "push_answer"]

_json = msgspec.json.Encoder()


@dataclasses.dataclass(slots=True)
class Applied:
    """A change the merge accepted: its record, and what it did."""

    key: Key
    outcome: Outcome


def push_answer(
    changeset_id: str,
    items: Sequence[Applied | Rejected],
    working: Mapping[Key, RecordState],
    docs: Mapping[Key, bytes],
    cursor: str,
    conflicts: list[Conflict],
    warnings: list[Warning],
) -> bytes:
    """The change set's answer (JSON); a record's state comes once, on its last result
    (PROTOCOL.md section 4), so ten changes to one record do not answer it ten times.
    ``docs``: records' pulled documents already encoded (else encoded here)."""
    last = {item.key: n for n, item in enumerate(items) if isinstance(item, Applied)}
    results: list[ChangeResult[msgspec.Raw]] = []
    for n, item in enumerate(items):
        if isinstance(item, Rejected):
            results.append(ChangeResult(collection=item.collection, id=item.id, status="rejected", errors=item.errors))
            continue
        state = working[item.key]
        if last[item.key] != n:
            results.append(ChangeResult(collection=state.collection, id=state.id, status="applied", seq=state.seq))
            continue
        doc = docs.get(item.key) or encode_doc(state)
        results.append(ChangeResult(collection=state.collection, id=state.id, status="applied", seq=state.seq, record=msgspec.Raw(doc)))
    answer = PushResponse[msgspec.Raw](changeset_id=changeset_id, cursor=cursor, results=results, conflicts=conflicts, warnings=warnings)
    return _json.encode(answer)


def own_results(
    changes: Sequence[Change | Rejected],
    items: Sequence[Applied | Rejected],
    before: Mapping[Key, RecordState | None],
    working: Mapping[Key, RecordState],
    node: str,
) -> list[int]:
    """The results (each record's last) whose record the device computes itself over its
    own copy (``own.computable``): a minimal answer gives them as ``seq`` alone."""
    last = {item.key: n for n, item in enumerate(items) if isinstance(item, Applied)}
    sent: dict[Key, list[Change]] = {}
    refused: set[Key] = set()
    for change, item in zip(changes, items, strict=True):
        if isinstance(item, Rejected):
            if isinstance(change, Change):
                refused.add((change.collection, change.id))
            continue
        assert isinstance(change, Change)
        sent.setdefault(item.key, []).append(change)
    own = []
    for key, n in last.items():
        if key in refused:
            continue
        made = sent[key]
        item = items[n]
        if len(made) == 1 and isinstance(item, Applied) and item.outcome.as_sent:
            own.append(n)  # (made exactly as sent: what ``computable`` finds, known already)
        elif computable(before.get(key), working[key], [msgspec.to_builtins(c) for c in made], node):
            own.append(n)
    return sorted(own)


def clock_warnings(items: Sequence[Applied | Rejected], device_id: str, now_ms: int) -> list[Warning]:
    """A ``clock_skew`` warning when the merge re-stamped edits that ran ahead of the server."""
    restamped = [a.outcome for a in items if isinstance(a, Applied) and a.outcome.restamped]
    if not restamped:
        return []
    ahead_s = (max(stamp_ms(o.top_sent) for o in restamped) - now_ms) / 1000
    count = sum(o.restamped for o in restamped)
    return [
        Warning(
            code="clock_skew",
            detail=(
                f"device {device_id} sent stamps {ahead_s:.0f} s ahead of the server clock; "
                f"{count} edits were applied at server time instead. Check the device's clock."
            ),
        )
    ]


def logged_conflicts(outcome: Outcome, state: RecordState, principal: Principal, changeset_id: str, now: str) -> list[Conflict]:
    """The conflicts one change met, as logged (numbered later, once the group's are counted)."""
    return [
        Conflict(
            id="",
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
            changeset_id=changeset_id,
            created_at=now,
        )
        for c in outcome.conflicts
    ]
