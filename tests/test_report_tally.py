"""The report counters (``p_tally``) stay equal to a recount of the projection rows
whatever arrives: new records, edits that move a record to another day, category,
status, fine or premises, deletions and undeletions, in random order, on both stores."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from typing import Any

import pytest

from sync_server.stores import store_for

from . import storedb
from .helpers import World, edit, stamp
from .test_record_keys import UNDO_9

A, C = "lamson-h01", "phuson-h01"

#: the tally as the store reads it (PostgreSQL: folded rows plus pending deltas)
_TALLY = {
    "sqlite": "SELECT ward, day, fact, value, n, amount FROM p_tally WHERE n <> 0 OR amount <> 0",
    "postgresql": """
        SELECT ward_id, day, fact, value, sum(n), sum(amount) FROM (
            SELECT * FROM p_tally UNION ALL SELECT * FROM p_tally_delta) t
        GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0 OR sum(amount) <> 0""",
}
#: the same figures counted again from the projection rows
_RECOUNT = {
    "sqlite": """
        SELECT ward, coalesce(day, 0), 0, 0, count(*), 0 FROM p_checks WHERE live = 1 GROUP BY 1, 2
        UNION ALL SELECT ward, 0, 3, coalesce(premises, -1), count(*), 0 FROM p_checks WHERE live = 1 GROUP BY 1, 4
        UNION ALL SELECT ward, coalesce(day, 0), 1, coalesce(category, -1), count(*), coalesce(sum(fine), 0)
                    FROM p_violations WHERE live = 1 GROUP BY 1, 2, 4
        UNION ALL SELECT ward, coalesce(day, 0), 2, coalesce(status, -1), count(*), 0 FROM p_violations WHERE live = 1 GROUP BY 1, 2, 4
        UNION ALL SELECT ward, -1, 1, coalesce(category, -1), count(*), coalesce(sum(fine), 0) FROM p_violations WHERE live = 1 GROUP BY 1, 4
        UNION ALL SELECT ward, -1, 2, coalesce(status, -1), count(*), 0 FROM p_violations WHERE live = 1 GROUP BY 1, 4""",
    "postgresql": """
        SELECT ward_id, coalesce(day, ''), 'checks', '', count(*), 0 FROM p_checks WHERE live = 1 GROUP BY 1, 2
        UNION ALL SELECT ward_id, '', 'premises', coalesce(premises_id, ''), count(*), 0 FROM p_checks WHERE live = 1 GROUP BY 1, 4
        UNION ALL SELECT ward_id, coalesce(day, ''), 'category', coalesce(category, ''), count(*), coalesce(sum(fine_vnd), 0)
                    FROM p_violations WHERE live = 1 GROUP BY 1, 2, 4
        UNION ALL SELECT ward_id, coalesce(day, ''), 'status', coalesce(status, ''), count(*), 0 FROM p_violations WHERE live = 1 GROUP BY 1, 2, 4
        UNION ALL SELECT ward_id, 'all', 'category', coalesce(category, ''), count(*), coalesce(sum(fine_vnd), 0) FROM p_violations WHERE live = 1 GROUP BY 1, 4
        UNION ALL SELECT ward_id, 'all', 'status', coalesce(status, ''), count(*), 0 FROM p_violations WHERE live = 1 GROUP BY 1, 4""",
}

_DAYS = ["2023-06-01T08:00:00+07:00", "2023-06-01T23:30:00+07:00", "2023-06-02T00:30:00+07:00", "2023-07-15T10:00:00+07:00"]
_PREMISES = ["p1", "p2", "p3"]
_CATEGORIES = ["fire_safety", "residence_registration", "drugs"]
_STATUSES = ["open", "notified", "fined", "resolved"]


def _dialect(db_url: str) -> str:
    return "sqlite" if db_url.startswith("sqlite") else "postgresql"


async def _tally_matches_a_recount(db_url: str) -> None:
    dialect = _dialect(db_url)
    tally = sorted(tuple(int(v) if isinstance(v, int) else v for v in r) for r in await storedb.rows(db_url, _TALLY[dialect]))
    recount = sorted(tuple(int(v) if isinstance(v, int) else v for v in r) for r in await storedb.rows(db_url, _RECOUNT[dialect]))
    assert tally == recount


def _change(rng: random.Random, device: str, ward: str, ids: dict[str, list[str]], n: int) -> dict[str, Any]:
    """A random change: a new check or violation, an edit, a deletion or (an edit of a
    deleted record) an undeletion."""
    ts = stamp(device)
    roll = rng.random()
    if roll < 0.25 or not ids["checks"]:
        record = f"{ward}-c{n}"
        ids["checks"].append(record)
        fields = {"ward_id": ward, "premises_id": rng.choice(_PREMISES), "kind": "fire_safety", "started_at": rng.choice(_DAYS)}
        return {"collection": "checks", "id": record, "fields": {k: edit(v, ts) for k, v in fields.items()}}
    if roll < 0.45:
        record = f"{ward}-v{n}"
        ids["violations"].append(record)
        fields = {
            "ward_id": ward,
            "check_id": rng.choice(ids["checks"]),
            "premises_id": rng.choice(_PREMISES),
            "category": rng.choice(_CATEGORIES),
            "status": rng.choice(_STATUSES),
            "fine_vnd": rng.choice([0, 500_000, 1_500_000]),
            "created_at": rng.choice(_DAYS),
        }
        return {"collection": "violations", "id": record, "fields": {k: edit(v, ts) for k, v in fields.items()}}
    collection = "violations" if ids["violations"] and rng.random() < 0.5 else "checks"
    record = rng.choice(ids[collection])
    if roll < 0.6:
        return {"collection": collection, "id": record, "delete": {"ts": ts}}
    if collection == "checks":
        return {"collection": collection, "id": record, "fields": {"started_at": edit(rng.choice(_DAYS), ts)}}
    name, value = rng.choice([("category", rng.choice(_CATEGORIES)), ("status", rng.choice(_STATUSES)), ("fine_vnd", rng.choice([0, 200_000])), ("created_at", rng.choice(_DAYS))])
    return {"collection": collection, "id": record, "fields": {name: edit(value, ts)}}


@pytest.mark.parametrize("seed", [1, 2])
async def test_report_counters_equal_a_recount_after_random_pushes_edits_deletes_and_undeletes(world: World, db_url: str, seed: int) -> None:
    rng = random.Random(seed)
    officers = [(world.officer_a, A, "lam-son"), (world.officer_c, C, "phu-son")]
    ids: dict[str, dict[str, list[str]]] = {ward: {"checks": [], "violations": []} for _, _, ward in officers}
    n = 0
    for _ in range(12):
        api, device, ward = rng.choice(officers)
        changes = []
        for _ in range(rng.randint(1, 8)):
            n += 1
            changes.append(_change(rng, device, ward, ids[ward], n))
        await api.push_ok(changes)
        await _tally_matches_a_recount(db_url)
    summary = (await world.supervisor.http.get("/v1/reports/summary")).json()
    by_ward = (await world.supervisor.http.get("/v1/reports/checks", params={"group_by": "ward"})).json()["rows"]
    assert summary["checks"] == sum(r["checks"] for r in by_ward)
    column = "premises" if _dialect(db_url) == "sqlite" else "premises_id"
    distinct = await storedb.rows(db_url, f"SELECT count(DISTINCT {column}) FROM p_checks WHERE live = 1")
    assert summary["premises_checked"] == distinct[0][0]
    june = (await world.supervisor.http.get("/v1/reports/summary", params={"from": "2023-06-01", "to": "2023-06-30"})).json()
    assert june["premises_checked"] <= summary["premises_checked"] <= len(_PREMISES)
    await _tally_matches_a_recount(db_url)  # and a read (which folds PostgreSQL's deltas) changes nothing


_UNDO = {
    "sqlite": """
        DROP TRIGGER p_checks_tally_insert; DROP TRIGGER p_checks_tally_update; DROP TRIGGER p_checks_tally_delete;
        DROP TRIGGER p_violations_tally_insert; DROP TRIGGER p_violations_tally_update; DROP TRIGGER p_violations_tally_delete;
        DROP TABLE p_tally; PRAGMA user_version = 7;""",
    "postgresql": """
        DROP TABLE p_tally, p_tally_delta; DROP FUNCTION p_checks_tally, p_violations_tally CASCADE;
        DELETE FROM schema_migrations WHERE version = 7;""",
}


async def test_the_migration_fills_the_counters_of_a_store_written_before_them(world: World, db_url: str) -> None:
    rng = random.Random(3)
    ids: dict[str, list[str]] = {"checks": [], "violations": []}
    for n in range(1, 40, 8):
        await world.officer_a.push_ok([_change(rng, A, "lam-son", ids, n + i) for i in range(8)])
    if _dialect(db_url) == "sqlite":
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            conn.executescript(UNDO_9 + _UNDO["sqlite"])  # the migrations after 7, newest first
    else:
        await storedb.execute(db_url, _UNDO["postgresql"])
    store = store_for(db_url)  # a store of the version before: opening it migrates
    await store.open()
    await store.close()
    await _tally_matches_a_recount(db_url)
    assert await storedb.rows(db_url, "SELECT count(*) FROM p_tally") != [(0,)]


@pytest.fixture
def folds_often(monkeypatch: pytest.MonkeyPatch) -> None:
    from sync_server.stores.postgres.store import PostgresStore

    monkeypatch.setattr(PostgresStore, "FOLD_EVERY_S", 0.1)


async def test_postgresql_folds_pending_counter_deltas_even_when_nobody_reads_a_report(folds_often: None, world: World, db_url: str) -> None:
    if _dialect(db_url) != "postgresql":
        pytest.skip("only PostgreSQL appends deltas (SQLite's triggers update the counters in place)")
    rng = random.Random(4)
    ids: dict[str, list[str]] = {"checks": [], "violations": []}
    await world.officer_a.push_ok([_change(rng, A, "lam-son", ids, n) for n in range(1, 9)])
    for _ in range(100):
        pending = await storedb.rows(db_url, "SELECT count(*) FROM p_tally_delta")
        if pending[0][0] == 0:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the deltas were never folded")
    await _tally_matches_a_recount(db_url)
