"""Records every statement the server's writer process runs (``bench/sql_floor.py``).

Imported at interpreter start-up when this folder is on ``PYTHONPATH`` (the server
passes its ``sys.path`` on to its writer process). With ``PATROL_SQL_LOG`` set to a
folder, the writer process (and only it) copies the store as it finds it to
``<pid>.base.db`` on its first connection, then appends each ``execute`` and
``executemany`` (SQL and parameters, MessagePack frames) to ``<pid>.log``, and a
``failed`` frame after one that raised. The bench replays them on the copy with
nothing else running: what SQLite alone costs.

Both files hold the store's data (token hashes too): they are made readable by their
owner only. Any other ``sitecustomize`` further along the path still runs.

A benchmark's tool, never on the product's path: nothing in ``sync_server`` knows of it.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sqlite3
import struct
import sys
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
_folder = os.environ.get("PATROL_SQL_LOG")
_real_connect = sqlite3.connect


def _is_writer_process() -> bool:
    return any("sqlite._process import main" in arg for arg in getattr(sys, "orig_argv", ()))


class _Log:
    def __init__(self, path: str) -> None:
        import msgspec

        self._file = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb", buffering=1 << 20)
        self._encode = msgspec.msgpack.Encoder().encode

    def write(self, frame: Any) -> None:
        data = self._encode(frame)
        self._file.write(struct.pack("<I", len(data)))
        self._file.write(data)

    def flush(self) -> None:
        self._file.flush()


class _Recording(sqlite3.Connection):
    log: _Log | None = None

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        assert self.log is not None
        self.log.write(("x", sql, parameters))
        try:
            cursor = super().execute(sql, parameters)
        except sqlite3.Error:
            self.log.write(("failed",))
            raise
        if sql == "COMMIT":
            self.log.flush()  # (the process may end without running atexit)
        return cursor

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        assert self.log is not None
        rows = list(parameters)
        self.log.write(("m", sql, rows))
        try:
            return super().executemany(sql, rows)
        except sqlite3.Error:
            self.log.write(("failed",))
            raise


def _connect(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
    if not _is_writer_process() or _Recording.log is not None:
        return _real_connect(database, *args, **kwargs)
    assert _folder is not None
    base = os.path.join(_folder, f"{os.getpid()}.base.db")
    os.close(os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # (SQLite keeps the mode, its -wal too)
    source, copy = _real_connect(database), _real_connect(base)
    source.backup(copy)
    source.close()
    copy.close()
    _Recording.log = _Log(os.path.join(_folder, f"{os.getpid()}.log"))
    print(f"bench: the writer process logs its SQL to {_folder} (PATROL_SQL_LOG)", file=sys.stderr, flush=True)
    kwargs["factory"] = _Recording
    return _real_connect(database, *args, **kwargs)


def _chain() -> None:
    """Run the ``sitecustomize`` this one hides, if the path has another."""
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", [p for p in sys.path if os.path.abspath(p or ".") != _HERE])
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


if _folder:
    sqlite3.connect = _connect  # type: ignore[assignment]
_chain()
