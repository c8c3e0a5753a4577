"""``sync()``: push the outbox in change sets, pull until caught up, then upload photos.

Photos last: on a 2G link one photo takes minutes, and the records must never wait
for it (PROTOCOL.md 6b: the server accepts a change naming a blob it does not hold
yet, and lists it as missing until it comes). A photo cut short resumes where the
server's part ends, in this sync or the next (``_blobs.py``); an upload the link
keeps failing is a warning (``blob_pending``), not a failed sync.

The order matters. Pushing first means the pull that follows brings back the
server's verdict on this device's own edits; pulling last leaves every base as
fresh as it can be for the edits made after. Each step commits on its own, so a
sync cut short at any point (network, crash, kill) resumes with the next one:

- a change set is frozen (id and exact body written to the device's store) before
  its first attempt and only forgotten once its answer is applied, so a resend is
  byte-identical and the server's idempotency answers it without applying anything
  twice;
- a pull page and the cursor after it are written in one transaction.

Only one change set is on the wire at a time, so a record's later edits never
overtake its creation; the local work around it (freezing the next one, applying
the last answer, writing a pulled page) runs while the server works on the current
request.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable
from typing import Any

import msgspec

from schemas import ErrorItem, PullResponse, PushResponse, Warning

from ._answers import MSGPACK, read_pull, read_push
from ._blobs import Blobs
from ._http import Http
from ._localdb import SCHEMA_VERSION, LocalDB
from ._outbox import Frozen, Outbox
from ._records import DeviceClock, WireRecord, pending_keys, refresh_views, upsert_pulled
from ._restore import Restore
from ._version import __version__ as _version
from .errors import ConflictError, InvalidRequestError, ProtocolError, ServerResetError, SyncError
from .types import SyncProgress, SyncReport, WireOptions

__all__ = ["Progress", "Syncer"]

Progress = Callable[[SyncProgress], None]
SDK_NAME = "patrol-sync-py"


class Syncer:
    def __init__(
        self,
        db: LocalDB,
        outbox: Outbox,
        clock: DeviceClock,
        http: Http,
        device_id: str,
        *,
        max_changes: int,
        max_bytes: int,
        page_size: int,
        blobs: Blobs,
        restore: Restore | None,
        wire: WireOptions | None = None,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.clock = clock
        self.http = http
        self.device_id = device_id
        self.max_changes = max_changes
        self.max_bytes = max_bytes
        self.page_size = page_size
        self.blobs = blobs
        self.restore = restore
        self.wire = wire or WireOptions()
        self._pending_hint = 0
        self._quiet: int | None = None
        #: change sets whose answer the server gave minimal (``Preference-Applied``)
        self._minimal: set[str] = set()

    async def run(self, progress: Progress | None, push: bool, pull: bool) -> SyncReport:
        report = SyncReport()
        retries_before = self.http.retries
        try:
            if push:
                await self._push(report, progress)
            if pull:
                await self._pull(report, progress)
                if self.restore is not None and await self.restore.waiting():
                    await self._send_back(report, progress, push)
            if push:  # photos last: a slow one never holds the records back (see the module docstring)
                uploaded = None if progress is None else lambda done: progress(self._blob_progress(report, done))
                report.blobs = await self.blobs.upload_named(report.warnings, uploaded)
        except SyncError as exc:
            exc.report = report
            raise
        finally:
            report.retries = self.http.retries - retries_before
        return report

    @staticmethod
    def _blob_progress(report: SyncReport, done: int) -> SyncProgress:
        return SyncProgress(phase="blobs", pushed=report.pushed + report.rejected, to_push=0, pulled=report.pulled, blobs=done)

    def _client_header(self) -> str:
        # the clock as milliseconds alone: a stamp's counter and node would say nothing
        # the token does not, and an idle sync on 2G is one small request
        return f"{SDK_NAME}/{_version}; schema={SCHEMA_VERSION}; pending={max(0, self._pending_hint)}; clock={self.clock.wall():013d}"

    # -- push ----------------------------------------------------------------------------

    async def _push(self, report: SyncReport, progress: Progress | None) -> None:
        to_push = self._pending_hint = await self.outbox.pending_count()
        upto = await self.outbox.last_row()  # edits made during this sync wait for the next
        for stale in await self.outbox.in_flight():  # from a sync cut short: resent as they were
            outcome = await self._post(stale, report)
            if isinstance(outcome, PushResponse):
                await self._settle(stale, outcome, report, progress, to_push)
        # one change set on the wire; the next one is frozen, and the last answer applied, meanwhile
        size = self.max_changes
        settling: asyncio.Task[None] | None = None
        frozen: Frozen | None = await self.outbox.freeze(self.device_id, size, self.max_bytes, upto)
        try:
            while frozen is not None:
                sending = asyncio.create_task(self._post(frozen, report))
                try:
                    following = await self.outbox.freeze(self.device_id, size, self.max_bytes, upto)
                finally:
                    outcome = await sending
                if settling is not None:
                    await settling
                    settling = None
                if isinstance(outcome, PushResponse):
                    settling = asyncio.create_task(self._settle(frozen, outcome, report, progress, to_push))
                elif outcome is not None:  # given up unsent: freeze again, in order
                    size = outcome
                    if following is not None:
                        await self.outbox.unfreeze(following)
                    following = await self.outbox.freeze(self.device_id, size, self.max_bytes, upto)
                frozen = following
        finally:
            if settling is not None:
                await settling

    async def _post(self, frozen: Frozen, report: SyncReport) -> PushResponse[WireRecord] | int | None:
        """Send one change set. Returns the answer; or, when it was given up unsent, the
        size to freeze change sets at from now on (smaller when the server refused it
        whole: to isolate the change that breaks it); or None for a lone poison change,
        dead-lettered here."""
        content, headers = self._push_body(frozen.body)
        params = {"stamps": "compact"} if self.wire.compact_stamps else None
        if self.wire.msgpack_answers:
            headers["Accept"] = MSGPACK
        try:
            response = await self.http.send("POST", "/v1/sync/push", params=params, content=content, headers=headers, safe=True)
        except InvalidRequestError as exc:
            if frozen.changes > 1:  # halve until the change that breaks it stands alone
                await self.outbox.unfreeze(frozen)
                return max(1, frozen.changes // 2)
            errors = exc.problem.errors or [ErrorItem(code=exc.problem.type.rsplit(":", 1)[-1], detail=exc.problem.detail)]
            rejected = await self.outbox.dead_letter_whole(frozen, errors)
            report.rejected += rejected
            self._pending_hint -= rejected
            return None
        except ConflictError as exc:  # this id was used with another body: the server never applied ours
            await self.outbox.unfreeze(frozen)
            report.warnings.append(Warning(code="changeset_reused", detail=f"{exc.problem.detail}; its edits are sent again under a new id"))
            return max(frozen.changes, 1)
        try:
            answer = read_push(response)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ProtocolError(f"push of change set {frozen.changeset_id}: unreadable answer: {exc}") from None
        if answer.changeset_id != frozen.changeset_id:
            raise ProtocolError(f"sent change set {frozen.changeset_id}, the answer is for {answer.changeset_id}")
        self._pending_hint -= frozen.changes
        if "return=minimal" in response.headers.get("preference-applied", "").replace(" ", ""):
            self._minimal.add(frozen.changeset_id)
        return answer

    def _push_body(self, body: bytes) -> tuple[bytes, dict[str, str]]:
        """The frozen body as it goes on the wire (the same bytes on every resend)."""
        headers = {"Content-Type": "application/json", "X-Client": self._client_header()}
        if self.wire.msgpack:
            body = msgspec.msgpack.encode(msgspec.json.decode(body))
            headers["Content-Type"] = "application/msgpack"
        if self.wire.gzip:
            body = gzip.compress(body, compresslevel=6, mtime=0)
            headers["Content-Encoding"] = "gzip"
        if self.wire.minimal:
            headers["Prefer"] = "return=minimal"
        return body, headers

    async def _settle(
        self, frozen: Frozen, answer: PushResponse[WireRecord], report: SyncReport, progress: Progress | None, to_push: int
    ) -> None:
        minimal = frozen.changeset_id in self._minimal
        self._minimal.discard(frozen.changeset_id)
        settled = await self.outbox.settle(frozen, answer, minimal)
        report.changesets += 1
        report.pushed += settled.applied
        report.rejected += settled.rejected
        report.conflicts += answer.conflicts
        for warning in answer.warnings:
            if warning not in report.warnings:
                report.warnings.append(warning)
        if progress is not None:
            progress(SyncProgress(phase="push", pushed=report.pushed + report.rejected, to_push=to_push, pulled=report.pulled, blobs=report.blobs))

    # -- pull ----------------------------------------------------------------------------

    async def _pull(self, report: SyncReport, progress: Progress | None) -> None:
        self._pending_hint = await self.outbox.pending_count()
        self._quiet = self.outbox.edits if self._pending_hint == 0 else None
        try:
            await self._pull_pages(report, progress)
        except ServerResetError:
            await self.reset()
            report.warnings.append(
                Warning(
                    code="server_reset",
                    detail="the server was restored from a backup: every record was pulled again; edits not yet pushed were kept"
                    + ("; what this device held and the backup lacks is sent back" if self.restore is not None else ""),
                )
            )
            await self._pull_pages(report, progress)  # a second 410 now is raised

    async def _send_back(self, report: SyncReport, progress: Progress | None, push: bool) -> None:
        """After a restore, once everything is pulled again: queue what the server lost,
        push it (unless this sync does not push) and pull the server's verdict."""
        assert self.restore is not None
        queued, skipped = await self.restore.requeue()
        report.restored += queued
        if skipped:
            report.warnings.append(
                Warning(
                    code="restore_skipped",
                    detail=f"{skipped} records the restored server lacks were created by other users; their devices send them back",
                )
            )
        if queued and push:
            await self._push(report, progress)
            await self._pull_pages(report, progress)

    async def _fetch(self, cursor: str | None) -> PullResponse[WireRecord]:
        # the server's default page (1,000) goes unsaid: an idle sync is one small request
        params: dict[str, Any] = {"cursor": cursor, "limit": self.page_size if self.page_size != 1000 else None}
        if self.wire.compact_stamps:
            params["stamps"] = "compact"
        if self.wire.page_bytes is not None:
            params["max_bytes"] = self.wire.page_bytes
        if self.wire.skip_own and cursor:  # (from no cursor the server sends everything anyway)
            params["own"] = "skip"
        headers = {"X-Client": self._client_header()}
        if self.wire.msgpack_answers:
            headers["Accept"] = MSGPACK
        response = await self.http.send("GET", "/v1/sync/pull", params=params, headers=headers)
        try:
            return read_pull(response)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ProtocolError(f"GET /v1/sync/pull: unreadable answer: {exc}") from None

    async def _pull_pages(self, report: SyncReport, progress: Progress | None) -> None:
        async with self.db.transaction() as conn:
            cursor = await self.db.get_meta(conn, "cursor")
        page = await self._fetch(cursor)
        while True:
            # ask for the next page while this one is written
            following = asyncio.create_task(self._fetch(page.cursor)) if page.more else None
            try:
                await self._apply(page)
            except BaseException:
                if following is not None:
                    following.cancel()
                    await asyncio.gather(following, return_exceptions=True)
                raise
            report.pulled += len(page.records)
            if progress is not None:
                progress(SyncProgress(phase="pull", pushed=report.pushed + report.rejected, to_push=0, pulled=report.pulled, blobs=report.blobs))
            if following is None:
                return
            page = await following

    async def _apply(self, page: PullResponse[WireRecord]) -> None:
        async with self.db.transaction(durable=False) as conn:
            await upsert_pulled(conn, page.records, self.clock)
            if page.records and self._quiet != self.outbox.edits:  # edits may wait: replay them on the new bases
                await refresh_views(conn, await pending_keys(conn, [(r.collection, r.id) for r in page.records]))
            await self.db.set_meta(conn, {"cursor": page.cursor, "hlc": self.clock.state_text})

    async def reset(self) -> None:
        """Forget the pulled state (the server's epoch changed); keep every pending edit."""
        async with self.db.transaction() as conn:
            if self.restore is not None:
                await self.restore.keep(conn)
            await conn.execute("DELETE FROM records WHERE view IS NULL")
            await conn.execute("UPDATE records SET seq = 0")
            await self.db.set_meta(conn, {"cursor": None})
