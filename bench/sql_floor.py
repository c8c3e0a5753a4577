"""What SQLite alone costs of a push: the writer process's statements, replayed (issue 16).

    python bench/sql_floor.py --workload realistic --sizes 10000,100000 --target 12000
    python bench/sql_floor.py --sizes 100000 --keep /tmp/floor            # keep the log and the copies
    python bench/sql_floor.py --replay /tmp/floor --drop p_checks_month   # replay it again, one index fewer

A real server takes the push as ``bench/push_pull.py`` sends it (50 devices, change
sets of 100, 10 at once, the SDK's wire), with ``bench/_sqllog`` on its ``PYTHONPATH``:
its writer process copies the store as it first finds it and logs every statement it
runs, with its parameters. The statements are then replayed on the copy, in order, on
one connection with the writer's pragmas (``synchronous = FULL``), and nothing else
running: the CPU SQLite itself needs for the same rows, indexes, triggers and commits,
with none of the server's Python. Each statement's CPU is counted under its kind
(``INSERT INTO p_checks``, ``COMMIT``...). A second connection checkpoints the log every
8 commits, as the server's background thread does every 0.5 s; that CPU is counted
apart: it runs beside the writer, not under its lock.

The replayed copy is then compared with the server's own store, table by table, row by
row: a push written by any other path (the server's own writer thread, after the
writer process refused a group) would be missing from the log, and the bench says so and
fails.

Beside it, the run's own CPU a record: the bench's client (this process), the server's
process and its writer process. The writer's figure includes logging its statements
(the rate too: read ``bench/push_pull.py`` for those), and the client's at 10,000
includes making its ten HTTP clients (~0.3 s); at 100,000 it is ~27 µs a record. With
``--target R``: the CPU a record the machine has at R records/s on its cores, what is
left of it once the client and SQLite alone are paid, and the rate SQLite's one writer
allows at most (its statements run one transaction at a time, whatever the cores).

The log and the copies hold the store's data: ``--keep`` wants an empty folder, and
the files are readable by their owner only.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import os
import re
import shutil
import sqlite3
import struct
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _harness import running_server  # noqa: E402
from _workloads import WORKLOADS  # noqa: E402
from push_pull import DEVICES, bodies, client_cpu_seconds, cpu_seconds, gzipped, own_cpu_seconds, push_all, warm_up  # noqa: E402

from sync_server.stores.sqlite._writer import PRAGMAS  # noqa: E402

_KIND = re.compile(r"^\s*(INSERT(?: OR \w+)? INTO \w+|UPDATE \w+|DELETE FROM \w+|BEGIN\b\s*\w*|COMMIT|ROLLBACK|PRAGMA \w+|SELECT)", re.I)
_FROM = re.compile(r"\bFROM (\w+)", re.I)
#: the tables a push writes, compared between the server's store and the replayed copy
PUSHED_TABLES = ("records", "edits", "changesets", "conflicts", "p_keys", "p_checks", "p_violations", "p_premises", "p_tally", "blob_refs")
CHECKPOINT = "checkpoint (beside the writer, every 8 commits)"
CHECKPOINT_EVERY = 8


def kind(sql: str) -> str:
    found = _KIND.match(sql)
    if found is None:
        return " ".join(sql.split()[:3])
    head = " ".join(found.group(1).split())
    if head.upper() == "SELECT":
        table = _FROM.search(sql)
        return f"SELECT FROM {table.group(1)}" if table else "SELECT"
    return head


def record(total: int, workload: str, folder: Path) -> dict[str, float]:
    """Push ``total`` records through a real server (its store: ``folder/server.db``) whose
    writer process logs its SQL to ``folder``."""
    work = gzipped(bodies(total, WORKLOADS[workload]))
    env = {"PATROL_SQL_LOG": str(folder), "PYTHONPATH": os.pathsep.join([str(HERE / "_sqllog"), os.environ.get("PYTHONPATH", "")])}
    store = folder / "server.db"
    os.close(os.open(store, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with running_server(f"sqlite:///{store}", extra_env=env) as fleet:
        fleet.setup(DEVICES)
        warm_up(fleet.url, fleet.tokens["reader"])
        server, whole, client = own_cpu_seconds(fleet.pid), cpu_seconds(fleet.pid), client_cpu_seconds()
        seconds = asyncio.run(push_all(fleet.url, fleet.tokens, work, minimal=True, gz=True))
        server, whole, client = own_cpu_seconds(fleet.pid) - server, cpu_seconds(fleet.pid) - whole, client_cpu_seconds() - client
    (folder / "run.json").write_text(json.dumps({"records": total, "workload": workload}))
    return {"rate": total / seconds, "client": client, "server": server, "writer": whole - server}


def frames(log: Path) -> Iterator[list[Any]]:
    """The log's frames: ``["x", sql, params]``, ``["m", sql, rows]``, ``["failed"]``."""
    decode = msgspec.msgpack.Decoder().decode
    with log.open("rb") as f:
        while header := f.read(4):
            (size,) = struct.unpack("<I", header)
            yield decode(f.read(size))


class Replay:
    """CPU seconds by statement kind, and what did not go as it did when recorded."""

    def __init__(self) -> None:
        self.cpu: collections.Counter[str] = collections.Counter()
        self.failed_then = 0
        self.failed_now = 0


def replay(folder: Path, drop: list[str], page_size: int = 0, commits: int = 1) -> Replay:
    """The logged statements on a copy of the store as the writer process first found it.
    ``commits``: run only every n-th COMMIT (transactions n times as large)."""
    logs = sorted(folder.glob("*.log"))
    if len(logs) != 1:
        raise SystemExit(f"{folder}: {len(logs)} logs of a writer process, one expected")
    (log,) = logs
    db = folder / "replay.db"
    for stale in folder.glob("replay.db*"):
        stale.unlink()
    shutil.copy(folder / log.name.replace(".log", ".base.db"), db)
    os.chmod(db, 0o600)
    conn = sqlite3.connect(db, isolation_level=None)
    if page_size:
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute(f"PRAGMA page_size = {page_size}")
        conn.execute("VACUUM")
    for pragma in PRAGMAS(5000):
        conn.execute(pragma)
    for name in drop:
        conn.execute(f"DROP INDEX {name}")
    checkpointer = sqlite3.connect(db, isolation_level=None)
    out = Replay()
    clock = time.process_time
    seen = 0
    for frame in frames(log):
        if frame[0] == "failed":
            out.failed_then += 1
            continue
        how, sql, params = frame
        label = kind(sql)
        if label.startswith("BEGIN") and conn.in_transaction:
            continue  # (transactions merged)
        if label == "ROLLBACK" and commits > 1:
            raise SystemExit("the log has a ROLLBACK: its transactions cannot be merged (--merge-commits)")
        if label == "COMMIT":
            seen += 1
            if seen % commits:
                continue
        start = clock()
        try:
            if how == "m":
                conn.executemany(sql, params)
            else:
                conn.execute(sql, params).fetchall()
        except sqlite3.Error:
            out.failed_now += 1
        out.cpu[label] += clock() - start
        if label == "COMMIT" and seen % (CHECKPOINT_EVERY * commits) == 0:
            start = clock()
            checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            out.cpu[CHECKPOINT] += clock() - start
    start = clock()
    if conn.in_transaction:
        conn.execute("COMMIT")
    checkpointer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    out.cpu[CHECKPOINT] += clock() - start
    checkpointer.close()
    conn.close()
    return out


def _digest(conn: sqlite3.Connection, table: str) -> tuple[int, str]:
    columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    if not columns:
        return 0, ""
    order = ", ".join(str(i + 1) for i in range(len(columns)))
    digest = hashlib.blake2b()
    count = 0
    for row in conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}"):
        digest.update(repr(row).encode())
        count += 1
    return count, digest.hexdigest()


def differences(folder: Path) -> list[str]:
    """The pushed tables whose rows differ between the server's store and the replayed copy."""
    server, replayed = sqlite3.connect(folder / "server.db"), sqlite3.connect(folder / "replay.db")
    try:
        found = []
        for table in PUSHED_TABLES:
            (n, a), (m, b) = _digest(server, table), _digest(replayed, table)
            if a != b:
                found.append(f"{table}: {n} rows in the server's store, {m} replayed, not the same")
        return found
    finally:
        server.close()
        replayed.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--workload", default="realistic", choices=sorted(WORKLOADS))
    parser.add_argument("--drop", default="", help="indexes to drop from the copy before the replay (comma-separated)")
    parser.add_argument("--target", type=int, default=0, help="records/s: print the CPU budget a record at that rate")
    parser.add_argument("--page-size", type=int, default=0, help="replay on a copy rebuilt with this page size (bytes)")
    parser.add_argument("--merge-commits", type=int, default=1, help="replay n of the writer's transactions as one")
    parser.add_argument("--top", type=int, default=12, help="statement kinds to list")
    parser.add_argument("--keep", type=Path, help="keep the log and the copies in this folder (empty or new; one size)")
    parser.add_argument("--replay", type=Path, help="replay a folder kept with --keep instead of pushing")
    args = parser.parse_args()
    drop = [name for name in args.drop.split(",") if name]
    cores = len(os.sched_getaffinity(0))
    if args.keep is not None and args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"--keep: {args.keep} is not empty")
    runs: list[tuple[int, str]]
    if args.replay is not None:
        kept = json.loads((args.replay / "run.json").read_text())
        runs = [(int(kept["records"]), str(kept["workload"]))]
    else:
        runs = [(int(s), args.workload) for s in args.sizes.split(",")]
        if args.keep is not None and len(runs) > 1:
            parser.error("--keep: one size")
    failed = False
    for total, workload in runs:
        with tempfile.TemporaryDirectory(prefix="patrol-sqlfloor-") as tmp:
            folder = args.replay or args.keep or Path(tmp)
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            run = None if args.replay else record(total, workload, folder)
            result = replay(folder, drop, args.page_size, args.merge_commits)
            wrong = [] if drop or args.merge_commits > 1 or args.page_size else differences(folder)
        us = {label: seconds / total * 1e6 for label, seconds in result.cpu.items()}
        checkpoint = us.pop(CHECKPOINT, 0.0)
        alone = sum(us.values())
        if run is not None:
            print(
                f"{workload} {total} records: push {run['rate']:,.0f}/s; CPU a record: client {run['client'] / total * 1e6:.0f} µs, "
                f"server process {run['server'] / total * 1e6:.0f}, writer process {run['writer'] / total * 1e6:.0f}"
            )
        variant = "".join(
            [
                f" without {', '.join(drop)}" if drop else "",
                f" on {args.page_size} B pages" if args.page_size else "",
                f", {args.merge_commits} transactions as one" if args.merge_commits > 1 else "",
            ]
        )
        print(f"  SQLite alone, replayed{variant}: {alone:.1f} µs a record, + {checkpoint:.1f} for checkpoints beside the writer")
        for label, value in sorted(us.items(), key=lambda item: -item[1])[: args.top]:
            print(f"    {value:6.1f}  {label}")
        if result.failed_then or result.failed_now:
            print(f"  statements that failed: {result.failed_then} when recorded, {result.failed_now} in the replay")
        if wrong:
            failed = True
            print("  THE REPLAY DIFFERS FROM THE SERVER'S STORE (a write the log missed):")
            for line in wrong:
                print(f"    {line}")
        elif not (drop or args.merge_commits > 1 or args.page_size):
            print(f"  the replayed copy matches the server's store, row for row ({', '.join(PUSHED_TABLES)})")
        if args.target:
            budget = cores * 1e6 / args.target
            if run is not None:
                client = run["client"] / total * 1e6
                paid = f"after the client ({client:.0f} µs) and SQLite alone, {budget - client - alone - checkpoint:.0f} µs"
            else:  # (a replay has no client)
                paid = f"after SQLite alone, {budget - alone - checkpoint:.0f} µs less the client's"
            print(
                f"  at {args.target:,}/s on {cores} cores: {budget:.0f} µs of CPU a record in all; {paid} for the server's HTTP, "
                f"decode, merge, encode and hand-offs; SQLite's one writer allows {1e6 / alone:,.0f}/s at most"
            )
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
