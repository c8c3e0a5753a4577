"""``PatrolClient``: the synchronous twin, for scripts.

It drives an :class:`AsyncPatrolClient` on a private event loop in a background
thread (a "portal"), so both clients share one implementation and behave alike;
each method blocks until its coroutine is done. Progress callbacks run on that
thread. Do not call a ``PatrolClient`` from inside a running event loop: use the
async client there.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import random
import threading
from collections.abc import Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import httpx
from msgspec import UNSET, UnsetType

from schemas import (
    ChecksReport,
    Conflict,
    ConflictList,
    Device,
    DeviceToken,
    Enrolment,
    FleetHealth,
    GroupBy,
    NewTeam,
    NewUser,
    NewWard,
    PulledRecord,
    Record,
    RecordHistory,
    SearchResults,
    SummaryReport,
    TargetsReport,
    Team,
    User,
    UserUpdate,
    Ward,
)

from ._async_client import AsyncPatrolClient, MiB
from ._localdb import LocalDB
from ._sync import Progress
from .types import DeadLetter, RetryPolicy, SyncReport, WireOptions

__all__ = ["PatrolClient"]

T = TypeVar("T")
R = TypeVar("R", bound=Record)


class _Portal:
    """An event loop on its own thread, to run coroutines from blocking code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="patrol-sync-client", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("PatrolClient called from its own loop: use AsyncPatrolClient in async code")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join()


class PatrolClient:
    """The blocking twin of :class:`AsyncPatrolClient`, with the same methods::

        with PatrolClient("http://127.0.0.1:8000", token=..., device_id="lamson-h01",
                          user_id="u-ngoc", path="h01.db") as client:
            client.create(Premises(id=new_id(), ward_id="lam-son", name="Nhà trọ Lê Lợi", kind="boarding_house"))
            print(client.sync())

    ``transport``: an ``httpx.AsyncBaseTransport`` to send requests through (tests).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str,
        device_id: str,
        user_id: str,
        path: str | os.PathLike[str],
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        clock: Callable[[], int] | None = None,
        max_changes: int = 500,
        max_body_bytes: int = 4 * MiB,
        page_size: int = 1000,
        blob_chunk_bytes: int = 4 * MiB,
        send_back_after_restore: bool = True,
        wire: WireOptions | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._portal = _Portal()

        async def make() -> AsyncPatrolClient:
            http = httpx.AsyncClient(transport=transport, timeout=timeout) if transport is not None else None
            client = AsyncPatrolClient(
                base_url,
                token=token,
                device_id=device_id,
                user_id=user_id,
                path=path,
                http=http,
                retry=retry,
                timeout=timeout,
                clock=clock,
                max_changes=max_changes,
                max_body_bytes=max_body_bytes,
                page_size=page_size,
                blob_chunk_bytes=blob_chunk_bytes,
                send_back_after_restore=send_back_after_restore,
                wire=wire,
                rng=rng,
            )
            client._owns_http = True  # the transport's client is ours to close
            return client

        try:
            self._client = self._portal.call(make())
        except BaseException:
            self._portal.close()
            raise
        self.device_id = device_id
        self.user_id = user_id

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._portal.call(coro)

    # -- lifecycle ---------------------------------------------------------------------

    def open(self) -> None:
        """Open (or create) the local store; checks it belongs to this device and user."""
        self._call(self._client.open())

    def close(self) -> None:
        try:
            self._call(self._client.aclose())
        finally:
            self._portal.close()

    def __enter__(self) -> Self:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- identity ----------------------------------------------------------------------

    def set_token(self, token: str) -> None:
        """Use a new token from the next request on (see :meth:`AsyncPatrolClient.set_token`):
        the device keeps its id, local store and outbox, and the next ``sync()`` pushes
        the edits that waited as its own."""
        self._client.set_token(token)

    @staticmethod
    def enrol(base_url: str, code: str, *, transport: httpx.AsyncBaseTransport | None = None, timeout: float = 30.0) -> DeviceToken:
        """Exchange a one-time enrolment code for the device's id, user and new token (see
        :meth:`AsyncPatrolClient.enrol`). Blocks; not for use inside a running event loop."""

        async def run() -> DeviceToken:
            if transport is None:
                return await AsyncPatrolClient.enrol(base_url, code, timeout=timeout)
            async with httpx.AsyncClient(transport=transport, timeout=timeout) as http:
                return await AsyncPatrolClient.enrol(base_url, code, http=http)

        return asyncio.run(run())

    # -- the device's records ------------------------------------------------------------

    def create(self, record: R) -> R:
        return self._call(self._client.create(record))

    def update(self, kind: type[R], record_id: str, /, **values: Any) -> R:
        return self._call(self._client.update(kind, record_id, **values))

    def add(self, kind: type[R], record_id: str, field: str, *elements: str) -> R:
        return self._call(self._client.add(kind, record_id, field, *elements))

    def remove(self, kind: type[R], record_id: str, field: str, *elements: str) -> R:
        return self._call(self._client.remove(kind, record_id, field, *elements))

    def delete(self, kind: type[Record], record_id: str) -> None:
        self._call(self._client.delete(kind, record_id))

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Many edits in one transaction: all kept, or none."""
        token = self._call(self._client._batch_begin())
        marker = LocalDB.bind(token)  # the portal's tasks copy this thread's context
        try:
            yield
        except BaseException:
            LocalDB.unbind(marker)
            self._call(self._client._batch_end(token, commit=False))
            raise
        LocalDB.unbind(marker)
        self._call(self._client._batch_end(token, commit=True))

    def get(self, kind: type[R], record_id: str) -> R | None:
        return self._call(self._client.get(kind, record_id))

    def find(
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
        return self._call(self._client.find(kind, ward=ward, since=since, until=until, on=on, limit=limit, **equals))

    def count(
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
        return self._call(self._client.count(kind, ward=ward, since=since, until=until, on=on, **equals))

    def pulled_records(self, page: int = 1000) -> Iterator[PulledRecord]:
        """Every record as last pulled, read a page at a time."""
        after: tuple[str, str] | None = None
        while True:
            chunk = self._call(self._client._pulled_page(after, page))
            yield from chunk
            if len(chunk) < page:
                return
            after = (chunk[-1].collection, chunk[-1].id)

    def pending_count(self) -> int:
        return self._call(self._client.pending_count())

    def sync(self, *, progress: Progress | None = None, push: bool = True, pull: bool = True) -> SyncReport:
        return self._call(self._client.sync(progress=progress, push=push, pull=pull))

    def dead_letters(self) -> list[DeadLetter]:
        return self._call(self._client.dead_letters())

    def requeue_dead_letter(self, n: int, /, **fixes: Any) -> None:
        self._call(self._client.requeue_dead_letter(n, **fixes))

    def drop_dead_letter(self, n: int, /) -> None:
        self._call(self._client.drop_dead_letter(n))

    def reported_conflicts(self) -> list[Conflict]:
        return self._call(self._client.reported_conflicts())

    def dismiss_conflicts(self, ids: list[str] | None = None) -> None:
        self._call(self._client.dismiss_conflicts(ids))

    def put_blob(self, data: bytes) -> str:
        return self._call(self._client.put_blob(data))

    def put_blob_file(self, path: str | os.PathLike[str]) -> str:
        return self._call(self._client.put_blob_file(path))

    def get_blob(self, blob_id: str, *, fetch: bool = True) -> bytes:
        return self._call(self._client.get_blob(blob_id, fetch=fetch))

    def unsent_blobs(self) -> list[str]:
        return self._call(self._client.unsent_blobs())

    def missing_blobs(self, *, ward: str | None = None) -> list[str]:
        return self._call(self._client.missing_blobs(ward=ward))

    # -- online: supervision and administration ----------------------------------------

    def summary_report(self, *, ward: str | None = None, from_: dt.date | None = None, to: dt.date | None = None) -> SummaryReport:
        return self._call(self._client.summary_report(ward=ward, from_=from_, to=to))

    def checks_report(
        self, group_by: GroupBy, *, ward: str | None = None, from_: dt.date | None = None, to: dt.date | None = None
    ) -> ChecksReport:
        return self._call(self._client.checks_report(group_by, ward=ward, from_=from_, to=to))

    def checks_report_csv(
        self, group_by: GroupBy, *, ward: str | None = None, from_: dt.date | None = None, to: dt.date | None = None
    ) -> str:
        return self._call(self._client.checks_report_csv(group_by, ward=ward, from_=from_, to=to))

    def targets_report(self, *, ward: str | None = None, period: str | None = None) -> TargetsReport:
        return self._call(self._client.targets_report(ward=ward, period=period))

    def list_conflicts(
        self,
        *,
        ward: str | None = None,
        status: Literal["open", "resolved"] | None = None,
        collection: str | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> ConflictList:
        return self._call(self._client.list_conflicts(ward=ward, status=status, collection=collection, limit=limit, after=after))

    def resolve_conflict(self, conflict_id: str, choice: Literal["kept", "other", "value"], value: Any = None) -> Conflict:
        return self._call(self._client.resolve_conflict(conflict_id, choice, value))

    def record_history(self, collection: str, record_id: str) -> RecordHistory:
        return self._call(self._client.record_history(collection, record_id))

    def search_premises(self, q: str, *, ward: str | None = None, kind: str | None = None, limit: int | None = None) -> SearchResults:
        return self._call(self._client.search_premises(q, ward=ward, kind=kind, limit=limit))

    def fleet_health(self, *, ward: str | None = None) -> FleetHealth:
        return self._call(self._client.fleet_health(ward=ward))

    def create_ward(self, ward: NewWard) -> Ward:
        return self._call(self._client.create_ward(ward))

    def create_team(self, team: NewTeam) -> Team:
        return self._call(self._client.create_team(team))

    def create_user(self, user: NewUser) -> User:
        return self._call(self._client.create_user(user))

    def register_device(self, device_id: str, user_id: str) -> DeviceToken:
        return self._call(self._client.register_device(device_id, user_id))

    def revoke_device(self, device_id: str) -> None:
        self._call(self._client.revoke_device(device_id))

    def list_devices(self) -> list[Device]:
        return self._call(self._client.list_devices())

    def reissue_token(self, device_id: str) -> DeviceToken:
        return self._call(self._client.reissue_token(device_id))

    def create_enrolment(self, device_id: str, user_id: str | None = None) -> Enrolment:
        return self._call(self._client.create_enrolment(device_id, user_id))

    def update_user(self, user_id: str, changes: UserUpdate) -> User:
        return self._call(self._client.update_user(user_id, changes))

    def update_ward(self, ward_id: str, name: str) -> Ward:
        return self._call(self._client.update_ward(ward_id, name))

    def update_team(self, team_id: str, *, name: str | UnsetType = UNSET, ward_id: str | UnsetType = UNSET) -> Team:
        return self._call(self._client.update_team(team_id, name=name, ward_id=ward_id))

def _share_docstrings() -> None:
    """Each blocking method says what its async twin says: one text, kept beside the
    code that does the work, shown by ``help()`` and pdoc on both classes."""
    twins = {"close": "aclose"}
    for name, method in vars(PatrolClient).items():
        if name.startswith("_") or not callable(method) or method.__doc__:
            continue
        twin = getattr(AsyncPatrolClient, twins.get(name, name), None)
        if twin is not None and twin.__doc__:
            method.__doc__ = twin.__doc__


_share_docstrings()
