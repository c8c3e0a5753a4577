"""What the store contract tests build records, people and transactions with:
the store's own types only (no HTTP, no writer), so a failure names the store."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from schemas import ConflictSide, DeviceToken, Team, User, Ward
from sync_server.engine.state import RecordState, encode_crdt, encode_doc
from sync_server.stores import ConflictRow, EditRow, RecordRow, Store, StoredChangeset
from sync_server.stores._rows import encode_diff

__all__ = [
    "BA_DINH",
    "LAM_SON",
    "TS",
    "TS_LATER",
    "conflict_row",
    "edit_row",
    "ids_of",
    "people",
    "pull_all",
    "state",
    "write",
]

LAM_SON, BA_DINH = "lam-son", "ba-dinh"
TS = "1686200000000-0000-lamson-h01"
TS_LATER = "1686200000001-0000-lamson-h01"
_json = msgspec.json.Encoder()


def state(record_id: str, collection: str = "premises", ward: str = LAM_SON, ts: str = TS, **fields: Any) -> RecordState:
    """A record version as the engine would hand it to the store (seq given at write)."""
    fields = {"ward_id": ward, **({"name": f"Nhà {record_id}"} if collection == "premises" and "name" not in fields else {}), **fields}
    sets: dict[str, dict[str, list[Any]]] = {}
    if "photos" in fields:
        sets["photos"] = {blob: [ts, True] for blob in fields.pop("photos")}
    return RecordState(collection, record_id, ward, fields, {name: ts for name in [*fields, *sets]}, sets)


def edit_row(s: RecordState, changeset_id: str = "cs-1", at: str = "2026-11-23T08:00:00.000Z") -> EditRow:
    return EditRow(s.collection, s.id, s.ward_id, s.seq, at, "u-officer", "h-01", changeset_id, encode_diff({k: (None, v) for k, v in s.fields.items()}, None))


def conflict_row(conflict_id: int, s: RecordState, field: str = "name", created_at: str = "2026-11-23T08:00:00.000Z") -> ConflictRow:
    return ConflictRow(
        id=conflict_id,
        collection=s.collection,
        record_id=s.id,
        ward_id=s.ward_id,
        field=field,
        kind="concurrent_edit",
        winner="client",
        server=_json.encode(ConflictSide("cũ", TS)),
        client=_json.encode(ConflictSide("mới", TS_LATER)),
        device_id="h-01",
        user_id="u-officer",
        changeset_id="cs-1",
        created_at=created_at,
    )


async def write(
    store: Store,
    *states: RecordState,
    edits: bool = False,
    conflicts: int = 0,
    answers: Sequence[StoredChangeset] = (),
) -> str:
    """Write record versions as the writer does (lock, number, save) in one transaction;
    with ``edits`` an edit-log row each, with ``conflicts`` that many conflicts on the
    first record. Answers the transaction's cursor."""
    async with store.write() as tx:
        await tx.seqs([(s.collection, s.id) for s in states])
        first = await tx.next_seqs(len(states))
        for offset, s in enumerate(states):
            s.seq = first + offset
        rows = []
        if conflicts:
            first_conflict = await tx.next_conflict_ids(conflicts)
            rows = [conflict_row(first_conflict + n, states[0]) for n in range(conflicts)]
        cursor = tx.cursor()
        await tx.save(
            [RecordRow(s, encode_doc(s), encode_crdt(s)) for s in states],
            [edit_row(s) for s in states] if edits else [],
            rows,
            answers,
        )
    return cursor


def ids_of(docs: Iterable[bytes]) -> list[str]:
    return [msgspec.json.decode(doc)["id"] for doc in docs]


async def pull_all(
    store: Store,
    cursor: str | None = None,
    *,
    wards: frozenset[str] | None = None,
    limit: int = 1000,
    collections: frozenset[str] | None = None,
    max_bytes: int | None = None,
) -> tuple[list[str], str, int]:
    """Follow cursors until ``more`` is false: the ids served, the last cursor, the pages."""
    served: list[str] = []
    pages = 0
    while True:
        page = await store.pull(wards, cursor, limit, collections, max_bytes)
        pages += 1
        served += ids_of(page.docs)
        cursor = page.cursor
        if not page.more:
            return served, cursor, pages


async def people(store: Store) -> None:
    """Two wards, a team, an officer with a handheld (token hash ``hash-h01``), a
    supervisor of Ba Đình and an admin."""
    await store.create(Ward(id=LAM_SON, name="Phường Lam Sơn"))
    await store.create(Ward(id=BA_DINH, name="Phường Ba Đình"))
    await store.create(Team(id="t-lamson", ward_id=LAM_SON, name="Tổ 1"))
    await store.create(User(id="u-officer", name="Nguyễn Văn An", role="officer", team_ids=["t-lamson"]))
    await store.create(User(id="u-super", name="Trần Thị Bình", role="supervisor", ward_ids=[BA_DINH]))
    await store.create(User(id="u-admin", name="Quản trị", role="admin"))
    await store.create(DeviceToken(device_id="h-01", user_id="u-officer", token=""), "hash-h01")
