"""Push and pull throughput over real HTTP, beside the raw SQLite floor.

    python bench/push_pull.py                      # 10,000 and 100,000 checks
    python bench/push_pull.py --sizes 10000 --db postgresql://...

50 simulated devices push check records in change sets of 100, 10 devices at
once; then a fresh client pulls everything in pages of 1,000.  The server runs in
its own process (``patrol-sync serve``); bodies are encoded before the clock starts,
so the figures are the server's, not the client's JSON encoder's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import running_server  # noqa: E402

from schemas import PulledRecord, PullResponse  # noqa: E402

DEVICES = 50
AT_ONCE = 10
BATCH = 100
T0 = 1_686_200_000_000


def uuid7() -> str:
    """A time-ordered id, as the SDK makes them (RFC 9562 UUIDv7)."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((rand >> 68) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def check_change(device: str, i: int) -> dict[str, Any]:
    ts = f"{T0 + i:013d}-0000-{device}"
    started = f"2023-06-{1 + i % 28:02d}T{8 + i % 10:02d}:15:00+07:00"
    fields = {
        "ward_id": "lam-son",
        "premises_id": f"prem-{i % 5000:05d}",
        "kind": ["residence", "fire_safety", "public_order", "business_conditions"][i % 4],
        "started_at": started,
        "result": "ok" if i % 3 else "violations_found",
        "residents_present": i % 9,
        "notes": "Kiểm tra nhà trọ, đăng ký tạm trú đầy đủ",
    }
    return {"collection": "checks", "id": uuid7(), "fields": {k: {"value": v, "ts": ts} for k, v in fields.items()}}


def bodies(total: int) -> dict[str, list[bytes]]:
    per_device = total // DEVICES
    out: dict[str, list[bytes]] = {}
    for d in range(DEVICES):
        device = f"h{d:03d}"
        changes = [check_change(device, d * per_device + i) for i in range(per_device)]
        out[device] = [
            msgspec.json.encode({"device_id": device, "changeset_id": str(uuid.uuid4()), "changes": changes[s : s + BATCH]})
            for s in range(0, len(changes), BATCH)
        ]
    return out


async def push_all(url: str, tokens: dict[str, str], work: dict[str, list[bytes]]) -> float:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for device in work:
        queue.put_nowait(device)

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            while not queue.empty():
                device = queue.get_nowait()
                headers = {"Authorization": f"Bearer {tokens[device]}", "Content-Type": "application/json"}
                for body in work[device]:
                    response = await http.post("/v1/sync/push", content=body, headers=headers)
                    response.raise_for_status()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(AT_ONCE)))
    return time.perf_counter() - start


_page = msgspec.json.Decoder(PullResponse[PulledRecord])  # typed, as the SDK decodes


async def pull_all(url: str, token: str) -> tuple[float, int]:
    count, cursor = 0, ""
    start = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=120, headers={"Authorization": f"Bearer {token}"}) as http:
        while True:
            response = await http.get("/v1/sync/pull", params={"cursor": cursor, "limit": 1000})
            response.raise_for_status()
            page = _page.decode(response.content)
            count += len(page.records)
            cursor = page.cursor
            if not page.more:
                break
    return time.perf_counter() - start, count


def raw_floor(total: int) -> tuple[float, float]:
    """Plain SQLite: insert the same JSON, 100 rows a transaction (WAL, synchronous=FULL), then scan it."""
    docs = [msgspec.json.encode(check_change("h000", i)) for i in range(total)]
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(os.path.join(tmp, "raw.db"), isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, doc BLOB)")
        start = time.perf_counter()
        for s in range(0, total, BATCH):
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO t (id, doc) VALUES (?, ?)", [(str(uuid.uuid4()), d) for d in docs[s : s + BATCH]])
            conn.execute("COMMIT")
        insert = total / (time.perf_counter() - start)
        start = time.perf_counter()
        n = 0
        last = 0
        while True:
            rows = conn.execute("SELECT seq, doc FROM t WHERE seq > ? ORDER BY seq LIMIT 1000", (last,)).fetchall()
            if not rows:
                break
            n += len(rows)
            last = rows[-1][0]
        scan = n / (time.perf_counter() - start)
        conn.close()
    return insert, scan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file per size)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print results as JSON lines")
    args = parser.parse_args()
    for total in [int(s) for s in args.sizes.split(",")]:
        work = bodies(total)
        with running_server(args.db, workers=args.workers) as fleet:
            fleet.setup(DEVICES)
            push_s = asyncio.run(push_all(fleet.url, fleet.tokens, work))
            pull_s, pulled = asyncio.run(pull_all(fleet.url, fleet.tokens["reader"]))
        assert pulled == total, (pulled, total)
        insert, scan = raw_floor(total)
        result = {
            "records": total,
            "store": (args.db or "sqlite").split(":")[0],
            "workers": args.workers,
            "push_per_s": round(total / push_s),
            "pull_per_s": round(total / pull_s),
            "raw_sqlite_insert_per_s": round(insert),
            "raw_sqlite_scan_per_s": round(scan),
        }
        if args.json:
            print(json.dumps(result))
        else:
            print(
                f"{total:>8} records  push {result['push_per_s']:>7}/s  pull {result['pull_per_s']:>7}/s   "
                f"(raw SQLite: insert {result['raw_sqlite_insert_per_s']:>7}/s, scan {result['raw_sqlite_scan_per_s']:>7}/s)"
            )


if __name__ == "__main__":
    main()
