from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from schemas import RecordHistory, RecordList

from ...i18n import catalogue
from ...principal import Principal
from ...services import exports
from ...services.listing import ListParams, RecordLists, Table
from ...services.supervision import SupervisionService
from ..auth import supervisors_only

__all__ = ["RecordsController", "file_response"]

Format = Literal["json", "csv", "xlsx"]
Filter = Annotated[str | None, QueryParameter(max_length=64)]


def file_response(table: Table, stem: str, fmt: Format) -> Response[bytes]:
    """A table as a CSV or XLSX attachment."""
    if fmt == "xlsx":
        body, media = exports.xlsx_bytes(table.header, table.rows, stem), exports.XLSX_TYPE
    else:
        body, media = exports.csv_bytes(table.header, table.rows), exports.CSV_TYPE
    return Response(body, media_type=media, headers={"Content-Disposition": exports.attachment(stem, fmt)})


def wants(request: Request[Any, Any, Any], fmt: Format | None) -> Format:
    if fmt is not None:
        return fmt
    return "csv" if "text/csv" in request.headers.get("accept", "") else "json"


class RecordsController(Controller):
    path = "/v1/records"
    tags = ["history"]
    guards = [supervisors_only]

    @get("/{collection:str}", summary="Live records of one collection, filtered, sorted and paged (JSON, CSV or XLSX)", tags=["records"])
    async def list_records(
        self,
        request: Request[Principal, None, Any],
        lists: NamedDependency[RecordLists],
        collection: FromPath[str],
        ward: Filter = None,
        from_: Annotated[dt.date | None, QueryParameter(name="from", description="first day, inclusive, in the ward's zone")] = None,
        to: Annotated[dt.date | None, QueryParameter(description="last day, inclusive")] = None,
        status: Filter = None,
        category: Filter = None,
        kind: Filter = None,
        officer: Filter = None,
        sort: Annotated[str | None, QueryParameter(max_length=16, description="-date (default) or date; premises: name or -name")] = None,
        cursor: Annotated[str | None, QueryParameter(max_length=512, description="the `next` of the page before")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        format: Annotated[Format | None, QueryParameter(description="json (default), csv or xlsx (a file of every selected row)")] = None,
        lang: Annotated[Literal["vi", "en"], QueryParameter(description="language of a file's header row")] = "vi",
    ) -> Response[Any]:
        params = ListParams(ward, from_, to, status, category, kind, officer, sort, cursor, limit)
        fmt = wants(request, format)
        if fmt == "json":
            page: RecordList = await lists.page(request.user, collection, params)
            return Response(page)
        table = await lists.table(request.user, collection, params, catalogue(lang))
        return file_response(table, f"{collection}-{ward or 'all'}", fmt)

    @get("/{collection:str}/{record_id:str}/history", summary="Every applied edit of a record, oldest first")
    async def history(
        self,
        request: Request[Principal, None, Any],
        supervision: NamedDependency[SupervisionService],
        collection: FromPath[str],
        record_id: FromPath[str],
    ) -> RecordHistory:
        """Who changed which field, from what to what, when and from which device."""
        return await supervision.history(request.user, collection, record_id)
