"""The SQL floor bench (``bench/sql_floor.py``, issue 16) replays all the writer wrote.

Its figure is only worth something if the log it replays is the whole of what the
server's writer process did: the replayed copy must hold every pushed record, its
edit-log row, its report row and the tally the triggers keep.
"""

from __future__ import annotations

import importlib
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from .reliability._process import ROOT


def _bench_module(name: str) -> Any:
    """A module of ``bench/`` (which finds its neighbours on ``sys.path``), leaving the
    path as it was: ``bench/`` holds modules named ``console`` and ``load``."""
    saved = list(sys.path)
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path[:] = saved


kind = _bench_module("sql_floor").kind


def test_statements_are_counted_by_their_kind() -> None:
    assert kind("INSERT OR IGNORE INTO p_keys (id) VALUES (?)") == "INSERT OR IGNORE INTO p_keys"
    assert kind("\n  insert into records (seq, id) values (?, ?)") == "insert into records"
    assert kind("SELECT key, id FROM p_keys WHERE id IN (?, ?)") == "SELECT FROM p_keys"
    assert kind("SELECT (SELECT coalesce(max(seq), 0) FROM records), 1") == "SELECT FROM records"
    assert kind("BEGIN IMMEDIATE") == "BEGIN IMMEDIATE" and kind("COMMIT") == "COMMIT"
    assert kind("DELETE FROM blob_refs WHERE rk IN (?)") == "DELETE FROM blob_refs"


def test_the_replayed_copy_is_the_servers_store_row_for_row(tmp_path: Path) -> None:
    kept = tmp_path / "floor"
    done = subprocess.run(
        [sys.executable, "bench/sql_floor.py", "--sizes", "500", "--keep", str(kept), "--target", "12000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "the replayed copy matches the server's store, row for row" in done.stdout
    assert "SQLite alone, replayed:" in done.stdout and "SQLite's one writer allows" in done.stdout
    (log,) = kept.glob("*.log")  # the writer process's, and only its
    base = kept / log.name.replace(".log", ".base.db")
    for path in (log, base, kept / "replay.db", kept / "server.db"):
        assert path.stat().st_mode & 0o077 == 0, path  # the store's data: its owner's alone
    conn = sqlite3.connect(kept / "replay.db")
    try:
        assert conn.execute("SELECT count(*) FROM records WHERE collection = 'checks'").fetchone()[0] == 500
        assert conn.execute("SELECT sum(n) FROM p_tally WHERE fact = 0").fetchone()[0] == 500
    finally:
        conn.close()
    conn = sqlite3.connect(base)
    try:  # the copy was taken before the first push was written
        assert conn.execute("SELECT count(*) FROM records WHERE collection = 'checks'").fetchone()[0] == 0
    finally:
        conn.close()


def test_a_write_the_log_missed_fails_the_bench(tmp_path: Path) -> None:
    kept = tmp_path / "floor"
    record = subprocess.run(
        [sys.executable, "bench/sql_floor.py", "--sizes", "500", "--keep", str(kept)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert record.returncode == 0, record.stdout[-2000:] + record.stderr[-2000:]
    conn = sqlite3.connect(kept / "server.db")  # as if the server's own thread had written a group
    try:
        conn.execute("UPDATE records SET deleted = 1 WHERE seq = (SELECT max(seq) FROM records)")
        conn.commit()
    finally:
        conn.close()
    again = subprocess.run(
        [sys.executable, "bench/sql_floor.py", "--replay", str(kept)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 1
    assert "THE REPLAY DIFFERS FROM THE SERVER'S STORE" in again.stdout and "records: " in again.stdout


def test_keep_wants_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    done = subprocess.run(
        [sys.executable, "bench/sql_floor.py", "--sizes", "500", "--keep", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "is not empty" in done.stderr
