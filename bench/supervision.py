"""Report and search latency on a large store (issue 4).

    python bench/supervision.py                         # 1,000,000 checks, 500,000 violations
    python bench/supervision.py --checks 100000 --violations 50000

Fills a fresh SQLite store through the store's own write path (records and their
report projections, in transactions of 5,000; no HTTP, no merge: the push path is
measured by push_pull.py), 30 wards with 2,000 premises each, then starts the server
and times each report over HTTP: median and 95th percentile of 15 runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import running_server  # noqa: E402

from schemas import Ward  # noqa: E402
from sync_server.engine import RecordState  # noqa: E402
from sync_server.engine.state import encode_crdt, encode_doc  # noqa: E402
from sync_server.services import identity  # noqa: E402
from sync_server.stores import RecordRow, store_for  # noqa: E402

WARDS = [f"ward-{i:02d}" for i in range(30)]
STREETS = ["Lê Lợi", "Trần Phú", "Bà Triệu", "Nguyễn Trãi", "Phan Chu Trinh", "Hàm Nghi", "Lê Hoàn", "Đào Duy Từ", "Hạc Thành", "Tống Duy Tân"]
PREFIX = ["Nhà trọ", "Nhà nghỉ", "Karaoke", "Quán bar", "Chung cư", "Cửa hàng", "Khách sạn"]
KINDS = ["boarding_house", "lodging", "karaoke", "bar", "apartment_block", "shop", "other"]
CHECK_KINDS = ["residence", "fire_safety", "public_order", "business_conditions"]
CATEGORIES = ["residence_registration", "fire_safety", "public_order", "traffic", "drugs", "business_license", "other"]
STATUSES = ["open", "notified", "fined", "resolved", "dismissed"]


def _state(collection: str, record_id: str, ward: str, fields: dict[str, object], n: int) -> RecordState:
    stamp = f"{1_686_200_000_000 + n:013d}-0000-bench"
    return RecordState(collection, record_id, ward, {"ward_id": ward, **fields}, {k: stamp for k in ("ward_id", *fields)})


def generate(checks: int, violations: int, premises_per_ward: int, rng: random.Random):  # type: ignore[no-untyped-def]
    n = 0
    for ward in WARDS:
        for i in range(premises_per_ward):
            n += 1
            name = f"{rng.choice(PREFIX)} {rng.choice(STREETS)} {i}"
            yield _state("premises", f"{ward}-p{i}", ward, {"name": name, "kind": rng.choice(KINDS), "address": f"{i} {rng.choice(STREETS)}", "created_by": "u-bench"}, n)
    for i in range(checks):
        n += 1
        ward = WARDS[i % len(WARDS)]
        day = f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(7, 20):02d}:00:00+07:00"
        yield _state(
            "checks",
            f"c{i}",
            ward,
            {"premises_id": f"{ward}-p{rng.randrange(premises_per_ward)}", "kind": rng.choice(CHECK_KINDS), "started_at": day, "team_id": f"{ward}-t{rng.randint(1, 3)}", "officer_id": f"u-{ward}-{rng.randint(1, 8)}"},
            n,
        )
    for i in range(violations):
        n += 1
        check = rng.randrange(checks)
        ward = WARDS[check % len(WARDS)]
        day = f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:00:00+07:00"
        yield _state(
            "violations",
            f"v{i}",
            ward,
            {"check_id": f"c{check}", "premises_id": f"{ward}-p{rng.randrange(premises_per_ward)}", "category": rng.choice(CATEGORIES), "status": rng.choice(STATUSES), "fine_vnd": rng.choice([0, 500_000, 1_500_000]), "created_at": day},
            n,
        )


async def fill(url: str, checks: int, violations: int, premises_per_ward: int) -> float:
    store = store_for(url)
    await store.open()
    for ward in WARDS:
        await identity.create_entity(store, Ward(id=ward, name=f"Phường {ward}"))
    start = time.perf_counter()
    batch: list[RecordState] = []

    async def flush() -> None:
        async with store.write() as tx:
            first = await tx.next_seqs(len(batch))
            rows = []
            for offset, state in enumerate(batch):
                state.seq = first + offset
                rows.append(RecordRow(state, encode_doc(state), encode_crdt(state)))
            await tx.save(rows, [], [], [])
        batch.clear()

    for state in generate(checks, violations, premises_per_ward, random.Random(7)):
        batch.append(state)
        if len(batch) == 5000:
            await flush()
    if batch:
        await flush()
    await store.close()
    return time.perf_counter() - start


def timed(http: httpx.Client, path: str, params: dict[str, str], runs: int = 15) -> tuple[float, float, int]:
    times = []
    size = 0
    for _ in range(runs):
        t = time.perf_counter()
        response = http.get(path, params=params)
        times.append((time.perf_counter() - t) * 1000)
        response.raise_for_status()
        size = len(response.content)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], size


QUERIES = [
    ("summary, one ward-month", "/v1/reports/summary", {"ward": "ward-07", "from": "2023-06-01", "to": "2023-06-30"}),
    ("checks by day, one ward-month", "/v1/reports/checks", {"group_by": "day", "ward": "ward-07", "from": "2023-06-01", "to": "2023-06-30"}),
    ("checks by premises kind, one ward-month", "/v1/reports/checks", {"group_by": "premises_kind", "ward": "ward-07", "from": "2023-06-01", "to": "2023-06-30"}),
    ("summary, everything", "/v1/reports/summary", {}),
    ("checks by ward, everything", "/v1/reports/checks", {"group_by": "ward"}),
    ("checks by month, everything", "/v1/reports/checks", {"group_by": "month"}),
    ("checks by premises kind, everything", "/v1/reports/checks", {"group_by": "premises_kind"}),
    ("checks by officer, everything", "/v1/reports/checks", {"group_by": "officer"}),
    ("checks by team, everything (sorted)", "/v1/reports/checks", {"group_by": "team"}),
    ("checks by day, everything (sorted)", "/v1/reports/checks", {"group_by": "day"}),
    ("checks by week, one ward-year (sorted)", "/v1/reports/checks", {"group_by": "week", "ward": "ward-07", "from": "2023-01-01", "to": "2023-12-31"}),
    ("search 'nha tro le loi', all wards", "/v1/search/premises", {"q": "nha tro le loi"}),
    ("search 'karaoke', one ward", "/v1/search/premises", {"q": "karaoke", "ward": "ward-03"}),
    ("search 'duong ba trieu 1', all wards", "/v1/search/premises", {"q": "ba trieu 1"}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checks", type=int, default=1_000_000)
    parser.add_argument("--violations", type=int, default=500_000)
    parser.add_argument("--premises-per-ward", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="patrol-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'big.db'}"
        seconds = asyncio.run(fill(url, args.checks, args.violations, args.premises_per_ward))
        total = args.checks + args.violations + args.premises_per_ward * len(WARDS)
        size_mb = os.path.getsize(Path(tmp) / "big.db") / 1e6
        print(f"filled {total:,} records in {seconds:.0f} s ({total / seconds:,.0f}/s); store {size_mb:,.0f} MB")
        with running_server(url) as fleet, httpx.Client(base_url=fleet.url, headers={"Authorization": f"Bearer {fleet.admin_token}"}, timeout=120) as http:
            print(f"{'query':<42} {'median ms':>10} {'p95 ms':>8} {'bytes':>8}")
            for name, path, params in QUERIES:
                median, p95, size = timed(http, path, params)
                print(f"{name:<42} {median:>10.1f} {p95:>8.1f} {size:>8}")


if __name__ == "__main__":
    main()
