"""Live pages (PROTOCOL.md section 9): a pulse that beats when the push writer commits
a group that applied something, heard by server-sent event streams.

The writer's commit listeners run in the worker that committed; with several workers
a page also re-reads itself every ``FALLBACK_S`` (``console.js``), so a change
committed by another worker shows within that time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from ..services.writer import GroupStats

__all__ = ["FALLBACK_S", "LIFETIME_S", "Pulse"]

FALLBACK_S = 30
_KEEPALIVE_S = 15.0
#: a stream ends after this long and the browser opens the next one (EventSource does so by
#: itself): a server shutting down waits for open answers, and none is open much longer
LIFETIME_S = 55.0
_SETTLE_S = 0.3  # a burst of commits (a handheld's whole outbox) is one refresh, not fifty


class Pulse:
    def __init__(self) -> None:
        self.beat = 0
        self._changed = asyncio.Event()

    def on_group(self, stats: GroupStats) -> None:
        if stats.applied or stats.conflicts:
            self.beat += 1
            self._changed.set()
            self._changed = asyncio.Event()

    async def events(self) -> AsyncIterator[str]:
        """``changed`` after each commit (settled), a comment line now and then to keep the
        connection open through proxies; ends when the client goes."""
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
