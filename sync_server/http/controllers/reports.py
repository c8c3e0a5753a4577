from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from schemas import PERIOD_PATTERN, ChecksReport, GroupBy, SummaryReport, TargetsReport

from ...principal import Principal
from ...services import exports
from ...services.supervision import SupervisionService
from ..auth import supervisors_only

__all__ = ["ReportsController"]

Ward = Annotated[str | None, QueryParameter(max_length=64, description="one ward of your scope; all of them if left out")]
From = Annotated[dt.date | None, QueryParameter(name="from", description="first day, inclusive, in the ward's zone")]
To = Annotated[dt.date | None, QueryParameter(description="last day, inclusive")]
Period = Annotated[str | None, QueryParameter(pattern=PERIOD_PATTERN, description="2023 or 2023-06")]


def _file(report: ChecksReport, fmt: str) -> Response[bytes]:
    """The rows as a CSV or XLSX attachment (``exports``: BOM, formula cells neutralised)."""
    header = ["key", "key_name", "checks", "premises", "violations"]
    rows: list[list[exports.Cell]] = [[row.key, row.key_name, row.checks, row.premises, row.violations] for row in report.rows]
    stem = f"checks-by-{report.group_by}"
    if fmt == "xlsx":
        body, media = exports.xlsx_bytes(header, rows, stem), exports.XLSX_TYPE
    else:
        body, media = exports.csv_bytes(header, rows), exports.CSV_TYPE
    return Response(body, media_type=media, headers={"Content-Disposition": exports.attachment(stem, fmt)})


class ReportsController(Controller):
    """Aggregated figures over live records of the caller's wards. Supervisors and admins."""

    path = "/v1/reports"
    tags = ["reports"]
    guards = [supervisors_only]

    @get("/summary", summary="Counts of checks, premises, violations, fines, tips, patrols")
    async def summary(
        self,
        request: Request[Principal, None, Any],
        supervision: NamedDependency[SupervisionService],
        ward: Ward = None,
        from_: From = None,
        to: To = None,
    ) -> SummaryReport:
        """Over live records of your wards (or ``ward``), days counted in each ward's time zone."""
        return await supervision.summary(request.user, ward, from_, to)

    @get("/checks", summary="Checks grouped by ward, team, officer, kind or time (JSON, or CSV with Accept: text/csv)")
    async def checks(
        self,
        request: Request[Principal, None, Any],
        supervision: NamedDependency[SupervisionService],
        group_by: Annotated[GroupBy, QueryParameter(description="ward, team, officer, premises_kind, check_kind, day, week or month")],
        ward: Ward = None,
        from_: From = None,
        to: To = None,
        format: Annotated[Literal["json", "csv", "xlsx"] | None, QueryParameter(description="csv or xlsx: a file (also Accept: text/csv)")] = None,
    ) -> Response[Any]:
        """One row per group: checks, distinct premises, violations recorded at those checks.
        ``format=csv|xlsx`` (or ``Accept: text/csv``) answers the rows as a file, for a spreadsheet."""
        report = await supervision.checks(request.user, group_by, ward, from_, to)
        fmt = format or ("csv" if "text/csv" in request.headers.get("accept", "") else "json")
        if fmt != "json":
            return _file(report, fmt)
        return Response(report)

    @get("/targets", summary="Each target with its achieved count and per cent")
    async def targets(
        self,
        request: Request[Principal, None, Any],
        supervision: NamedDependency[SupervisionService],
        ward: Ward = None,
        period: Period = None,
    ) -> TargetsReport:
        """Targets of your wards (or ``ward``) for a year or month (``period``), with what was achieved."""
        return await supervision.targets(request.user, ward, period)
