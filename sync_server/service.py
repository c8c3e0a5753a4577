"""Push and pull: the engine driven inside store transactions. No HTTP, no SQL."""

from __future__ import annotations

from typing import Any

import msgspec

from schemas import HLC, SERVER_NODE, PullResponse

from . import codec
from .codec import DecodedPush
from .errors import Forbidden, Unavailable
from .fleet import FleetMonitor
from .principal import Principal
from .settings import Settings
from .stores import Store
from .writer import PushOutcome, PushWriter

__all__ = ["SyncService"]


class SyncService:
    def __init__(self, store: Store, settings: Settings, hlc: HLC | None = None) -> None:
        self.store = store
        self.settings = settings
        self.hlc = hlc or HLC(SERVER_NODE)
        self.writer = PushWriter(store, settings, self.hlc)
        self.fleet = FleetMonitor(store)

    async def start(self) -> None:
        self.writer.start()
        self.fleet.start()

    async def stop(self) -> None:
        await self.writer.stop()
        await self.fleet.stop()

    async def push(self, principal: Principal, push: DecodedPush) -> PushOutcome:
        """Apply a change set; the answer is JSON, kept for retries (idempotency)."""
        if push.device_id != principal.device_id:
            raise Forbidden(f"this token belongs to device {principal.device_id}, not {push.device_id}")
        if not self.writer.running:
            raise Unavailable("the server is not accepting changes (starting or stopping)")
        return await self.writer.submit(principal, push)

    async def pull(
        self, principal: Principal, cursor: str | None, limit: int, collections: frozenset[str] | None, fmt: codec.Format
    ) -> bytes:
        wards = None if principal.is_admin else principal.wards
        page = await self.store.pull(wards, cursor, limit, collections)
        if fmt == "msgpack":
            records: list[Any] = [msgspec.json.decode(doc) for doc in page.docs]
            return codec.encode(PullResponse[Any](records=records, cursor=page.cursor, more=page.more), "msgpack")
        raw = [msgspec.Raw(doc) for doc in page.docs]
        return codec.encode(PullResponse[msgspec.Raw](records=raw, cursor=page.cursor, more=page.more))
