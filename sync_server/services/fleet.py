"""Fleet health (PROTOCOL.md section 6d): what each device's requests tell us.

Pushes and pulls note the device's ``X-Client`` header, the time, the number of its
changes rejected and its clock offset; notes are kept in memory and written in one
small transaction a second (never on the request's path, and a pull stays a pure
read). A supervisor's query first writes what this process holds.

The clock offset is measured from the stamps a device sends: from ``clock=<stamp>``
(or ``clock=<ms>``) in its ``X-Client`` header (its clock at sending time, which the
SDK sends) or, without
it, from the highest stamp of its push (a lower bound: edits are stamped when made).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re

from schemas import STAMP_PATTERN, stamp_ms
from schemas.stamps import utc_text, wall_ms

from ..principal import Principal
from ..stores import FleetStore, HealthUpdate, StoreUnavailable

__all__ = ["ClientInfo", "FleetMonitor", "parse_client_header"]

log = logging.getLogger("patrol_sync.fleet")
_STAMP = re.compile(STAMP_PATTERN)
_NAME = re.compile(r"^[A-Za-z0-9._+-]{1,64}$")


@dataclasses.dataclass(frozen=True, slots=True)
class ClientInfo:
    name: str | None = None
    version: str | None = None
    schema: int | None = None
    pending: int | None = None
    clock: str | None = None


def parse_client_header(value: str | None) -> ClientInfo | None:
    """``<sdk name>/<version>; schema=<n>; pending=<count>[; clock=<stamp or ms>]``; parts
    that do not parse are ignored (the header is informative, never a reason to refuse).
    ``clock`` is the device's wall clock: a whole stamp, or only its 13-digit
    milliseconds (the SDK's, since 0.1: the rest says nothing the token does not)."""
    if not value or len(value) > 256:
        return None
    first, *params = [part.strip() for part in value.split(";")]
    name, _, version = first.partition("/")
    info: dict[str, object] = {
        "name": name if _NAME.match(name) else None,
        "version": version if _NAME.match(version) else None,
    }
    for param in params:
        key, _, raw = param.partition("=")
        key, raw = key.strip().lower(), raw.strip()
        if key in ("schema", "pending") and raw.isdigit() and len(raw) <= 12:
            info[key] = int(raw)
        elif key == "clock" and (_STAMP.match(raw) or (len(raw) == 13 and raw.isascii() and raw.isdigit())):
            info["clock"] = raw
    return ClientInfo(**info)  # type: ignore[arg-type]


class FleetMonitor:
    def __init__(self, store: FleetStore, every_s: float = 1.0) -> None:
        self.store = store
        self.every_s = every_s
        self._pending: dict[str, HealthUpdate] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="patrol-sync fleet health")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    def note(
        self,
        principal: Principal,
        kind: str,
        client: ClientInfo | None,
        sent_stamp: str | None = None,
        rejected: int = 0,
    ) -> None:
        """Note a push (``kind="push"``) or a pull by this device."""
        now_ms = wall_ms()
        update = self._pending.setdefault(principal.device_id, HealthUpdate(device_id=principal.device_id))
        if kind == "push":
            update.last_push_at = utc_text(now_ms)
        else:
            update.last_pull_at = utc_text(now_ms)
        update.rejected += rejected
        clock = (client.clock if client else None) or sent_stamp
        if clock is not None:
            update.clock_offset_ms = stamp_ms(clock) - now_ms
        if client is not None:
            update.client = client.name or update.client
            update.client_version = client.version or update.client_version
            update.schema = client.schema if client.schema is not None else update.schema
            update.pending = client.pending if client.pending is not None else update.pending

    async def flush(self) -> None:
        async with self._lock:
            updates, self._pending = list(self._pending.values()), {}
            if not updates:
                return
            try:
                await self.store.record_health(updates)
            except Exception as exc:  # health is best effort: keep the notes for the next try
                if isinstance(exc, StoreUnavailable):  # expected now and then (a restart, a deadlock): one line
                    log.warning("could not record fleet health; will retry: %s", exc)
                else:
                    log.warning("could not record fleet health; will retry", exc_info=True)
                for update in updates:
                    newer = self._pending.get(update.device_id)
                    if newer is None:
                        self._pending[update.device_id] = update
                        continue
                    newer.rejected += update.rejected
                    for name in ("last_push_at", "last_pull_at", "client", "client_version", "schema", "pending", "clock_offset_ms"):
                        if getattr(newer, name) is None:
                            setattr(newer, name, getattr(update, name))

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            await self.flush()
