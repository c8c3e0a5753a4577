"""Push and pull: the engine driven inside store transactions. No HTTP, no SQL."""

from __future__ import annotations

import asyncio
import contextlib
import functools

import msgspec

from schemas import HLC, SERVER_NODE, Change

from ..engine.state import made_by
from ..errors import Forbidden, Unavailable
from ..principal import Principal
from ..settings import Settings
from ..stores import Store
from ..wire import answers, codec
from ..wire.codec import DecodedPush
from .fleet import ClientInfo, FleetMonitor
from .writer import GroupStats, PushOutcome, PushWriter

__all__ = ["SyncService"]

#: how often a long poll pulls again for what other workers committed
_POLL_S = 0.5


class SyncService:
    def __init__(self, store: Store, settings: Settings, hlc: HLC | None = None) -> None:
        self.store = store
        self.settings = settings
        self.hlc = hlc or HLC(SERVER_NODE)
        self.writer = PushWriter(store, settings, self.hlc)
        self.fleet = FleetMonitor(store)
        self._commits = asyncio.Event()
        self.writer.listeners.append(self._committed)

    async def start(self) -> None:
        self.writer.start()
        self.fleet.start()

    async def stop(self) -> None:
        await self.writer.stop()
        await self.fleet.stop()

    async def push(self, principal: Principal, push: DecodedPush, client: ClientInfo | None = None) -> PushOutcome:
        """Apply a change set; the answer is JSON, kept for retries (idempotency). The
        device's health (``client``: its ``X-Client`` header) is noted on the way."""
        if push.device_id != principal.device_id:
            raise Forbidden(f"this token belongs to device {principal.device_id}, not {push.device_id}")
        if not self.writer.running:
            raise Unavailable("the server is not accepting changes (starting or stopping)")
        outcome = await self.writer.submit(principal, push)
        self.fleet.note(principal, "push", client, _top_stamp(push), 0 if outcome.replayed else outcome.rejected)
        return outcome

    async def pull(
        self,
        principal: Principal,
        cursor: str | None,
        limit: int,
        collections: frozenset[str] | None,
        fmt: codec.Format,
        *,
        max_bytes: int | None = None,
        wait_s: float = 0.0,
        compact: bool = False,
        skip_own: bool = False,
        client: ClientInfo | None = None,
    ) -> bytes:
        """One page; with ``wait_s``, an empty page waits for a commit first (long poll).

        ``skip_own`` leaves out the records that stand wholly as this device's edits made
        them (``engine.state.made_by``): it holds them already. Never from no cursor: a
        device pulling from the start (a new or wiped handheld, or after a 410) holds
        nothing, and gets everything.

        Commits of this process wake the wait at once (the writer's listeners); those
        of other workers are seen by pulling again every ``_POLL_S``, which is what
        keeps the long poll right with several workers and either store. A long poll
        ends in time to answer before the server's own request deadline."""
        wait_s = min(wait_s, self.settings.max_wait_s, max(0.0, self.settings.request_timeout_s - 5))
        wards = None if principal.is_admin else principal.wards
        budget = self.settings.max_page_bytes if max_bytes is None else min(max_bytes, self.settings.max_page_bytes)
        skip = functools.partial(made_by, node=principal.device_id) if skip_own and cursor else None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            woken = self._commits
            page = await self.store.pull(wards, cursor, limit, collections, budget, skip)
            left = deadline - loop.time()
            if page.docs or page.more or left <= 0:
                self.fleet.note(principal, "pull", client)
                return answers.pull_answer(page.docs, page.cursor, page.more, compact=compact, fmt=fmt)
            cursor = page.cursor  # past what was left out: wait for what comes after it
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), min(left, _POLL_S))

    def _committed(self, _stats: GroupStats) -> None:
        """A group committed: wake the long polls (each pulls again)."""
        self._commits.set()
        self._commits = asyncio.Event()


def _top_stamp(push: DecodedPush) -> str | None:
    """The highest stamp a push carries: its device's clock, at the latest edit."""
    top = ""
    for change in push.changes:
        if isinstance(change, Change):
            for edit in msgspec.structs.astuple(change.fields):  # type: ignore[attr-defined]  # (not change.edits(): no pairs to build)
                if edit is not msgspec.UNSET and edit.ts > top:
                    top = edit.ts
            if change.delete is not None:
                top = max(top, change.delete.ts)
    return top or None
