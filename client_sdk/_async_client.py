"""``AsyncPatrolClient``: the device's records, offline first, and ``sync()``."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
import msgspec

from schemas import MAX_CHANGES, Conflict, DeviceToken, EnrolCode, PulledRecord, Record
from schemas.collections import Policy
from schemas.stamps import wall_ms

from ._blobs import Blobs
from ._http import Http, Sleep, decode
from ._localdb import LocalDB, scalar
from ._online import OnlineAPI
from ._outbox import Outbox
from ._reads import Reader
from ._records import DeviceClock
from ._restore import Restore
from ._sync import Progress, Syncer
from ._values import Values, check_elements, encode_record, encode_value, spec_for, utc_text
from .errors import InvalidEdit, RecordNotFound, StoreMismatch
from .types import DeadLetter, RetryPolicy, SyncReport, WireOptions

__all__ = ["AsyncPatrolClient"]

R = TypeVar("R", bound=Record)
MiB = 1024 * 1024
_LIMITS = httpx.Limits(keepalive_expiry=60.0)


class AsyncPatrolClient(OnlineAPI):
    """One device: its local store, its outbox, and its link to the server.

    Every record call works offline, on the device's SQLite file; only ``sync()``
    and the online calls (reports, conflicts, administration) need the server::

        async with AsyncPatrolClient("https://patrol.example", token=token, device_id="lamson-h01",
                                     user_id="u-ngoc", path="h01.db") as client:
            check = await client.create(Check(id=new_id(), ward_id="lam-son", premises_id=p,
                                              kind="residence", started_at=now))
            await client.update(Check, check.id, result="ok")
            report = await client.sync()

    ``http``: an ``httpx.AsyncClient`` to send requests with (the caller closes it);
    by default one is made for ``base_url``. ``clock``: the device's wall clock in
    milliseconds (tests and the demo set a handheld a day ahead). ``max_changes`` and
    ``max_body_bytes`` bound each change set; ``page_size`` each pull page;
    ``blob_chunk_bytes`` each piece of a large attachment on the wire (larger blobs go
    up resumably, in pieces; downloads come in ranges of this size).
    ``send_back_after_restore``: when the server answers that it was restored from a
    backup (410), push back what this device held and the backup lacks (on by
    default; turn it off for an operator who restores to *undo* bad data).
    ``wire``: compression, minimal answers, compact stamps, page budget
    (:class:`~client_sdk.WireOptions`; ``WireOptions.plain()`` turns them all off).
    ``timeout``: seconds without progress (connecting, or between two pieces of a body
    sent or received) before a request counts as failed, never the whole request.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str,
        device_id: str,
        user_id: str,
        path: str | os.PathLike[str],
        http: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        clock: Callable[[], int] | None = None,
        max_changes: int = 500,
        max_body_bytes: int = 4 * MiB,
        page_size: int = 1000,
        blob_chunk_bytes: int = 4 * MiB,
        send_back_after_restore: bool = True,
        wire: WireOptions | None = None,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not 1 <= max_changes <= MAX_CHANGES:
            raise ValueError(f"max_changes must be between 1 and {MAX_CHANGES:,} (the server's limit)")
        self.device_id = device_id
        self.user_id = user_id
        self._owns_http = http is None
        # one client for the device's life: its connections stay open across a sync and
        # between syncs (idle up to a minute; the server keeps them 75 s), so a 2G link
        # pays for a TCP handshake once, not per request
        self._httpx = http if http is not None else httpx.AsyncClient(timeout=timeout, limits=_LIMITS)
        self._http = Http(self._httpx, token, base_url=base_url or "", retry=retry, sleep=sleep, rng=rng)
        self._db = LocalDB(path)
        self._clock = DeviceClock(device_id, clock or wall_ms)
        self._outbox = Outbox(self._db, self._clock)
        self._reader = Reader(self._db)
        self._blobs = Blobs(self._db, self._http, chunk_bytes=blob_chunk_bytes)
        self._syncer = Syncer(
            self._db,
            self._outbox,
            self._clock,
            self._http,
            device_id,
            max_changes=max_changes,
            max_bytes=max_body_bytes,
            page_size=page_size,
            blobs=self._blobs,
            wire=wire or WireOptions(),
            restore=Restore(self._db, self._clock, user_id) if send_back_after_restore else None,
        )
        self._syncing = False

    # -- identity ----------------------------------------------------------------------

    def set_token(self, token: str) -> None:
        """Use a new token from the next request on: the one an admin re-issued for this
        device (``patrol-sync admin device token ID``, or an enrolment code exchanged with
        :meth:`enrol`) after its old one was revoked or lost.

        The device keeps its id, its local store and its outbox: the next ``sync()`` pushes
        the edits that waited (say, while ``sync()`` raised ``AuthError``) as this device's
        own. The token is not stored on the device; give it again when the client is made
        anew (a client made with the same ``device_id``, ``user_id`` and ``path`` and the
        new token opens the same local store)."""
        self._http.set_token(token)

    @staticmethod
    async def enrol(base_url: str, code: str, *, http: httpx.AsyncClient | None = None, timeout: float = 30.0) -> DeviceToken:
        """Exchange a one-time enrolment code (PROTOCOL.md section 10; from the admin's
        enrolment URL ``.../app/#enrol=<code>`` or typed) for the device's id, user and
        new token; no token is needed. A code works once: NotFoundError when it is
        unknown, used or expired, InvalidRequestError when it is not a code at all,
        UnavailableError after too many failures from this address.

        Then make the client with ``token=answer.token, device_id=answer.device_id,
        user_id=answer.user_id`` (or ``set_token`` on a client of that device)."""
        client = http if http is not None else httpx.AsyncClient(timeout=timeout)
        try:
            core = Http(client, "", base_url=base_url, retry=RetryPolicy(attempts=1))
            reply = await core.send(
                "POST", "/v1/enrol", content=msgspec.json.encode(EnrolCode(code=code)), headers={"Content-Type": "application/json"}, safe=False
            )
            return decode(reply, DeviceToken)
        finally:
            if http is None:
                await client.aclose()

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        """Open (or create) the local store; checks it belongs to this device and user."""
        await self._db.open()
        try:
            async with self._db.transaction() as conn:
                owner = await self._db.get_meta(conn, "device_id"), await self._db.get_meta(conn, "user_id")
                if owner == (None, None):
                    await self._db.set_meta(conn, {"device_id": self.device_id, "user_id": self.user_id})
                elif owner != (self.device_id, self.user_id):
                    raise StoreMismatch(f"{self._db.path} belongs to device {owner[0]} of user {owner[1]}")
                saved = await self._db.get_meta(conn, "hlc")
                top = await scalar(conn, "SELECT MAX(top) FROM outbox")
            self._clock.restore(saved, top)
        except BaseException:
            await self._db.close()
            raise

    async def aclose(self) -> None:
        """Close the local store (and the HTTP client, unless it was handed in). Nothing
        is lost: every edit was on disk when its call returned."""
        try:
            await self._db.close()
        finally:
            if self._owns_http:
                await self._httpx.aclose()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    # -- edits ---------------------------------------------------------------------------

    async def create(self, record: R) -> R:
        """Create a record on the device; ``created_by``/``created_at`` are filled in
        (this user, now) unless set. Returns it as stored."""
        spec, values, checked = encode_record(record, self.user_id, utc_text(self._clock.wall()))
        await self._outbox.create(spec.name, record.id, record.ward_id, values)
        return checked

    async def update(self, kind: type[R], record_id: str, /, **values: Any) -> R:
        """Set fields of a record (``None`` clears an optional one). A set field given
        whole is turned into element adds and removes. Write-once fields cannot change."""
        spec = spec_for(kind)
        edits, assign = Values(), {}
        for name, value in values.items():
            field = spec.fields.get(name)
            if field is None:
                raise InvalidEdit(f"{spec.name} has no field {name!r}")
            if field.policy is Policy.FIRST:
                raise InvalidEdit(f"{spec.name}.{name} is write-once")
            if field.policy is Policy.SET:
                assign[name] = check_elements(spec, name, value)
            else:
                edits.values[name] = encode_value(spec, name, value)
        doc = await self._outbox.edit(spec.name, record_id, edits, assign=assign)
        return _typed(kind, record_id, doc)

    async def add(self, kind: type[R], record_id: str, field: str, *elements: str) -> R:
        """Add elements to a set field (photos, officers, tags)."""
        return await self._set_edit(kind, record_id, field, elements, True)

    async def remove(self, kind: type[R], record_id: str, field: str, *elements: str) -> R:
        """Remove elements from a set field."""
        return await self._set_edit(kind, record_id, field, elements, False)

    async def _set_edit(self, kind: type[R], record_id: str, field: str, elements: tuple[str, ...], present: bool) -> R:
        spec = spec_for(kind)
        checked = check_elements(spec, field, elements)
        doc = await self._outbox.edit(spec.name, record_id, Values(sets={field: {e: present for e in checked}}))
        return _typed(kind, record_id, doc)

    async def delete(self, kind: type[Record], record_id: str) -> None:
        """Delete a record (a tombstone; a later edit elsewhere may bring it back)."""
        await self._outbox.edit(spec_for(kind).name, record_id, None, delete=True)

    @contextlib.asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """Make many edits in one transaction: all kept, or none (and one fsync)."""
        token = await self._batch_begin()
        marker = LocalDB.bind(token)
        try:
            yield
        except BaseException:
            LocalDB.unbind(marker)
            await self._batch_end(token, commit=False)
            raise
        LocalDB.unbind(marker)
        await self._batch_end(token, commit=True)

    async def _batch_begin(self) -> object:
        return await self._db.begin_batch()

    async def _batch_end(self, token: object, commit: bool) -> None:
        await self._db.end_batch(token, commit)

    # -- reads ---------------------------------------------------------------------------

    async def get(self, kind: type[R], record_id: str) -> R | None:
        """A record as the device reads it (pending edits applied); None if absent or deleted."""
        return await self._reader.get(kind, record_id)

    async def find(
        self,
        kind: type[R],
        /,
        *,
        ward: str | None = None,
        since: dt.date | dt.datetime | None = None,
        until: dt.date | dt.datetime | None = None,
        on: str | None = None,
        limit: int | None = None,
        **equals: Any,
    ) -> list[R]:
        """Live records of a collection, oldest id first: of a ward, with fields equal
        to ``equals``, dated in ``[since, until)`` by ``on`` (default: the field reports
        date the collection by, e.g. a check's ``started_at``). Times compare as
        instants, whatever their offsets; a bare date is midnight UTC, so pass aware
        datetimes (``+07:00``) to cut at the ward's midnight."""
        return await self._reader.find(kind, ward=ward, since=since, until=until, on=on, limit=limit, equals=equals)

    async def count(
        self,
        kind: type[Record],
        /,
        *,
        ward: str | None = None,
        since: dt.date | dt.datetime | None = None,
        until: dt.date | dt.datetime | None = None,
        on: str | None = None,
        **equals: Any,
    ) -> int:
        """How many records :meth:`find` would return."""
        return await self._reader.count(kind, ward=ward, since=since, until=until, on=on, equals=equals)

    async def pulled_records(self, page: int = 1000) -> AsyncIterator[PulledRecord]:
        """Every record as last pulled from the server (pending edits not applied),
        by collection and id, read a page at a time."""
        after: tuple[str, str] | None = None
        while True:
            chunk = await self._pulled_page(after, page)
            for record in chunk:
                yield record
            if len(chunk) < page:
                return
            after = (chunk[-1].collection, chunk[-1].id)

    async def _pulled_page(self, after: tuple[str, str] | None, page: int) -> list[PulledRecord]:
        return await self._reader.pulled_page(after or ("", ""), page)

    async def pending_count(self) -> int:
        """Records with edits waiting to be pushed."""
        return await self._outbox.pending_count()

    # -- sync ----------------------------------------------------------------------------

    async def sync(self, *, progress: Progress | None = None, push: bool = True, pull: bool = True) -> SyncReport:
        """Upload blobs, push the outbox, pull until caught up. See ``client_sdk._sync``.

        Raises AuthError (revoked device), TransportError / UnavailableError (server
        unreachable after the retries): each with ``.report`` of the partial work."""
        if self._db.in_batch():
            raise RuntimeError("sync() inside batch(): finish the batch first")
        if self._syncing:
            raise RuntimeError("a sync() of this client is already running")
        self._syncing = True
        try:
            return await self._syncer.run(progress, push, pull)
        finally:
            self._syncing = False

    async def dead_letters(self) -> list[DeadLetter]:
        """Changes the server rejected, oldest first."""
        return await self._reader.dead_letters()

    async def requeue_dead_letter(self, n: int, /, **fixes: Any) -> None:
        """Send a rejected change again at the next sync, with ``fixes`` to its values."""
        letter = next((d for d in await self._reader.dead_letters() if d.n == n), None)
        if letter is None:
            raise RecordNotFound(f"no dead letter {n}")
        spec = spec_for(letter.collection)
        corrected = Values(values={name: encode_value(spec, name, value) for name, value in fixes.items()})
        await self._outbox.requeue(n, letter.collection, letter.record_id, letter.change, corrected)

    async def drop_dead_letter(self, n: int, /) -> None:
        """Give a rejected change up for good."""
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM dead_letters WHERE n = ?", (n,))

    async def reported_conflicts(self) -> list[Conflict]:
        """Conflicts the server reported for this device's changes, oldest first."""
        return await self._reader.conflicts()

    async def dismiss_conflicts(self, ids: list[str] | None = None) -> None:
        """Forget reported conflicts (all of them by default) once the app showed them."""
        async with self._db.transaction() as conn:
            if ids is None:
                await conn.execute("DELETE FROM conflicts")
            else:
                await conn.executemany("DELETE FROM conflicts WHERE id = ?", [(i,) for i in ids])

    # -- attachments (see ``client_sdk._blobs``) -----------------------------------------

    async def put_blob(self, data: bytes) -> str:
        """Keep an attachment on the device; returns its id (``sha256:<hex>``) to add to a
        ``photos`` field. ``sync()`` uploads it before the edit that names it."""
        return await self._blobs.put(data)

    async def put_blob_file(self, path: str | os.PathLike[str]) -> str:
        """:meth:`put_blob` with a file's bytes (a photo the camera saved)."""
        return await self._blobs.put_file(path)

    async def get_blob(self, blob_id: str, *, fetch: bool = True) -> bytes:
        """An attachment's bytes: the device's copy, or (``fetch``, online) the server's,
        checked against its id and kept on the device. RecordNotFound when not on the
        device and ``fetch`` is False; ForbiddenError / NotFoundError from the server
        when no record of your wards names it / nobody uploaded it yet."""
        return await self._blobs.get(blob_id, fetch=fetch)

    async def unsent_blobs(self) -> list[str]:
        """Attachments kept on the device that the server has not confirmed yet."""
        return await self._blobs.not_uploaded()

    async def missing_blobs(self, *, ward: str | None = None) -> list[str]:
        """Online: blob ids that the server's records of your wards name and that nobody
        has uploaded (a handheld lost before its sync, or a refused upload)."""
        return await self._blobs.missing(ward)


def _typed(kind: type[R], record_id: str, doc: dict[str, Any]) -> R:
    return msgspec.convert({**doc, "id": record_id}, kind)
