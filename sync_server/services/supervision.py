"""Supervisors' side: reports, targets, conflict review, history, search, fleet health.

Scope first: every answer covers the wards of the caller's scope, or the one ward
asked for if it is in scope (403 otherwise). A resolution is an edit like any other:
stamped by the server's clock, written by the push writer with the conflict marked
resolved in the same transaction, and pulled by every device.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import re
from typing import Any

import msgspec

from schemas import (
    HLC,
    ChecksReport,
    Conflict,
    ConflictList,
    Device,
    FleetHealth,
    GroupBy,
    PushResponse,
    RecordHistory,
    Resolution,
    SearchResults,
    SummaryReport,
    TargetProgress,
    TargetsReport,
    Team,
    User,
    Ward,
)
from schemas.collections import COLLECTIONS
from schemas.stamps import utc_now
from schemas.text import fold

from ..engine.resolve import resolution_change
from ..errors import AlreadyExists, Forbidden, NotFound, Unprocessable
from ..principal import Principal
from ..stores import ResolvedConflict, Store, TargetRow
from ..wire.codec import DecodedPush
from .fleet import FleetMonitor
from .writer import PushWriter

__all__ = ["SupervisionService", "period_range"]

_json = msgspec.json.Encoder()
_CONFLICT_ID = re.compile(r"^c-([0-9]{1,18})$")


class _Resolved(msgspec.Struct, kw_only=True):
    """What a resolution stores beside the conflict (``Conflict.resolution``)."""

    choice: str
    value: Any
    changeset_id: str


def period_range(period: str) -> tuple[dt.date, dt.date]:
    """``2023`` is that year, ``2023-06`` that month (both ends inclusive)."""
    if len(period) == 4:
        year = int(period)
        return dt.date(year, 1, 1), dt.date(year, 12, 31)
    year, month = int(period[:4]), int(period[5:7])
    return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])


class SupervisionService:
    def __init__(self, store: Store, writer: PushWriter, hlc: HLC, fleet: FleetMonitor) -> None:
        self.store = store
        self.writer = writer
        self.hlc = hlc
        self.fleet = fleet

    @staticmethod
    def wards(principal: Principal, ward: str | None) -> list[str]:
        if ward is None:
            return sorted(principal.wards)
        if not principal.may_see(ward):
            raise Forbidden(f"ward {ward} is not in your scope")
        return [ward]

    # -- reports ---------------------------------------------------------------------

    async def summary(self, principal: Principal, ward: str | None, start: dt.date | None, end: dt.date | None) -> SummaryReport:
        _check_period(start, end)
        return await self.store.summary(self.wards(principal, ward), start, end)

    async def checks(
        self, principal: Principal, group_by: GroupBy, ward: str | None, start: dt.date | None, end: dt.date | None
    ) -> ChecksReport:
        _check_period(start, end)
        wards = self.wards(principal, ward)
        rows = await self.store.check_rows(wards, group_by, start, end)
        names = await self._names(group_by)
        for row in rows:
            row.key_name = names.get(row.key, row.key)
        return ChecksReport(group_by=group_by, wards=wards, from_=start, to=end, rows=rows)

    async def _names(self, group_by: GroupBy) -> dict[str, str]:
        """Display names of the keys of a grouping by ward, team or officer (PROTOCOL.md 6)."""
        kinds: dict[str, type[Ward] | type[Team] | type[User]] = {"ward": Ward, "team": Team, "officer": User}
        kind = kinds.get(group_by)
        if kind is None:
            return {}
        return {item.id: item.name for item in await self.store.entities(kind) if not isinstance(item, Device)}

    async def checks_per_day(
        self, principal: Principal, ward: str | None, start: dt.date | None, end: dt.date | None
    ) -> list[tuple[dt.date, int]]:
        """Live checks of each day (the overview's chart), from the report counters."""
        _check_period(start, end)
        return await self.store.checks_per_day(self.wards(principal, ward), start, end)

    async def targets(self, principal: Principal, ward: str | None, period: str | None) -> TargetsReport:
        wards = self.wards(principal, ward)
        summaries: dict[tuple[str, str], SummaryReport] = {}
        progress = []
        for row in await self.store.targets(wards, period):
            key = (row.ward_id, row.period)
            if key not in summaries:
                summaries[key] = await self.store.summary([row.ward_id], *period_range(row.period))
            progress.append(_progress(row, summaries[key]))
        return TargetsReport(wards=wards, period=period, targets=progress)

    # -- conflicts -------------------------------------------------------------------

    async def conflicts(
        self,
        principal: Principal,
        ward: str | None,
        status: str | None,
        collection: str | None,
        after: str | None,
        limit: int,
    ) -> ConflictList:
        after_id = _conflict_number(after) if after else None
        found = await self.store.conflicts(self.wards(principal, ward), status, collection, after_id, limit + 1)
        more = len(found) > limit
        found = found[:limit]
        return ConflictList(conflicts=found, next=found[-1].id if more and found else None)

    async def resolve(self, principal: Principal, conflict_id: str, decision: Resolution) -> Conflict:
        number = _conflict_number(conflict_id)
        conflict = await self.store.conflict(number)
        if conflict is None or not principal.may_see(conflict.ward_id):
            raise NotFound(f"no conflict {conflict_id} in your wards")
        if conflict.status == "resolved":
            raise AlreadyExists(f"conflict {conflict_id} was resolved by {conflict.resolved_by} at {conflict.resolved_at}")
        key = (conflict.collection, conflict.record_id)
        async with self.store.read() as reads:
            state = (await reads.records([key])).get(key)
        if state is None:
            raise NotFound(f"{conflict.collection}/{conflict.record_id} does not exist")
        self.hlc.observe(max(state.top_stamp, state.tomb or ""))  # stamped after all it decides on
        stamp = self.hlc.now()
        change = resolution_change(conflict, decision, state, stamp)
        changeset_id = f"resolve-{number}-{stamp}"
        push = DecodedPush(principal.device_id, changeset_id, [change], hashlib.sha256(_json.encode(change)).digest())
        record = _Resolved(choice=decision.choice, value=decision.value, changeset_id=changeset_id)
        resolved = ResolvedConflict(number, principal.user_id, utc_now(), _json.encode(record))
        outcome = await self.writer.submit(principal, push, resolved)
        if outcome.rejected:
            answer = msgspec.json.decode(outcome.answer, type=PushResponse[msgspec.Raw])
            raise Unprocessable("the resolution was refused: " + "; ".join(e.detail for e in answer.results[0].errors))
        updated = await self.store.conflict(number)
        assert updated is not None
        return updated

    # -- history, search, fleet ------------------------------------------------------

    async def history(self, principal: Principal, collection: str, record_id: str) -> RecordHistory:
        if collection not in COLLECTIONS:
            raise NotFound(f"no collection {collection}")
        found = await self.store.history(collection, record_id)
        if found is None or not principal.may_see(found.ward_id):
            raise NotFound(f"no record {collection}/{record_id} in your wards")
        return found

    async def search(self, principal: Principal, q: str, ward: str | None, kind: str | None, limit: int) -> SearchResults:
        terms = re.findall(r"\w+", fold(q))[:12]
        hits = await self.store.search_premises(self.wards(principal, ward), terms, kind, limit) if terms else []
        return SearchResults(query=q, results=hits)

    async def fleet_health(self, principal: Principal, ward: str | None) -> FleetHealth:
        await self.fleet.flush()
        wards = None if ward is None and principal.is_admin else self.wards(principal, ward)
        devices = await self.store.fleet_health(wards)
        if not principal.is_admin:  # a colleague's other wards are not the caller's business
            for device in devices:
                device.wards = [w for w in device.wards if principal.may_see(w)]
        return FleetHealth(devices=devices)


def _check_period(start: dt.date | None, end: dt.date | None) -> None:
    if start is not None and end is not None and start > end:
        raise Unprocessable(f"from ({start}) is after to ({end})")


def _progress(row: TargetRow, summary: SummaryReport) -> TargetProgress:
    achieved = float(getattr(summary, row.metric))
    return TargetProgress(
        id=row.id,
        ward_id=row.ward_id,
        metric=row.metric,
        period=row.period,
        target=row.target,
        achieved=achieved,
        percent=round(achieved / row.target * 100, 1),
    )


def _conflict_number(conflict_id: str) -> int:
    match = _CONFLICT_ID.fullmatch(conflict_id)
    if match is None:
        raise NotFound(f"no conflict {conflict_id[:40]!r}")
    return int(match.group(1))
