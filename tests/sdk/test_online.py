"""Typed online calls: supervisors' reports, conflict review, history, search, fleet
health, and administration, as the SDK offers them."""

from __future__ import annotations

import datetime as dt

import pytest

from client_sdk import AsyncPatrolClient, ConflictError, ForbiddenError, NotFoundError, new_id
from schemas import (
    Check,
    ChecksReport,
    Conflict,
    FleetHealth,
    NewTeam,
    NewUser,
    NewWard,
    Premises,
    RecordHistory,
    SafetyGroup,
    SummaryReport,
    Target,
    Violation,
)

from ..helpers import World
from .conftest import MakeClient

VN = dt.timezone(dt.timedelta(hours=7))


async def seed(h01: AsyncPatrolClient) -> tuple[Premises, Check, Violation]:
    p = await h01.create(Premises(id=new_id(), ward_id="lam-son", name="Nhà trọ Lê Lợi", kind="boarding_house", address="12 Đường Lê Lợi"))
    c = await h01.create(Check(id=new_id(), ward_id="lam-son", premises_id=p.id, kind="residence", started_at=dt.datetime(2023, 6, 5, 9, tzinfo=VN)))
    v = await h01.create(Violation(id=new_id(), ward_id="lam-son", check_id=c.id, premises_id=p.id, category="residence_registration", status="open"))
    for n in range(4):
        await h01.create(SafetyGroup(id=new_id(), ward_id="lam-son", kind="fire_safety", name=f"Tổ liên gia {n + 1}", established_on=dt.date(2023, 4, 1)))
    await h01.create(Target(id=new_id(), ward_id="lam-son", metric="fire_safety_groups", period="2023", target=2))
    await h01.sync()
    return p, c, v


async def test_a_supervisor_reads_typed_reports(make_client: MakeClient, world: World, h01: AsyncPatrolClient) -> None:
    p, c, v = await seed(h01)
    async with make_client(world.supervisor) as sup:
        summary = await sup.summary_report(ward="lam-son", from_=dt.date(2023, 1, 1), to=dt.date(2030, 12, 31))
        assert isinstance(summary, SummaryReport)
        assert (summary.checks, summary.premises_checked, summary.violations_recorded, summary.fire_safety_groups) == (1, 1, 1, 4)
        by_kind = await sup.checks_report("check_kind", ward="lam-son")
        assert isinstance(by_kind, ChecksReport) and [(r.key, r.checks, r.violations) for r in by_kind.rows] == [("residence", 1, 1)]
        csv = await sup.checks_report_csv("check_kind", ward="lam-son")
        assert csv.splitlines()[0] == "key,key_name,checks,premises,violations"
        targets = await sup.targets_report(ward="lam-son", period="2023")
        assert [(t.metric, t.achieved, t.percent) for t in targets.targets] == [("fire_safety_groups", 4, 200.0)]
        history = await sup.record_history("violations", v.id)
        assert isinstance(history, RecordHistory) and len(history.edits) == 1
        found = await sup.search_premises("nha tro le loi", ward="lam-son")
        assert [hit.id for hit in found.results] == [p.id]
        with pytest.raises(NotFoundError):
            await sup.record_history("violations", new_id())


async def test_an_officer_gets_a_forbidden_error_for_supervisor_calls(h01: AsyncPatrolClient) -> None:
    with pytest.raises(ForbiddenError, match="403"):
        await h01.summary_report()
    with pytest.raises(ForbiddenError):
        await h01.list_conflicts()


async def test_a_supervisor_resolves_a_conflict_and_devices_get_the_decision(
    make_client: MakeClient, world: World, h01: AsyncPatrolClient, h02: AsyncPatrolClient
) -> None:
    _, _, v = await seed(h01)
    await h02.sync()
    await h01.update(Violation, v.id, fine_vnd=1_000_000)
    await h02.update(Violation, v.id, fine_vnd=2_000_000)
    await h01.sync()
    await h02.sync()
    async with make_client(world.supervisor) as sup:
        page = await sup.list_conflicts(ward="lam-son", status="open")
        [conflict] = page.conflicts
        assert (conflict.field, conflict.kind) == ("fine_vnd", "concurrent_edit")
        decided = await sup.resolve_conflict(conflict.id, "value", 1_500_000)
        assert isinstance(decided, Conflict) and decided.status == "resolved"
        assert (await sup.list_conflicts(ward="lam-son", status="open")).conflicts == []
    await h01.sync()
    got = await h01.get(Violation, v.id)
    assert got is not None and got.fine_vnd == 1_500_000


async def test_fleet_health_shows_what_the_sdk_tells_the_server(make_client: MakeClient, world: World, h01: AsyncPatrolClient) -> None:
    await h01.create(Premises(id=new_id(), ward_id="lam-son", name="Quán karaoke Hạc Thành", kind="karaoke"))
    await h01.sync(push=False)  # a pull, with one record waiting
    async with make_client(world.supervisor) as sup:
        health = await sup.fleet_health(ward="lam-son")
    assert isinstance(health, FleetHealth)
    [device] = [d for d in health.devices if d.device_id == "lamson-h01"]
    assert (device.client, device.schema, device.pending) == ("patrol-sync-py", 1, 1)
    assert device.clock_offset_ms is not None and abs(device.clock_offset_ms) < 60_000


async def test_an_admin_script_manages_wards_teams_users_and_devices(make_client: MakeClient, world: World) -> None:
    async with make_client(world.admin) as admin:
        ward = await admin.create_ward(NewWard(id="dong-tho", name="Phường Đông Thọ"))
        assert ward.name == "Phường Đông Thọ"
        await admin.create_team(NewTeam(id="dt-t1", ward_id="dong-tho", name="Tổ tuần tra 1"))
        await admin.create_user(NewUser(id="u-tuan", name="Lê Anh Tuấn", role="officer", team_ids=["dt-t1"]))
        issued = await admin.register_device("dongtho-h01", "u-tuan")
        assert issued.token
        with pytest.raises(ConflictError):
            await admin.create_ward(NewWard(id="dong-tho", name="Phường Đông Thọ"))
        await admin.revoke_device("dongtho-h01")
        [device] = [d for d in await admin.list_devices() if d.device_id == "dongtho-h01"]
        assert device.revoked_at is not None
