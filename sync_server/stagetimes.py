"""Per-stage CPU timers of the push path, for profiling (``PATROL_STAGE_TIMERS=1``).

Off by default, and then free: :func:`timer` hands back a no-op. On, each stage
adds the CPU time of the thread it runs on (``time.thread_time_ns``, so a stage
that waits for the GIL or the disk is not charged for the wait), garbage
collection is timed through ``gc.callbacks`` (by generation), and when the app
stops (its lifespan ends: uvicorn re-raises SIGTERM afterwards, so ``atexit``
would never run) it prints one table, in µs per record pushed, to standard error.
``bench/README.md`` says how the bench reads it.  What is not in any stage on
the event loop's thread (HTTP parsing, Litestar's routing, auth, uvicorn) is
shown as ``http (rest of the loop)``.  Garbage collection runs inside whichever
stage allocates, so its time is also part of those stages' (it is shown apart
to say how much of them it is).
"""

from __future__ import annotations

import cProfile
import gc
import os
import sys
import threading
import time
from collections import defaultdict
from typing import Any

__all__ = ["ENABLED", "add_records", "report", "timer"]

ENABLED = os.environ.get("PATROL_STAGE_TIMERS", "") not in ("", "0")
#: ``PATROL_STAGE_TIMERS=profile:<path>``: also cProfile the event loop's thread from the
#: first push on, written to ``<path>`` (pstats) when the app stops
_PROFILE_TO = os.environ.get("PATROL_STAGE_TIMERS", "").partition("profile:")[2]
_profiler: cProfile.Profile | None = None

_totals: dict[str, int] = defaultdict(int)
_records = 0
_loop_thread: int | None = None
_loop_start = 0
_process_start = 0
_gc_started: dict[int, int] = {}


class _Timer:
    __slots__ = ("name", "began")

    def __init__(self, name: str) -> None:
        self.name = name
        self.began = 0

    def __enter__(self) -> None:
        self.began = time.thread_time_ns()

    def __exit__(self, *exc: object) -> None:
        _totals[self.name] += time.thread_time_ns() - self.began

    def stop(self) -> None:
        self.__exit__()

    def start(self) -> None:
        self.__enter__()


class _Off:
    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None


_OFF = _Off()


def timer(name: str) -> _Timer | _Off:
    """A context manager charging its block's thread CPU time to ``name`` (or, for a
    stretch with awaits inside, ``start()`` and ``stop()`` around each part: reading
    the thread's clock is a system call, slow in this sandbox, so not once a record)."""
    return _Timer(name) if ENABLED else _OFF


def add_records(count: int) -> None:
    """Count records pushed (on the event loop's thread: it marks that thread)."""
    global _records, _loop_thread, _loop_start, _process_start, _profiler
    if not ENABLED:
        return
    if _loop_thread is None:
        _loop_thread, _loop_start, _process_start = threading.get_ident(), time.thread_time_ns(), time.process_time_ns()
        if _PROFILE_TO:
            _profiler = cProfile.Profile()
            _profiler.enable()
    _records += count


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if _loop_thread is None:
        return  # start-up, not pushing
    key = threading.get_ident()
    if phase == "start":
        _gc_started[key] = time.perf_counter_ns()
    elif key in _gc_started:
        where = "loop" if key == _loop_thread else "other"
        _totals[f"gc gen {info['generation']} ({where} thread)"] += time.perf_counter_ns() - _gc_started.pop(key)


def report(where: str = "") -> None:
    """Print the table (when enabled and something was pushed), and start counting afresh;
    ``where`` names the process when it is not the server's (its writer process)."""
    global _records, _loop_thread, _profiler
    if _profiler is not None:
        _profiler.disable()
        _profiler.dump_stats(_PROFILE_TO)
        _profiler = None
    if not _records:
        return
    loop_total = time.thread_time_ns() - _loop_start if threading.get_ident() == _loop_thread else 0
    on_loop = sum(v for k, v in _totals.items() if k.startswith("loop:"))
    rows = sorted(_totals.items())
    if loop_total and on_loop:
        rows.append(("loop: http (rest of the loop)", loop_total - on_loop))
        rows.append(("= the loop thread, all", loop_total))
    rows.append(("= the process, all threads", time.process_time_ns() - _process_start))
    out = [f"stage times, µs per record ({_records} records{where}):"]
    out += [f"  {name:<45} {ns / 1000 / _records:8.1f}" for name, ns in rows]
    print("\n".join(out), file=sys.stderr, flush=True)
    _totals.clear()
    _records, _loop_thread = 0, None


if ENABLED:
    gc.callbacks.append(_on_gc)
