from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from schemas import PERIOD_PATTERN, ChecksReport, GroupBy, SummaryReport, TargetsReport

from ..auth import supervisors_only
from ..principal import Principal
from ..supervision import SupervisionService

__all__ = ["ReportsController"]

Ward = Annotated[str | None, QueryParameter(max_length=64, description="one ward of your scope; all of them if left out")]
From = Annotated[dt.date | None, QueryParameter(name="from", description="first day, inclusive, in the ward's zone")]
To = Annotated[dt.date | None, QueryParameter(description="last day, inclusive")]
Period = Annotated[str | None, QueryParameter(pattern=PERIOD_PATTERN, description="2023 or 2023-06")]


def _csv(report: ChecksReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["key", "checks", "premises", "violations"])
    for row in report.rows:
        writer.writerow([row.key, row.checks, row.premises, row.violations])
    return out.getvalue()


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
    ) -> Response[ChecksReport]:
        report = await supervision.checks(request.user, group_by, ward, from_, to)
        if "text/csv" in request.headers.get("accept", ""):
            return Response(_csv(report), media_type="text/csv; charset=utf-8")  # type: ignore[arg-type]
        return Response(report)

    @get("/targets", summary="Each target with its achieved count and per cent")
    async def targets(
        self,
        request: Request[Principal, None, Any],
        supervision: NamedDependency[SupervisionService],
        ward: Ward = None,
        period: Period = None,
    ) -> TargetsReport:
        return await supervision.targets(request.user, ward, period)
