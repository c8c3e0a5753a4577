"""The push writer's SQL in a process of its own (issue 16).

In the server's process the SQLite writer thread shared one GIL with the event loop:
every statement stepped released it and waited to get it back while the loop decoded
bodies and merged, so a group of 100 records took ~40 ms of wall time for ~11 ms of
CPU, and the loop in turn sat idle while the group committed.  Here the one-hop
writes (``stores.OneHopWrites``) run in a child process with its own connection:

- the server sends each planned group down a pipe as soon as it is planned, and the
  child writes them in the order sent (a group whose heads moved answers False and
  the push writer plans it again in the server's own transaction);
- what waits in the pipe when the child is free is committed together, one
  transaction and one fsync, each group checked against the heads the one before it
  leaves; if a group fails, the transaction is rolled back whole, that group gets the
  error and the others False (they are planned again, alone);
- only bytes and numbers cross the pipe: the record versions go as their stored
  documents, and the child decodes them for the report projections and blob
  references (``engine.state.decode_state``, as a migration rebuilds them).

The child is a new interpreter running :func:`main` (not ``multiprocessing``: its spawn
would import the server's main module again), given one end of a socket pair.
It ignores SIGINT (a Ctrl-C to the terminal reaches the whole process group;
the server's own shutdown closes the pipe) and ends when the pipe closes, a commit in
progress finishing first.  If it dies, pending groups fail with ``StoreUnavailable``
(their change sets are retried alone, in the server) and the store goes on writing in
its own thread.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import pickle
import queue
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ..base import Heads, PlannedWrite, RecordRow
from ..errors import StoreUnavailable
from . import _sql

__all__ = ["WriterProcess", "main"]

log = logging.getLogger("patrol_sync.store")

#: groups committed together at most, when that many wait in the pipe
_BATCH = 16
_STOP = b""

#: (heads, fresh, origin, created, (doc, crdt) per record, edits, conflicts, answers, resolved, id, after, now)
Message = tuple[Any, ...]


def _message(planned: PlannedWrite, now: str) -> bytes:
    return pickle.dumps(
        (
            (planned.heads.seq, planned.heads.conflict),
            list(planned.fresh),
            planned.origin,
            list(planned.created),
            [(row.doc, row.crdt) for row in planned.records],
            list(planned.edits),
            list(planned.conflicts),
            list(planned.answers),
            list(planned.resolved),
            planned.id,
            planned.after,
            now,
        ),
        protocol=pickle.HIGHEST_PROTOCOL,
    )


def _planned(message: Message) -> tuple[PlannedWrite, str]:
    from ...engine.state import decode_state

    (seq, conflict), fresh, origin, created, records, edits, conflicts, answers, resolved, planned_id, after, now = message
    rows = [RecordRow(decode_state(doc, crdt), doc, crdt) for doc, crdt in records]
    return PlannedWrite(Heads(seq, conflict), fresh, origin, created, rows, edits, conflicts, answers, resolved, planned_id, after), now


def _serve(path: str, busy_timeout_ms: int, pipe: Connection) -> None:
    """The child: write what comes down the pipe, answer each in order, until the pipe
    closes or says stop (the server's shutdown: SIGINT and SIGTERM, which reach the whole
    process group or service, are left to the server, so what it sent is finished)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from ... import stagetimes
    from ...gcpolicy import tune_for_serving
    from ._writer import WriteLock, connect

    conn = connect(Path(path), busy_timeout_ms)
    lock = WriteLock(Path(path))
    tune_for_serving()
    last = 0  # the last planned write committed here
    try:
        while (batch := _next_batch(pipe)) is not None:
            with stagetimes.timer("db: receive and decode (writer process)"):
                planned, results = _decode(batch)
            stagetimes.add_records(sum(len(p.records) for p, _ in planned))
            if planned:
                with lock:
                    written, last = _write_batch(conn, planned, last)
                results = [*written, *results]
            for result in results:
                pipe.send_bytes(_answer(result))
    except (EOFError, OSError):  # the server is gone: nobody to answer
        pass
    finally:
        conn.close()
        stagetimes.report(" in the writer process")


def _next_batch(pipe: Connection) -> list[bytes] | None:
    """The messages waiting (at least one, at most ``_BATCH``); None: stop."""
    batch: list[bytes] = []
    while True:
        data = pipe.recv_bytes()
        if data == _STOP:
            return batch or None  # (what came before the stop is still written)
        batch.append(data)
        if len(batch) >= _BATCH or not pipe.poll():
            return batch


def _decode(batch: list[bytes]) -> tuple[list[tuple[PlannedWrite, str]], list[tuple[bool, tuple[int, int]] | BaseException]]:
    """The groups up to the first that cannot be read, and the answers of those after
    it: its error, then False for the rest (they were numbered after it)."""
    planned: list[tuple[PlannedWrite, str]] = []
    for index, data in enumerate(batch):
        try:
            planned.append(_planned(pickle.loads(data)))
        except Exception as exc:
            return planned, [exc, *[(False, (-1, -1))] * (len(batch) - index - 1)]
    return planned, []


def _answer(result: tuple[bool, tuple[int, int]] | BaseException) -> bytes:
    try:
        return pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # an error that does not pickle: its words
        return pickle.dumps(RuntimeError(f"{type(result).__name__}: {result}"), protocol=pickle.HIGHEST_PROTOCOL)


def _write_batch(
    conn: sqlite3.Connection, batch: Sequence[tuple[PlannedWrite, str]], last: int
) -> tuple[list[tuple[bool, tuple[int, int]] | BaseException], int]:
    """Each group checked and written in order, all in one transaction
    (``_sql.write_planned_batch``); the answers, and the last planned write committed."""
    try:
        written, heads = _sql.write_planned_batch(conn, batch, last)
    except _sql.BatchFailed as failed:  # that group alone gets the error; the others are planned again
        out: list[tuple[bool, tuple[int, int]] | BaseException] = [(False, (-1, -1))] * len(batch)
        out[failed.index] = failed.error
        return out, last
    except Exception as exc:  # the transaction itself failed (the disk, a lock): every group did
        return [exc] * len(batch), last
    return [(i < written, heads) for i in range(len(batch))], batch[written - 1][0].id if written else last


class WriterProcess:
    """The child process and the two threads that feed it and read its answers."""

    def __init__(self, path: Path, busy_timeout_ms: int) -> None:
        ours, theirs = socket.socketpair()
        # the child imports this package as the server did, from wherever it found it
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", f"from {__name__} import main; main()", str(theirs.fileno()), str(path.resolve()), str(busy_timeout_ms)],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                env=env,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._pipe = Connection(ours.detach())
        self._loop = asyncio.get_running_loop()
        self._outbox: queue.SimpleQueue[tuple[bytes, asyncio.Future[Any]] | None] = queue.SimpleQueue()
        self._pending: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._lock = threading.Lock()
        self.alive = True
        self._sender = threading.Thread(target=self._send, name="patrol-sqlite-send", daemon=True)
        self._receiver = threading.Thread(target=self._receive, name="patrol-sqlite-receive", daemon=True)
        self._sender.start()
        self._receiver.start()

    def submit(self, planned: PlannedWrite, now: str) -> asyncio.Future[tuple[bool, tuple[int, int]]]:
        future: asyncio.Future[tuple[bool, tuple[int, int]]] = self._loop.create_future()
        if not self.alive:
            future.set_exception(StoreUnavailable("the store's writer process has stopped"))
            return future
        self._outbox.put((_message(planned, now), future))
        return future

    async def close(self) -> None:
        """Let the child finish what it was sent, then stop it."""
        self._outbox.put(None)
        await asyncio.to_thread(self._sender.join, 30)
        try:
            await asyncio.to_thread(self._process.wait, 30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            await asyncio.to_thread(self._process.wait)
        await asyncio.to_thread(self._receiver.join, 5)
        self._pipe.close()
        self._fail_pending()

    def _send(self) -> None:
        while (item := self._outbox.get()) is not None:
            data, future = item
            with self._lock:
                if not self.alive:
                    self._tell(future, StoreUnavailable("the store's writer process has stopped"))
                    continue
                self._pending.append(future)
            try:
                self._pipe.send_bytes(data)
            except OSError as exc:
                self._died(exc)
        try:
            self._pipe.send_bytes(_STOP)
        except OSError:
            pass

    def _receive(self) -> None:
        while True:
            try:
                result = pickle.loads(self._pipe.recv_bytes())
                with self._lock:
                    future = self._pending.popleft() if self._pending else None
            except Exception as exc:  # the pipe closed, or an answer out of step: the child is no use
                self._died(exc)
                return
            if future is None:
                self._died(RuntimeError("an answer nobody waits for"))
                return
            self._tell(future, result)

    def _died(self, why: BaseException | None = None) -> None:
        with self._lock:
            was, self.alive = self.alive, False
        if self._process.poll() is None and not isinstance(why, EOFError):
            self._process.kill()  # (alive but out of step with us)
        if was and (why is not None and not isinstance(why, EOFError) or self._process.poll() not in (0, None)):
            log.warning("the store's writer process stopped (%s); writing in the server from now on", why or f"exit code {self._process.returncode}")
        self._fail_pending()

    def _fail_pending(self) -> None:
        with self._lock:
            pending, self._pending = list(self._pending), collections.deque()
        for future in pending:
            self._tell(future, StoreUnavailable("the store's writer process stopped before answering"))

    def _tell(self, future: asyncio.Future[Any], result: Any) -> None:
        with contextlib.suppress(RuntimeError):  # (the event loop closed already: nobody waits)
            self._loop.call_soon_threadsafe(_settle, future, result)


def _settle(future: asyncio.Future[Any], result: Any) -> None:
    """On the event loop: the child's answer (or the error it stands for) to its waiter."""
    if not future.done():
        (future.set_exception if isinstance(result, BaseException) else future.set_result)(result)


def main() -> None:
    """The child's entry: ``<socket fd> <database path> <busy timeout ms>``."""
    _serve(sys.argv[2], int(sys.argv[3]), Connection(int(sys.argv[1])))
