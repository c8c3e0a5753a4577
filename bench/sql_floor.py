"""What SQLite alone costs of a push: the writer process's statements, replayed (issue 16).

    python bench/sql_floor.py --workload realistic --sizes 10000,100000
    python bench/sql_floor.py --sizes 100000 --drop p_checks_officer,p_checks_month   # what two indexes cost
    python bench/sql_floor.py --sizes 100000 --target 12000                          # the budget at a rate

A real server takes the push as ``bench/push_pull.py`` sends it (50 devices, change
sets of 100, 10 at once, the SDK's wire), with ``bench/_sqllog`` on its ``PYTHONPATH``:
its writer process copies the store as it first finds it and logs every statement it
runs, with its parameters. The statements are then replayed on the copy, in order, on
one connection with the writer's pragmas (``synchronous = FULL``), and nothing else
running: the CPU SQLite itself needs for the same rows, indexes, triggers and
commits, with none of the server's Python. Each statement's CPU is counted under its
kind (``INSERT INTO p_checks``, ``COMMIT``...); a checkpoint of the whole log at the end
is counted apart (the server runs it on a background thread).

Beside it, the run's own CPU a record: the bench's client (this process), the server's
process and its writer process. The writer's figure includes logging its statements
(the rate too: read ``bench/push_pull.py`` for those), and the client's at 10,000
includes making its ten HTTP clients (~0.3 s); at 100,000 it is ~27 µs a record. With
``--target R``: the CPU a record the machine has at R records/s on its cores, and what
is left of it once the client and SQLite alone are paid.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import pickle
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _harness import running_server  # noqa: E402
from _workloads import WORKLOADS  # noqa: E402
from push_pull import DEVICES, bodies, client_cpu_seconds, cpu_seconds, gzipped, push_all, warm_up  # noqa: E402

from sync_server.stores.sqlite._writer import PRAGMAS  # noqa: E402

_KIND = re.compile(r"^\s*(INSERT(?: OR \w+)? INTO \w+|UPDATE \w+|DELETE FROM \w+|BEGIN\b\s*\w*|COMMIT|ROLLBACK|PRAGMA \w+|SELECT)", re.I)
_FROM = re.compile(r"\bFROM (\w+)", re.I)


def kind(sql: str) -> str:
    found = _KIND.match(sql)
    if found is None:
        return " ".join(sql.split()[:3])
    head = " ".join(found.group(1).split())
    if head.upper() == "SELECT":
        table = _FROM.search(sql)
        return f"SELECT FROM {table.group(1)}" if table else "SELECT"
    return head


def _own_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def record(total: int, workload: str, folder: Path) -> dict[str, float]:
    """Push ``total`` records through a real server whose writer process logs its SQL to ``folder``."""
    work = gzipped(bodies(total, WORKLOADS[workload]))
    env = {"PATROL_SQL_LOG": str(folder), "PYTHONPATH": os.pathsep.join([str(HERE / "_sqllog"), os.environ.get("PYTHONPATH", "")])}
    with running_server(None, extra_env=env) as fleet:
        fleet.setup(DEVICES)
        warm_up(fleet.url, fleet.tokens["reader"])
        server, whole, client = _own_cpu(fleet.pid), cpu_seconds(fleet.pid), client_cpu_seconds()
        seconds = asyncio.run(push_all(fleet.url, fleet.tokens, work, minimal=True, gz=True))
        server, whole, client = _own_cpu(fleet.pid) - server, cpu_seconds(fleet.pid) - whole, client_cpu_seconds() - client
        time.sleep(0.5)  # (the writer process has flushed its log at its last COMMIT)
    return {"rate": total / seconds, "client": client, "server": server, "writer": whole - server}


def replay(folder: Path, drop: list[str], page_size: int = 0, commits: int = 1) -> tuple[collections.Counter[str], float]:
    """The logged statements on a copy of the store as the writer process first found it:
    CPU seconds by statement kind, and the final checkpoint's CPU. ``commits``: run only
    every n-th COMMIT (transactions n times as large)."""
    (log,) = folder.glob("*.log")
    base = folder / log.name.replace(".log", ".base.db")
    db = folder / "replay.db"
    for stale in folder.glob("replay.db*"):
        stale.unlink()
    shutil.copy(base, db)
    conn = sqlite3.connect(db, isolation_level=None)
    if page_size:
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute(f"PRAGMA page_size = {page_size}")
        conn.execute("VACUUM")
    for pragma in PRAGMAS(5000):
        conn.execute(pragma)
    for name in drop:
        conn.execute(f"DROP INDEX {name}")
    cpu: collections.Counter[str] = collections.Counter()
    clock = time.process_time
    seen = 0
    with log.open("rb") as f:
        while True:
            try:
                how, sql, params = pickle.load(f)
            except EOFError:
                break
            label = kind(sql)
            if label.startswith("BEGIN") and conn.in_transaction:
                continue
            if label == "COMMIT":
                seen += 1
                if seen % commits:
                    continue
            if how == "m":
                start = clock()
                conn.executemany(sql, params)
                cpu[label] += clock() - start
            else:
                start = clock()
                conn.execute(sql, params).fetchall()
                cpu[label] += clock() - start
    start = clock()
    if conn.in_transaction:
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    checkpoint = clock() - start
    conn.close()
    return cpu, checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--workload", default="realistic", choices=sorted(WORKLOADS))
    parser.add_argument("--drop", default="", help="indexes to drop from the copy before the replay (comma-separated)")
    parser.add_argument("--target", type=int, default=0, help="records/s: print the CPU budget a record at that rate")
    parser.add_argument("--page-size", type=int, default=0, help="replay on a copy rebuilt with this page size (bytes)")
    parser.add_argument("--merge-commits", type=int, default=1, help="replay n of the writer's transactions as one")
    parser.add_argument("--top", type=int, default=12, help="statement kinds to list")
    parser.add_argument("--keep", type=Path, help="keep the log and the store's copy in this folder (one size)")
    parser.add_argument("--replay", type=Path, help="replay a log kept with --keep instead of pushing (--sizes: its size)")
    args = parser.parse_args()
    drop = [name for name in args.drop.split(",") if name]
    cores = os.cpu_count() or 1
    for total in [int(s) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory(prefix="patrol-sqlfloor-") as tmp:
            folder = args.replay or args.keep or Path(tmp)
            folder.mkdir(parents=True, exist_ok=True)
            run = {"rate": 0.0, "client": 0.0, "server": 0.0, "writer": 0.0} if args.replay else record(total, args.workload, folder)
            cpu, checkpoint = replay(folder, drop, args.page_size, args.merge_commits)
        us = {label: seconds / total * 1e6 for label, seconds in cpu.items()}
        alone = sum(us.values())
        if not args.replay:
            print(
                f"{args.workload} {total} records: push {run['rate']:,.0f}/s; CPU a record: client {run['client'] / total * 1e6:.0f} µs, "
                f"server process {run['server'] / total * 1e6:.0f}, writer process {run['writer'] / total * 1e6:.0f}"
            )
        print(
            f"  SQLite alone, replayed{' without ' + ', '.join(drop) if drop else ''}{f' on {args.page_size} B pages' if args.page_size else ''}"
            f"{f', {args.merge_commits} transactions as one' if args.merge_commits > 1 else ''}: "
            f"{alone:.1f} µs a record, + {checkpoint / total * 1e6:.1f} for checkpointing the log"
        )
        for label, value in sorted(us.items(), key=lambda item: -item[1])[: args.top]:
            print(f"    {value:6.1f}  {label}")
        if args.target:
            budget = cores * 1e6 / args.target
            left = budget - run["client"] / total * 1e6 - alone - checkpoint / total * 1e6
            print(
                f"  at {args.target:,}/s on {cores} cores: {budget:.0f} µs of CPU a record in all; "
                f"after the client and SQLite alone, {left:.0f} µs for the server's HTTP, decode, merge, encode and hand-offs"
            )


if __name__ == "__main__":
    main()
