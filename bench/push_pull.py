"""Push and pull throughput over real HTTP, beside the raw SQLite floor and PouchDB.

    python bench/push_pull.py                      # 10,000 and 100,000 checks, both workloads
    python bench/push_pull.py --sizes 10000 --workload realistic --db postgresql://...
    python bench/push_pull.py --pouchdb            # PouchDB-server 4.2 in the same run

50 simulated devices push check records in change sets of 100, 10 devices at
once; then a fresh client pulls everything in pages of 1,000.  The server runs in
its own process (``patrol-sync serve``); bodies are encoded before the clock starts,
so the figures are the server's, not the client's JSON encoder's.

Three workloads: ``light`` (7 fields, no sets, UUIDv7 ids: the first bench's records),
``realistic`` (issue 16: all 15 fields of a check, Vietnamese notes, a ``photos`` set
of 0-2 blob ids and an ``officers`` set, random SHA-256 and ULID keys, 600-800 bytes
of JSON a change) and ``field`` (the realistic records with the ids devices make:
UUIDv7 record ids, premises from a pool of 2,000; photo ids stay random).  With ``--pouchdb`` the same records are
pushed to PouchDB-server 4.2 with ``_bulk_docs`` in the same run (``bench/_pouchdb.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import resource
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
from _pouchdb import PouchServer, pouch_push  # noqa: E402
from _workloads import WORKLOADS, Workload, pouch_doc  # noqa: E402

from schemas import PulledRecord, PullResponse  # noqa: E402

DEVICES = 50
AT_ONCE = 10
BATCH = 100
T0 = 1_686_200_000_000


def bodies(total: int, workload: Workload) -> dict[str, list[bytes]]:
    per_device = total // DEVICES
    out: dict[str, list[bytes]] = {}
    for d in range(DEVICES):
        device = f"h{d:03d}"
        changes = [workload.change(device, d * per_device + i) for i in range(per_device)]
        out[device] = [
            msgspec.json.encode({"device_id": device, "changeset_id": str(uuid.uuid4()), "changes": changes[s : s + BATCH]})
            for s in range(0, len(changes), BATCH)
        ]
    return out


#: how the bodies and answers go on the wire (``--wire``): whole answers from plain JSON
#: bodies (the heavier case), minimal answers, or as the SDK's defaults send them
#: (``client_sdk.WireOptions``: bodies gzip-compressed at level 6, ``Prefer: return=minimal``,
#: ``?stamps=compact``)
WIRES = ("whole", "minimal", "sdk")


def gzipped(work: dict[str, list[bytes]]) -> dict[str, list[bytes]]:
    """The bodies as the SDK sends them by default (``client_sdk/_sync.py``: ``_push_body``)."""
    return {device: [gzip.compress(body, compresslevel=6, mtime=0) for body in bodies] for device, bodies in work.items()}


def warm_up(url: str, token: str) -> None:
    """One empty change set before the clock starts: the server's first push starts its
    writer process (``stores/sqlite/_process.py``, ~0.2 s once a server's life), which is
    not what a push costs."""
    body = {"device_id": "reader", "changeset_id": str(uuid.uuid4()), "changes": []}
    httpx.post(f"{url}/v1/sync/push", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60).raise_for_status()


async def push_all(url: str, tokens: dict[str, str], work: dict[str, list[bytes]], minimal: bool = False, gz: bool = False) -> float:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for device in work:
        queue.put_nowait(device)

    params = {"stamps": "compact"} if gz else None  # (the SDK's wire: compact stamps too)

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=120, params=params) as http:
            while not queue.empty():
                device = queue.get_nowait()
                headers = {"Authorization": f"Bearer {tokens[device]}", "Content-Type": "application/json"}
                if minimal:  # as the SDK asks: the answer names seqs, not the records it sent
                    headers["Prefer"] = "return=minimal"
                if gz:
                    headers["Content-Encoding"] = "gzip"
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


def raw_floor(total: int, workload: Workload) -> tuple[float, float]:
    """Plain SQLite: insert the same JSON, 100 rows a transaction (WAL, synchronous=FULL), then scan it."""
    docs = [msgspec.json.encode(workload.change("h000", i)) for i in range(total)]
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


def own_cpu_seconds(pid: int) -> float:
    """User and system CPU so far of one process (all its threads), from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU so far of a process and the processes it started (the
    server's writer process too): unlike records/s, CPU a record hardly moves when other
    work shares the machine."""
    children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
    return own_cpu_seconds(pid) + sum(cpu_seconds(child) for child in children)


def client_cpu_seconds() -> float:
    """User and system CPU so far of this process (the bench's client, every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def written_bytes(pid: int) -> int:
    """Bytes a process and the processes it started have sent to the disk so far
    (``write_bytes`` of ``/proc/<pid>/io``: the WAL, the checkpoints, blob files)."""
    io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
    return int(io["write_bytes"]) + sum(written_bytes(child) for child in children)


def _record_bytes(work: dict[str, list[bytes]]) -> int:
    """The mean size of a record's values as JSON (what PouchDB stores), from a sample."""
    sample = [pouch_doc(c) for bs in work.values() for c in msgspec.json.decode(bs[0])["changes"]]
    return round(sum(len(msgspec.json.encode(d)) for d in sample) / len(sample))


def run(total: int, workload: Workload, wire: str, writer: str, args: argparse.Namespace, pouch: PouchServer | None) -> dict[str, Any]:
    work = bodies(total, workload)
    sent = gzipped(work) if wire == "sdk" else work  # (compressed before the clock starts)
    extra_env = {"PATROL_SYNC_SQLITE_WRITER": writer}
    if args.stages:
        extra_env["PATROL_STAGE_TIMERS"] = "1"
    with running_server(args.db, workers=args.workers, extra_env=extra_env) as fleet:
        fleet.setup(DEVICES)
        warm_up(fleet.url, fleet.tokens["reader"])
        cpu, written, client = cpu_seconds(fleet.pid), written_bytes(fleet.pid), client_cpu_seconds()
        push_s = asyncio.run(push_all(fleet.url, fleet.tokens, sent, minimal=wire != "whole", gz=wire == "sdk"))
        cpu, written = cpu_seconds(fleet.pid) - cpu, written_bytes(fleet.pid) - written
        client = client_cpu_seconds() - client
        # with --stages, no pull: the table the server prints when it stops is the push's alone
        pull_s, pulled = (0.0, total) if args.stages else asyncio.run(pull_all(fleet.url, fleet.tokens["reader"]))
    assert pulled == total, (pulled, total)
    result: dict[str, Any] = {
        "workload": workload.name,
        "records": total,
        "store": (args.db or "sqlite").split(":")[0],
        "workers": args.workers,
        "wire": wire,
        "sqlite_writer": writer,
        "push_per_s": round(total / push_s),
        "push_cpu_us": round(cpu / total * 1e6),
        "client_cpu_us": round(client / total * 1e6),  # (with making its ten HTTP clients: ~0.3 s)
        "push_written_kb": round(written / total / 1000, 1),
        "pull_per_s": round(total / pull_s) if pull_s else None,
        "bytes_per_change": round(sum(len(b) for bs in work.values() for b in bs) / total),
        "bytes_per_record": _record_bytes(work),
    }
    if pouch is not None:
        pouch_cpu = cpu_seconds(pouch.proc.pid)
        pouch_s = pouch_push(pouch, work, AT_ONCE)
        pouch_cpu = cpu_seconds(pouch.proc.pid) - pouch_cpu
        result["pouchdb_push_per_s"] = round(total / pouch_s)
        result["pouchdb_push_cpu_us"] = round(pouch_cpu / total * 1e6)
        result["ratio"] = round(result["push_per_s"] / result["pouchdb_push_per_s"], 2)
        result["cpu_ratio"] = round(result["pouchdb_push_cpu_us"] / max(result["push_cpu_us"], 1), 2)
    if not args.no_raw:
        insert, scan = raw_floor(total, workload)
        result["raw_sqlite_insert_per_s"] = round(insert)
        result["raw_sqlite_scan_per_s"] = round(scan)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--workload", default="light,realistic", help="light, realistic, field (comma-separated for several)")
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file per size)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--pouchdb", action="store_true", help="push the same records to PouchDB-server 4.2 (installed from npm)")
    parser.add_argument("--stages", action="store_true", help="the server logs per-stage CPU times (PATROL_STAGE_TIMERS=1)")
    parser.add_argument(
        "--wire",
        default="whole",
        help="whole (plain JSON bodies, whole answers), minimal (Prefer: return=minimal) or sdk (gzip bodies, minimal answers, "
        "compact stamps: as the SDK sends by default); comma-separated for several lines",
    )
    parser.add_argument("--minimal", action="store_true", help="the same as --wire minimal")
    parser.add_argument(
        "--sqlite-writer",
        default="process",
        help="process (the default: pushes written by a process of the server's own) or thread (in the server's process); "
        "comma-separated for a line each, side by side",
    )
    parser.add_argument("--no-raw", action="store_true", help="skip the raw SQLite floor")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each size and workload")
    parser.add_argument("--json", action="store_true", help="print results as JSON lines")
    args = parser.parse_args()
    wires = ["minimal"] if args.minimal else args.wire.split(",")
    if not set(wires) <= set(WIRES):
        parser.error(f"--wire: one or more of {', '.join(WIRES)}")
    writers = args.sqlite_writer.split(",")
    if not set(writers) <= {"process", "thread"}:
        parser.error("--sqlite-writer: process, thread or both")
    pouch = PouchServer.start() if args.pouchdb else None
    try:
        for name in args.workload.split(","):
            for total, wire in [(int(s), w) for s in args.sizes.split(",") for w in wires]:
                for _, writer in [(n, w) for n in range(args.repeat) for w in writers]:
                    result = run(total, WORKLOADS[name], wire, writer, args, pouch)
                    if args.json:
                        print(json.dumps(result), flush=True)
                        continue
                    line = (
                        f"{name:>9} {total:>8} records ({result['bytes_per_record']} B, {result['bytes_per_change']} B a change) {wire:>7}"
                        f"{' ' + writer if len(writers) > 1 else ''}  "
                        f"push {result['push_per_s']:>7}/s ({result['push_cpu_us']} µs CPU, client {result['client_cpu_us']} µs, "
                        f"{result['push_written_kb']} KB written a record)  "
                        + (f"pull {result['pull_per_s']:>7}/s" if result["pull_per_s"] else "(no pull: --stages)")
                    )
                    if "pouchdb_push_per_s" in result:
                        line += (
                            f"   PouchDB push {result['pouchdb_push_per_s']:>6}/s ({result['pouchdb_push_cpu_us']} µs CPU): "
                            f"{result['ratio']}x its rate, {result['cpu_ratio']}x its CPU efficiency"
                        )
                    if "raw_sqlite_insert_per_s" in result:
                        line += f"   (raw SQLite: insert {result['raw_sqlite_insert_per_s']:>7}/s, scan {result['raw_sqlite_scan_per_s']:>7}/s)"
                    print(line, flush=True)
    finally:
        if pouch is not None:
            pouch.stop()


if __name__ == "__main__":
    main()
