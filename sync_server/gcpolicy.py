"""Garbage collection tuned for a server process (issue 16), not for a test run.

Profiled under pushes of realistic records, CPython's cyclic collector took
~100-200 µs a record, more than the merge: every collection of the young
generation traversed the change sets in flight (thousands of live objects each)
and promoted them, so full collections ran often over the whole heap (Litestar's
app, msgspec's types, every module).  Two changes, neither touching what is kept
or when it is written:

- :func:`gc.freeze` once the app is built: what exists then lives as long as the
  process, so the collector stops scanning it;
- a young generation of :data:`THRESHOLDS` ``[0]`` allocations instead of 700,
  so a change set is usually answered and freed (by reference counting, which
  frees almost everything here) before a collection looks at it.

Only the process that serves applies this (``asgi.app_factory``): a test run
that builds many apps in one process keeps CPython's defaults.
"""

from __future__ import annotations

import gc

__all__ = ["THRESHOLDS", "tune_for_serving"]

#: (young generation, collections of it per middle one, of the middle per old one)
THRESHOLDS = (50_000, 20, 100)


def tune_for_serving() -> None:
    """Freeze what start-up made and raise the young generation's threshold."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
