"""Records every statement the server's writer process runs (``bench/sql_floor.py``).

Imported at interpreter start-up when this folder is on ``PYTHONPATH`` (the server
passes its ``sys.path`` on to its writer process). With ``PATROL_SQL_LOG`` set to a
folder, the writer process (and only it) copies the store as it finds it to
``<pid>.base.db`` on its first connection, then appends each ``execute`` and
``executemany`` (SQL and parameters) to ``<pid>.log`` as pickles. The bench replays
them on the copy with nothing else running: what SQLite alone costs.

A benchmark's tool, never on the product's path: nothing in ``sync_server`` knows of it.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import sys

_folder = os.environ.get("PATROL_SQL_LOG")
_real_connect = sqlite3.connect


def _is_writer_process() -> bool:
    return any("sqlite._process import main" in arg for arg in getattr(sys, "orig_argv", ()))


class _Recording(sqlite3.Connection):
    log = None

    def execute(self, sql, parameters=(), /):  # type: ignore[override]
        pickle.dump(("x", sql, tuple(parameters) if not isinstance(parameters, dict) else parameters), self.log)
        cursor = super().execute(sql, parameters)
        if sql == "COMMIT":
            self.log.flush()  # (the process may end without running atexit)
        return cursor

    def executemany(self, sql, parameters, /):  # type: ignore[override]
        rows = [tuple(p) if not isinstance(p, dict) else p for p in parameters]
        pickle.dump(("m", sql, rows), self.log)
        return super().executemany(sql, rows)


def _connect(database, *args, **kwargs):  # type: ignore[no-untyped-def]
    if not _is_writer_process() or _Recording.log is not None:
        return _real_connect(database, *args, **kwargs)
    base = os.path.join(_folder, f"{os.getpid()}.base.db")
    source, copy = _real_connect(database), _real_connect(base)
    source.backup(copy)
    source.close()
    copy.close()
    _Recording.log = open(os.path.join(_folder, f"{os.getpid()}.log"), "wb", buffering=1 << 20)
    kwargs["factory"] = _Recording
    return _real_connect(database, *args, **kwargs)


if _folder:
    sqlite3.connect = _connect
