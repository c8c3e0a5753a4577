"""The console's reading pages (PROTOCOL.md section 9). One handler per page; each
calls the services the API calls (``SupervisionService``, ``RecordLists``,
``BlobService``) with the signed-in caller's :class:`Principal`, so the console shows
exactly what the API would show that caller, never more."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Stream

from schemas import COLLECTIONS

from ..blobs import BlobService
from ..http.controllers.records import file_response
from ..services.console_sessions import ConsoleAuth
from ..services.listing import COLUMNS, FILTERS, ListParams, RecordLists, enum_values
from ..services.supervision import SupervisionService
from . import charts
from .web import Page, html, page_of

__all__ = ["ConsolePages"]

Text = Annotated[str | None, QueryParameter(max_length=200)]
Day = Annotated[str | None, QueryParameter(max_length=10)]
STALE = dt.timedelta(days=3)
BACKLOG = 20
SKEW_MS = 5 * 60 * 1000
_IMAGE_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG", "image/png"), (b"GIF8", "image/gif"), (b"RIFF", "image/webp"))


def _day(value: str | None) -> dt.date | None:
    """A date picker's value; an empty or unreadable one is no bound (the page says which it used)."""
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


async def _ward_choices(page: Page, lists: RecordLists) -> list[tuple[str, str]]:
    assert page.me is not None
    names = (await lists.names({"ward": set(page.me.principal.wards)}))["ward"]
    return sorted(((w, names.get(w, w)) for w in page.me.principal.wards), key=lambda p: p[1])


class ConsolePages(Controller):
    path = "/console"
    include_in_schema = False

    @get("/")
    async def overview(
        self,
        request: Request[Any, Any, Any],
        auth: NamedDependency[ConsoleAuth],
        supervision: NamedDependency[SupervisionService],
        lists: NamedDependency[RecordLists],
        ward: Text = None,
        from_: Annotated[str | None, QueryParameter(name="from", max_length=10)] = None,
        to: Day = None,
    ) -> Response[str]:
        page = await page_of(request, auth)
        assert page.me is not None
        me, ward = page.me.principal, ward or None
        start, end = _day(from_), _day(to)
        summary = await supervision.summary(me, ward, start, end)
        per_day = await supervision.checks_per_day(me, ward, start, end)
        targets = await supervision.targets(me, ward, None)
        waiting = await supervision.conflicts(me, ward, "open", None, None, 99)
        t = page.t
        by_category = [(f"c-{k}", t.value("violations", "category", k), n) for k, n in summary.violations_by_category.items()]
        by_status = [(f"s-{k}", t.value("violations", "status", k), n) for k, n in summary.violations_by_status.items()]
        days = [(day.isoformat(), n) for day, n in per_day]
        return html(
            page,
            "overview.html",
            summary=summary,
            targets=targets.targets,
            open_conflicts=len(waiting.conflicts),
            wards=await _ward_choices(page, lists),
            ward=ward,
            start=start,
            end=end,
            month_start=dt.date.today().replace(day=1),
            checks_chart=charts.day_columns(days, t("overview.checks_per_day"), start, end),
            category_chart=charts.share_bars(by_category, t("overview.by_category")),
            status_chart=charts.share_bars(by_status, t("overview.by_status")),
            live=True,
        )

    @get("/records/{collection:str}")
    async def record_list(
        self,
        request: Request[Any, Any, Any],
        auth: NamedDependency[ConsoleAuth],
        lists: NamedDependency[RecordLists],
        collection: FromPath[str],
        ward: Text = None,
        from_: Annotated[str | None, QueryParameter(name="from", max_length=10)] = None,
        to: Day = None,
        status: Text = None,
        category: Text = None,
        kind: Text = None,
        officer: Text = None,
        sort: Text = None,
        cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
    ) -> Response[str]:
        page = await page_of(request, auth)
        assert page.me is not None
        params = ListParams(ward or None, _day(from_), _day(to), status or None, category or None, kind or None, officer or None, sort or None, cursor or None, 50)
        result = await lists.page(page.me.principal, collection, params)
        fields = COLLECTIONS[collection].fields
        choices = {name: enum_values(fields.get(name)) for name in ("status", "category", "kind") if name in FILTERS[collection] or (name == "category" and collection == "violations")}
        zones = await lists.zones()
        filters = {"ward": ward or "", "from": from_ or "", "to": to or "", "status": status or "", "category": category or "", "kind": kind or "", "officer": officer or "", "sort": sort or ""}
        return html(
            page,
            "list.html",
            collection=collection,
            columns=COLUMNS[collection],
            records=result.records,
            next_cursor=result.next,
            first_page=cursor is None,
            choices=choices,
            dated="dates" in FILTERS[collection],
            sorts=("name", "-name") if collection == "premises" else ("-date", "date"),
            filters=filters,
            wards=await _ward_choices(page, lists),
            zones=zones,
        )

    @get("/export/{collection:str}")
    async def export(
        self,
        request: Request[Any, Any, Any],
        auth: NamedDependency[ConsoleAuth],
        lists: NamedDependency[RecordLists],
        collection: FromPath[str],
        format: FromQuery[Literal["csv", "xlsx"]] = "csv",
        ward: Text = None,
        from_: Annotated[str | None, QueryParameter(name="from", max_length=10)] = None,
        to: Day = None,
        status: Text = None,
        category: Text = None,
        kind: Text = None,
        officer: Text = None,
        sort: Text = None,
    ) -> Response[bytes]:
        """The list on screen, every page of it, as a file (the API's ``format=`` in a session)."""
        page = await page_of(request, auth)
        assert page.me is not None
        params = ListParams(ward or None, _day(from_), _day(to), status or None, category or None, kind or None, officer or None, sort or None)
        table = await lists.table(page.me.principal, collection, params, page.t)
        return file_response(table, f"{collection}-{ward or 'all'}", format)

    @get("/records/{collection:str}/{record_id:str}")
    async def record(
        self,
        request: Request[Any, Any, Any],
        auth: NamedDependency[ConsoleAuth],
        lists: NamedDependency[RecordLists],
        supervision: NamedDependency[SupervisionService],
        collection: FromPath[str],
        record_id: FromPath[str],
    ) -> Response[str]:
        page = await page_of(request, auth)
        assert page.me is not None
        me = page.me.principal
        record, deleted = await lists.record(me, collection, record_id)  # 404 outside the caller's wards
        history = await supervision.history(me, collection, record_id)
        waiting = await supervision.conflicts(me, record.ward_id, "open", collection, None, 500)
        users = (await lists.names({"user": {e.user_id for e in history.edits}}))["user"]
        fields = [name for name in COLLECTIONS[collection].fields if name not in ("ward_id",) and name in record.fields]
        return html(
            page,
            "record.html",
            record=record,
            deleted=deleted,
            fields=fields,
            enums={name: bool(enum_values(COLLECTIONS[collection].fields[name])) for name in fields},
            photos=[p for p in record.fields.get("photos", []) if isinstance(p, str)],
            history=list(reversed(history.edits)),
            users=users,
            conflicts=[c for c in waiting.conflicts if c.record_id == record_id],
            zone=(await lists.zones()).get(record.ward_id),
        )

    @get("/blobs/{blob_id:str}")
    async def photo(
        self, request: Request[Any, Any, Any], auth: NamedDependency[ConsoleAuth], blobs: NamedDependency[BlobService], blob_id: FromPath[str]
    ) -> Stream:
        """A photo for the record page, under the blob API's scope rule (a record of the
        caller's wards names it), read whole."""
        page = await page_of(request, auth)
        assert page.me is not None
        found = await blobs.read(page.me.principal, blob_id, "bytes=0-15")
        head = b"".join([chunk async for chunk in found.chunks()])
        media = next((m for magic, m in _IMAGE_MAGIC if head.startswith(magic)), "application/octet-stream")
        whole = await blobs.read(page.me.principal, blob_id, None)
        headers = {"Cache-Control": "private, max-age=86400, immutable", "Content-Length": str(whole.size), "X-Content-Type-Options": "nosniff"}
        return Stream(whole.chunks(), media_type=media, headers=headers)

    @get("/search")
    async def search(
        self,
        request: Request[Any, Any, Any],
        auth: NamedDependency[ConsoleAuth],
        supervision: NamedDependency[SupervisionService],
        lists: NamedDependency[RecordLists],
        q: Text = None,
        ward: Text = None,
    ) -> Response[str]:
        page = await page_of(request, auth)
        assert page.me is not None
        found = await supervision.search(page.me.principal, q, ward or None, None, 50) if q else None
        return html(page, "search.html", q=q or "", ward=ward or "", found=found, wards=await _ward_choices(page, lists))

    @get("/conflicts")
    async def conflicts(
        self,
        request: Request[Any, Any, Any],
        auth: NamedDependency[ConsoleAuth],
        supervision: NamedDependency[SupervisionService],
        lists: NamedDependency[RecordLists],
        ward: Text = None,
        status: FromQuery[Literal["open", "resolved"]] = "open",
        after: Text = None,
        done: Text = None,
    ) -> Response[str]:
        page = await page_of(request, auth)
        assert page.me is not None
        found = await supervision.conflicts(page.me.principal, ward or None, status, None, after or None, 50)
        users = (await lists.names({"user": {c.user_id for c in found.conflicts} | {c.resolved_by for c in found.conflicts if c.resolved_by}}))["user"]
        return html(
            page,
            "conflicts.html",
            conflicts=found.conflicts,
            next_after=found.next,
            status=status,
            ward=ward or "",
            wards=await _ward_choices(page, lists),
            users=users,
            done=done,
            live=status == "open",
        )

    @get("/fleet")
    async def fleet(
        self,
        request: Request[Any, Any, Any],
        auth: NamedDependency[ConsoleAuth],
        supervision: NamedDependency[SupervisionService],
        lists: NamedDependency[RecordLists],
        ward: Text = None,
    ) -> Response[str]:
        page = await page_of(request, auth)
        assert page.me is not None
        health = await supervision.fleet_health(page.me.principal, ward or None)
        now = dt.datetime.now(dt.UTC)
        rows = []
        for device in health.devices:
            last = max(filter(None, (device.last_push_at, device.last_pull_at)), default=None)
            seen = dt.datetime.fromisoformat(last.replace("Z", "+00:00")) if last else None
            flags = {
                "stale": not device.revoked and (seen is None or now - seen > STALE),
                "backlog": (device.pending or 0) > BACKLOG,
                "skewed": abs(device.clock_offset_ms or 0) > SKEW_MS,
            }
            rows.append((device, last, flags))
        users = (await lists.names({"user": {d.user_id for d in health.devices}}))["user"]
        return html(page, "fleet.html", rows=rows, users=users, ward=ward or "", wards=await _ward_choices(page, lists))
