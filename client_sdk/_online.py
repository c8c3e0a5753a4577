"""Online calls: supervisors' reports, conflict review, history, search, fleet health,
and administration. Thin typed wrappers; answers decode into ``schemas`` types.

These need the network (they read the server's figures, never the device's copy).
Reads are retried like pulls; a conflict resolution is a new edit, so it is only
retried when the connection was never made.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from msgspec import UNSET, UnsetType

from schemas import (
    ChecksReport,
    Conflict,
    ConflictList,
    Device,
    DeviceToken,
    Enrolment,
    EnrolmentRequest,
    FleetHealth,
    GroupBy,
    NewDevice,
    NewTeam,
    NewUser,
    NewWard,
    RecordHistory,
    Resolution,
    SearchResults,
    SummaryReport,
    TargetsReport,
    Team,
    TeamUpdate,
    User,
    UserUpdate,
    Ward,
    WardUpdate,
)

from ._http import Http, decode

__all__ = ["OnlineAPI"]


class OnlineAPI:
    """Mixed into the async client; ``_http`` is its request core."""

    _http: Http

    # -- supervision (supervisors and admins; officers get ForbiddenError) ---------------

    async def summary_report(self, *, ward: str | None = None, from_: dt.date | None = None, to: dt.date | None = None) -> SummaryReport:
        """Counts over live records in a period (``from_`` and ``to`` inclusive, ward's zone)."""
        return await self._http.get("/v1/reports/summary", SummaryReport, {"ward": ward, "from": from_, "to": to})

    async def checks_report(
        self, group_by: GroupBy, *, ward: str | None = None, from_: dt.date | None = None, to: dt.date | None = None
    ) -> ChecksReport:
        """Rows of ``checks``, distinct ``premises`` and ``violations`` per ``group_by`` key
        (``ward``, ``team``, ``officer``, ``premises_kind``, ``check_kind``, ``day``, ``week``,
        ``month``), each with its display name; ``from_`` and ``to`` inclusive, in the ward's zone."""
        return await self._http.get("/v1/reports/checks", ChecksReport, {"group_by": group_by, "ward": ward, "from": from_, "to": to})

    async def checks_report_csv(
        self, group_by: GroupBy, *, ward: str | None = None, from_: dt.date | None = None, to: dt.date | None = None
    ) -> str:
        """The same rows as :meth:`checks_report`, as CSV text (``key,key_name,checks,premises,violations``)."""
        response = await self._http.send(
            "GET",
            "/v1/reports/checks",
            params={"group_by": group_by, "ward": ward, "from": from_, "to": to},
            headers={"Accept": "text/csv"},
        )
        return response.content.decode("utf-8-sig")  # the file's byte-order mark is for Excel, not for code

    async def targets_report(self, *, ward: str | None = None, period: str | None = None) -> TargetsReport:
        """Each target with its achieved count and per cent (``period``: ``2023`` or ``2023-06``)."""
        return await self._http.get("/v1/reports/targets", TargetsReport, {"ward": ward, "period": period})

    async def list_conflicts(
        self,
        *,
        ward: str | None = None,
        status: Literal["open", "resolved"] | None = None,
        collection: str | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> ConflictList:
        """One page of the server's conflict log; pass ``next`` as ``after`` for the next."""
        params = {"ward": ward, "status": status, "collection": collection, "limit": limit, "after": after}
        return await self._http.get("/v1/conflicts", ConflictList, params)

    async def resolve_conflict(self, conflict_id: str, choice: Literal["kept", "other", "value"], value: Any = None) -> Conflict:
        """Decide a conflict: keep the stored value, take the other side, or set ``value``.

        The decision is a new edit stamped by the server; devices get it on their next pull."""
        return await self._http.post(f"/v1/conflicts/{conflict_id}/resolve", Resolution(choice=choice, value=value), Conflict)

    async def record_history(self, collection: str, record_id: str) -> RecordHistory:
        """Every applied edit of a record, oldest first: seq, time, user, device, and each
        field's old and new value (supervisors and admins)."""
        return await self._http.get(f"/v1/records/{collection}/{record_id}/history", RecordHistory)

    async def search_premises(
        self, q: str, *, ward: str | None = None, kind: str | None = None, limit: int | None = None
    ) -> SearchResults:
        """Premises by name, address or owner, ignoring case and diacritics (any role)."""
        return await self._http.get("/v1/search/premises", SearchResults, {"q": q, "ward": ward, "kind": kind, "limit": limit})

    async def fleet_health(self, *, ward: str | None = None) -> FleetHealth:
        """Per device: last push and pull, pending edits, client version, clock offset and
        rejected changes, so the handheld that stopped syncing shows (supervisors and admins)."""
        return await self._http.get("/v1/devices/health", FleetHealth, {"ward": ward})

    # -- administration (admin role) -----------------------------------------------------

    async def create_ward(self, ward: NewWard) -> Ward:
        """Create a ward (admin); :class:`~client_sdk.ConflictError` if its id exists."""
        return await self._http.post("/v1/admin/wards", ward, Ward)

    async def create_team(self, team: NewTeam) -> Team:
        """Create a patrol team in a ward (admin); :class:`~client_sdk.ConflictError` if its id exists."""
        return await self._http.post("/v1/admin/teams", team, Team)

    async def create_user(self, user: NewUser) -> User:
        """Create a user with a role, teams and wards (admin); his scope is the wards of
        his teams plus his own ``ward_ids``."""
        return await self._http.post("/v1/admin/users", user, User)

    async def register_device(self, device_id: str, user_id: str) -> DeviceToken:
        """Register a device; the answer holds its token, shown only this once."""
        return await self._http.post("/v1/admin/devices", NewDevice(device_id=device_id, user_id=user_id), DeviceToken)

    async def revoke_device(self, device_id: str) -> None:
        """Revoke a device's token (a lost handheld): its next request gets 401."""
        await self._http.send("DELETE", f"/v1/admin/devices/{device_id}", safe=True)

    async def list_devices(self) -> list[Device]:
        """Every registered device and its user (admin; tokens are never listed)."""
        return await self._http.get("/v1/admin/devices", list[Device])

    async def reissue_token(self, device_id: str) -> DeviceToken:
        """A new token for a device, shown only in this answer: the old one stops at once,
        and a revoked device is revoked no more. The device keeps its id, so the edits in
        its outbox sync as its own once it is given the token (``set_token``)."""
        return decode(await self._http.send("POST", f"/v1/admin/devices/{device_id}/token", safe=False), DeviceToken)

    async def create_enrolment(self, device_id: str, user_id: str | None = None) -> Enrolment:
        """A one-time code (10 minutes) the handheld exchanges for its new token
        (``AsyncPatrolClient.enrol``); ``user_id`` registers a device id not known yet."""
        return await self._http.post(f"/v1/admin/devices/{device_id}/enrolment", EnrolmentRequest(user_id=user_id), Enrolment)

    async def update_user(self, user_id: str, changes: UserUpdate) -> User:
        """Change a user's name, role, teams, wards or ``disabled`` (his devices get 401
        while he is disabled); his scope follows at once."""
        return await self._http.send_json("PATCH", f"/v1/admin/users/{user_id}", changes, User, safe=True)

    async def update_ward(self, ward_id: str, name: str) -> Ward:
        """Rename a ward (its id and time zone stay); admins only."""
        return await self._http.send_json("PATCH", f"/v1/admin/wards/{ward_id}", WardUpdate(name=name), Ward, safe=True)

    async def update_team(self, team_id: str, *, name: str | UnsetType = UNSET, ward_id: str | UnsetType = UNSET) -> Team:
        """Rename a team, or move it to another ward (refused, ConflictError, once records name it)."""
        return await self._http.send_json("PATCH", f"/v1/admin/teams/{team_id}", TeamUpdate(name=name, ward_id=ward_id), Team, safe=True)
