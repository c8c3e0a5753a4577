"""Live console pages (PROTOCOL.md section 9): a pulse that beats when a change commits,
heard by server-sent event streams. A service (it watches the store's sync role), so the
console's ``/console/live`` handler holds this and never the store.

Where the beats come from:

- the push writer of this worker, at once (its commit listeners);
- every other worker, by the mechanism the pull long poll uses across workers: while
  a stream is open, one task per worker pulls from the store's cursor every
  ``POLL_S`` (as ``sync.py`` does every ``_POLL_S``) and beats when anything came.
  A change of this worker then beats twice (the second refresh finds nothing new):
  cheaper than telling them apart. The page re-reads itself every ``FALLBACK_S``
  only while its stream is down (a proxy that cuts it, a session past its budget).

What a stream costs: each holds an open answer for up to ``LIFETIME_S``. Streams take
none of the request slots of ``limits.py`` (a supervisor with ten tabs would hold ten
of them for a minute); instead a session may hold ``PER_SESSION`` streams at once (429
past that) and a worker ``TOTAL`` (503)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable

from ..errors import TooManyRequests, Unavailable
from ..stores import CursorExpired, SyncStore
from .writer import GroupStats

__all__ = ["FALLBACK_S", "LIFETIME_S", "PER_SESSION", "POLL_S", "TOTAL", "Pulse"]

log = logging.getLogger("patrol_sync.console")

FALLBACK_S = 30
_KEEPALIVE_S = 15.0
#: a stream ends after this long and the browser opens the next one (EventSource does so by
#: itself): a server shutting down waits for open answers, and none is open much longer
LIFETIME_S = 55.0
_SETTLE_S = 0.3  # a burst of commits (a handheld's whole outbox) is one refresh, not fifty
#: how often a worker looks for what other workers committed (as the pull long poll does)
POLL_S = 0.5
_POLL_PAGE = 1000
#: open streams a console session may hold at once (one person's tabs), and a worker
PER_SESSION = 4
TOTAL = 512


class Pulse:
    def __init__(self, store: SyncStore | None = None) -> None:
        self.beat = 0
        self._changed = asyncio.Event()
        self._store = store
        self._streams: dict[str, int] = {}  # hash of the session id -> its open streams
        self._watch: asyncio.Task[None] | None = None

    def on_group(self, stats: GroupStats) -> None:
        if stats.applied or stats.conflicts:
            self._beat()

    def _beat(self) -> None:
        self.beat += 1
        self._changed.set()
        self._changed = asyncio.Event()

    @property
    def open_streams(self) -> int:
        return sum(self._streams.values())

    def stream(self, session_id: str) -> AsyncIterator[str]:
        """A stream of events for one session; TooManyRequests past the session's budget,
        Unavailable past the worker's. Its place is given back when the stream ends,
        however it ends (the client gone, or the stream dropped before it started)."""
        key = hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()
        held = self._streams.get(key, 0)
        retry = {"Retry-After": str(FALLBACK_S)}
        if held >= PER_SESSION:
            raise TooManyRequests(f"this session has {held} live pages open already; close one", headers=retry)
        if self.open_streams >= TOTAL:
            raise Unavailable("too many live pages are open; yours re-reads itself instead", headers=retry)
        self._streams[key] = held + 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                left = self._streams.get(key, 1) - 1
                if left > 0:
                    self._streams[key] = left
                else:
                    self._streams.pop(key, None)

        events = self._events(release)
        weakref.finalize(events, release)
        self._start_watching()
        return events

    async def _events(self, release: Callable[[], None]) -> AsyncIterator[str]:
        """``changed`` after each commit (settled), a comment line now and then to keep the
        connection open through proxies; ends when the client goes."""
        try:
            seen = self.beat
            ends = time.monotonic() + LIFETIME_S
            yield "ready"
            while (left := ends - time.monotonic()) > 0:
                try:
                    await asyncio.wait_for(self._changed.wait(), min(_KEEPALIVE_S, left))
                except TimeoutError:
                    yield ""
                    continue
                await asyncio.sleep(_SETTLE_S)
                if self.beat != seen:
                    seen = self.beat
                    yield "changed"
        finally:
            release()

    def _start_watching(self) -> None:
        if self._store is not None and (self._watch is None or self._watch.done()):
            self._watch = asyncio.get_running_loop().create_task(self._watch_store(self._store))

    async def _watch_store(self, store: SyncStore) -> None:
        """Pull from the store's cursor every ``POLL_S`` while any stream is open; beat
        when something came (another worker's commit, or this one's)."""
        cursor: str | None = None
        while self._streams:
            try:
                if cursor is None:
                    cursor = await store.head()
                else:
                    page = await store.pull(None, cursor, _POLL_PAGE, None)
                    cursor = page.cursor
                    if page.docs:
                        self._beat()
            except CursorExpired:
                cursor = None  # a store restored from a backup: start again from its head
            except Exception:  # the store is away for a moment: the next round tries again
                log.debug("looking for other workers' commits failed", exc_info=True)
            await asyncio.sleep(POLL_S)

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
