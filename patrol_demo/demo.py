"""``patrol-sync demo``: the scenario of DOMAIN.md, end to end, through the SDK.

A real server (uvicorn on a free loopback port, embedded SQLite in a temporary
directory), ward Lam Sơn with two patrol teams, three officers' handhelds and the
supervisor's laptop, each an SDK client with its own store file. Day one, the
handhelds work offline (84 premises checked, 47 violations recorded, nine of them
with a photo as evidence) and sync in a random order, one of them over a flaky link. Day two, more offline work (64 fire-
safety groups, 23 public fire points) and edits that collide; one handheld's clock
runs a day ahead. The supervisor then reads the server's reports, reviews and
resolves the conflicts, and the run ends by checking that every device holds
exactly the server's data. The exit status is 0 only if it does.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
import struct
import sys
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import msgspec
from rich.columns import Columns
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from client_sdk import AsyncPatrolClient, RetryPolicy, SyncReport, new_id
from schemas import (
    Check,
    DeviceHealth,
    FirePoint,
    NewTeam,
    NewUser,
    NewWard,
    Premises,
    SafetyGroup,
    SummaryReport,
    Target,
    TargetProgress,
    Violation,
)
from schemas.stamps import wall_ms
from sync_server.loopback import LoopbackServer
from sync_server.services import identity
from sync_server.services.passwords import hash_password
from sync_server.settings import Settings
from sync_server.stores import store_for

__all__ = ["Figures", "run_demo"]

VN = dt.timezone(dt.timedelta(hours=7))
DAY_MS = 86_400_000
WARD = "lam-son"
OFFICERS = [  # device, user, name, team
    ("lamson-h01", "u-ngoc", "Lê Văn Ngọc", "ls-t1"),
    ("lamson-h02", "u-hung", "Trần Quốc Hùng", "ls-t1"),
    ("lamson-h03", "u-lan", "Nguyễn Thị Lan", "ls-t2"),
]
STREETS = ["Lê Lợi", "Trần Phú", "Phan Chu Trinh", "Lê Hoàn", "Hàng Đồng", "Tống Duy Tân", "Cửa Hữu", "Hạc Thành",
           "Lý Thường Kiệt", "Trường Thi", "Đào Duy Từ", "Bà Triệu", "Lê Văn Hưu", "Nguyễn Trãi"]
SURNAMES = ["Nguyễn", "Lê", "Trần", "Phạm", "Hoàng", "Vũ", "Đỗ", "Bùi", "Đặng", "Ngô", "Trịnh", "Mai"]
MIDDLE = ["Văn", "Thị", "Hữu", "Quốc", "Ngọc", "Đình", "Minh", "Thanh"]
GIVEN = ["An", "Bình", "Cường", "Dũng", "Hà", "Hải", "Hạnh", "Hoa", "Hùng", "Lan", "Long", "Mai", "Nga", "Phương",
         "Sơn", "Tâm", "Thắng", "Thủy", "Tuấn", "Yến", "Mỡn", "Ngà"]
#: 84 premises, mostly boarding houses, as in the ward's June 2023 report
KINDS = ["boarding_house"] * 58 + ["lodging"] * 10 + ["karaoke"] * 7 + ["bar"] * 3 + ["shop"] * 6
#: 47 violation records ("lập hồ sơ xử lý")
CATEGORIES = ["residence_registration"] * 24 + ["fire_safety"] * 11 + ["business_license"] * 5 + ["public_order"] * 5 + ["other"] * 2
STATUSES = ["open"] * 12 + ["notified"] * 14 + ["fined"] * 15 + ["resolved"] * 6
LABEL = {"boarding_house": "Nhà trọ", "lodging": "Nhà nghỉ", "karaoke": "Karaoke", "bar": "Quán bar", "shop": "Cửa hàng"}


#: the demo supervisor's console password (``--serve``): a demo store, deleted on exit
DEMO_PASSWORD = "lamson-2023"


class Figures(msgspec.Struct, kw_only=True):
    """What the demo showed, as data (``demo --json``): the figures a test or a script
    reads without parsing the tables drawn for people."""

    summary: SummaryReport | None = None
    targets: list[TargetProgress] = []
    #: each conflict: id, field ("-" for a delete), kind, the supervisor's decision
    conflicts: list[dict[str, str]] = []
    #: each sync: round, device, blobs, pushed, pulled, rejected, conflicts, retries, warnings
    syncs: list[dict[str, Any]] = []
    #: each warning a sync reported: device, code, detail
    warnings: list[dict[str, str]] = []
    fleet: list[DeviceHealth] = []
    #: photos attached on the handhelds, uploaded, missing on the server, bytes of the one opened
    evidence: dict[str, int] = {}
    #: each device at the end: device, records, pending, same (as the server)
    devices: list[dict[str, Any]] = []
    all_match: bool = False


def run_demo(seed: int = 2023, serve: bool = False, port: int = 8000, as_json: bool = False) -> int:
    """Run the scenario; 0 when every device ends with the server's data.

    ``serve``: then leave the server running on ``port`` with the console open to the
    demo supervisor, until Ctrl-C (the temporary store goes with it). ``as_json``: the
    story goes to standard error, and standard output gets the :class:`Figures`."""
    out = sys.stderr if as_json else sys.stdout
    console = Console(file=out, width=None if out.isatty() else 110, highlight=False)
    demo = _Demo(seed, console, serve, port)
    code = asyncio.run(demo.run())
    if as_json:
        sys.stdout.write(msgspec.json.encode(demo.figures).decode() + "\n")
    return code


#: each officer photographs the first violations he records
PHOTOS_PER_OFFICER = 3


def _photo(rng: random.Random, width: int = 240, height: int = 180) -> bytes:
    """A PNG of a photo's size order (a noisy gradient, ~100 KiB), made with the stdlib."""
    rows = []
    for y in range(height):
        noise = rng.randbytes(width * 3)
        rows.append(b"\x00" + bytes((noise[i] & 0x3F) + (y * 190 // height if i % 3 else i * 60 // (width * 3)) for i in range(width * 3)))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows), 6)) + chunk(b"IEND", b"")


class _Flaky(httpx.AsyncBaseTransport):
    """A handheld's weak link: the first push reaches the server but its answer is lost,
    and the first pull meets a 503. The SDK retries both."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.lost_answer = self.unavailable = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/sync/pull" and not self.unavailable:
            self.unavailable = True
            return httpx.Response(503, headers={"Retry-After": "0"}, json={"type": "about:blank", "title": "Service unavailable", "status": 503, "detail": "injected"})
        response = await self.inner.handle_async_request(request)
        if request.url.path == "/v1/sync/push" and not self.lost_answer:
            self.lost_answer = True
            await response.aread()
            await response.aclose()
            raise httpx.ReadError("connection dropped after the request (injected)", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Demo:
    def __init__(self, seed: int, console: Console, serve: bool = False, port: int = 8000) -> None:
        self.serve, self.port = serve, port
        self.rng = random.Random(seed)
        self.console = console
        self.names = {user: name for _, user, name, _ in OFFICERS}
        self.devices: dict[str, AsyncPatrolClient] = {}
        self.sync_log: list[tuple[str, str, SyncReport]] = []
        self.figures = Figures()

    def _person(self) -> str:
        return f"{self.rng.choice(SURNAMES)} {self.rng.choice(MIDDLE)} {self.rng.choice(GIVEN)}"

    def _when(self, day: int, hour: int) -> dt.datetime:
        return dt.datetime(2023, 5, 22, hour, self.rng.randrange(0, 60, 5), tzinfo=VN) + dt.timedelta(days=day)

    async def run(self) -> int:
        with tempfile.TemporaryDirectory(prefix="patrol-sync-demo-") as tmp:
            settings = Settings(db_url=f"sqlite:///{Path(tmp) / 'server.db'}")
            store = store_for(settings.db_url)
            await store.open()
            try:
                admin_token = await identity.bootstrap(store)
            finally:
                await store.close()
            # a console left open holds a live stream: Ctrl-C waits for it 3 s at most, not its minute
            async with LoopbackServer(settings, self.port if self.serve else 0, graceful_shutdown_s=3) as server:
                url = server.url
                self.console.rule("[bold]patrol-sync demo: Phường Lam Sơn, TP Thanh Hóa")
                self.console.print(f"Server {url}, embedded SQLite store in {tmp}")
                async with contextlib.AsyncExitStack() as stack:
                    admin = await stack.enter_async_context(self._client(url, admin_token, "admin-cli", "admin", tmp))
                    await self._setup(admin, url, tmp, stack)
                    await self._day_one()
                    await self._day_two()
                    await self._supervise()
                    result = await self._check(admin)
                if self.serve:
                    await self._open_console(settings, url, server)
                return result
        return 1  # pragma: no cover

    def _client(self, url: str, token: str, device: str, user: str, tmp: str, **options: Any) -> AsyncPatrolClient:
        retry = RetryPolicy(attempts=5, base_delay=0.05, max_delay=0.5)
        return AsyncPatrolClient(url, token=token, device_id=device, user_id=user, path=Path(tmp) / f"{device}.db", retry=retry, **options)

    async def _setup(self, admin: AsyncPatrolClient, url: str, tmp: str, stack: contextlib.AsyncExitStack) -> None:
        await admin.create_ward(NewWard(id=WARD, name="Phường Lam Sơn"))
        await admin.create_team(NewTeam(id="ls-t1", ward_id=WARD, name="Tổ tuần tra 1"))
        await admin.create_team(NewTeam(id="ls-t2", ward_id=WARD, name="Tổ tuần tra 2"))
        await admin.create_user(NewUser(id="u-minh", name="Phạm Văn Minh", role="supervisor", ward_ids=[WARD]))
        self.names["u-minh"] = "Phạm Văn Minh"
        for _device, user, name, team in OFFICERS:
            await admin.create_user(NewUser(id=user, name=name, role="officer", team_ids=[team]))
        for device, user in [*((d, u) for d, u, _, _ in OFFICERS), ("sup-laptop", "u-minh")]:
            token = (await admin.register_device(device, user)).token
            options: dict[str, Any] = {}
            if device == "lamson-h02":
                options["http"] = await stack.enter_async_context(httpx.AsyncClient(transport=_Flaky(), timeout=30))
            if device == "lamson-h03":  # this handheld's clock runs a day ahead
                options["clock"] = lambda: wall_ms() + DAY_MS
            self.devices[device] = await stack.enter_async_context(self._client(url, token, device, user, tmp, **options))
        self.console.print("Ward lam-son: teams ls-t1, ls-t2; officers " + ", ".join(f"{n} ({d})" for d, _, n, _ in OFFICERS)
                           + "; supervisor Phạm Văn Minh (sup-laptop). lamson-h03's clock runs a day ahead.")

    # -- day one: inspections --------------------------------------------------------------

    async def _day_one(self) -> None:
        self.console.rule("Day one, offline: premises inspections")
        kinds = KINDS[:]
        self.rng.shuffle(kinds)
        categories, statuses = CATEGORIES[:], STATUSES[:]
        self.rng.shuffle(categories)
        self.rng.shuffle(statuses)
        table = Table("device", "officer", "premises", "checks", "violations", "photos")
        self.checks: dict[str, list[Check]] = {}
        self.violations: list[Violation] = []
        for n, (device, user, name, team) in enumerate(OFFICERS):
            client = self.devices[device]
            checks: list[Check] = []
            async with client.batch():
                mine = kinds[n * 28 : (n + 1) * 28]
                for i, kind in enumerate(mine):
                    owner = self._person()
                    when = self._when(self.rng.randrange(17), self.rng.randrange(8, 17))
                    p = await client.create(Premises(
                        id=new_id(), ward_id=WARD, name=f"{LABEL[kind]} {owner.split()[-1]} {i + 1}", kind=kind,  # type: ignore[arg-type]
                        address=f"{self.rng.randrange(1, 180)} {self.rng.choice(STREETS)}, phường Lam Sơn, TP Thanh Hóa",
                        owner_name=owner, owner_phone=f"09{self.rng.randrange(10**7, 10**8)}",
                        rooms=self.rng.randrange(4, 30) if kind in ("boarding_house", "lodging") else None, created_at=when,
                    ))
                    visits = 2 if i < 4 else 1  # four premises are checked again later
                    for v in range(visits):
                        at = when + dt.timedelta(days=3 * v)
                        checks.append(await client.create(Check(
                            id=new_id(), ward_id=WARD, premises_id=p.id, kind="residence" if v == 0 else "fire_safety",
                            started_at=at, finished_at=at + dt.timedelta(minutes=40), team_id=team, officer_id=user,
                            result="ok", residents_present=self.rng.randrange(1, 25), officers=[user], created_at=at,
                        )))
                share = 16 if n < 2 else 15
                for k in range(share):
                    check = checks[4 + (k * 5) % 24]  # first visits only, a few with two violations
                    status = statuses.pop()
                    photos = [await client.put_blob(_photo(self.rng))] if k < PHOTOS_PER_OFFICER else []
                    self.violations.append(await client.create(Violation(
                        id=new_id(), ward_id=WARD, check_id=check.id, premises_id=check.premises_id,
                        category=categories.pop(), status=status,  # type: ignore[arg-type]
                        fine_vnd=self.rng.choice([500_000, 1_000_000, 2_500_000, 5_000_000]) if status in ("fined", "resolved") else None,
                        record_no=f"{100 + len(self.violations)}/BB-CAP", created_at=check.started_at + dt.timedelta(hours=1),
                        description="Lập hồ sơ xử lý theo quy định", photos=photos,
                    )))
                    await client.update(Check, check.id, result="violations_found")
            self.checks[device] = checks
            table.add_row(device, name, "28", str(len(checks)), str(share), str(PHOTOS_PER_OFFICER))
        sup = self.devices["sup-laptop"]
        await sup.create(Target(id=new_id(), ward_id=WARD, metric="fire_safety_groups", period="2023", target=20))
        await sup.create(Target(id=new_id(), ward_id=WARD, metric="public_fire_points", period="2023", target=5))
        self.console.print(table)
        self.console.print("Supervisor sets the city's 2023 targets: 20 fire-safety groups, 5 public fire points.")
        await self._sync_round("day one", [*self.devices])
        pulled = [(device, (await client.sync()).pulled) for device, client in self.devices.items()]
        self.console.print("Next morning, before going out, every device syncs again: " + ", ".join(f"{d} pulls {n}" for d, n in pulled) + ".")

    # -- day two: fire safety, and collisions -----------------------------------------------

    async def _day_two(self) -> None:
        self.console.rule("Day two, offline: fire safety, and edits that collide")
        h01, h02, h03 = (self.devices[d] for d, _, _, _ in OFFICERS)
        for n, (device, _, _, _) in enumerate(OFFICERS):
            client = self.devices[device]
            async with client.batch():
                for i in range([22, 21, 21][n]):
                    await client.create(SafetyGroup(
                        id=new_id(), ward_id=WARD, kind="fire_safety", name=f"Tổ liên gia an toàn PCCC số {n * 22 + i + 1}",
                        leader_name=self._person(), households=self.rng.randrange(8, 20),
                        established_on=dt.date(2023, 3, 1) + dt.timedelta(days=self.rng.randrange(85)),
                    ))
                for i in range([8, 8, 7][n]):
                    await client.create(FirePoint(
                        id=new_id(), ward_id=WARD, name=f"Điểm chữa cháy công cộng {self.rng.choice(STREETS)} {n * 8 + i + 1}",
                        address=f"Tổ dân phố {self.rng.randrange(1, 16)}, phường Lam Sơn", equipment=["bình chữa cháy", "thang", "búa"],
                        established_on=dt.date(2023, 3, 1) + dt.timedelta(days=self.rng.randrange(85)),
                    ))
        collided = self.violations[0]
        await h01.update(Violation, collided.id, status="fined", fine_vnd=1_500_000)
        await h02.update(Violation, collided.id, status="notified", fine_vnd=2_000_000)
        duplicate = self.checks["lamson-h02"][1]  # a second visit, entered twice
        await h01.delete(Check, duplicate.id)
        await h02.update(Check, duplicate.id, notes="Kiểm tra lại: đã trang bị bình chữa cháy")
        phone = self.checks["lamson-h03"][0].premises_id
        await h03.update(Premises, phone, owner_phone="0912345678")
        await h01.update(Premises, phone, owner_phone="0987654321")
        self.collided, self.duplicate = collided, duplicate
        self.console.print(
            "Fire safety: 64 inter-household groups and 23 public fire points registered.\n"
            f"Collisions: Ngọc fines violation {collided.record_no} 1,500,000 ₫ while Hùng marks it notified with 2,000,000 ₫; "
            "Ngọc deletes a check Hùng is annotating; Lan (clock a day ahead) and Ngọc both change an owner's phone."
        )
        await self._sync_round("day two", [d for d, _, _, _ in OFFICERS])

    async def _sync_round(self, title: str, devices: Sequence[str]) -> None:
        order = list(devices)
        self.rng.shuffle(order)
        with Progress(TextColumn("{task.description:<32}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}"),
                      console=self.console, transient=False) as bar:
            for device in order:
                client = self.devices[device]
                task = bar.add_task(f"{device}: push", total=max(1, await client.pending_count()), note="")

                def show(p: Any, task: Any = task, device: str = device) -> None:
                    if p.phase == "blobs":
                        bar.update(task, description=f"{device}: photos {p.blobs}")
                    elif p.phase == "push":
                        bar.update(task, description=f"{device}: push", completed=p.pushed, total=max(1, p.to_push))
                    else:
                        bar.update(task, description=f"{device}: pulled {p.pulled}")

                report = await client.sync(progress=show)
                bar.update(task, completed=bar.tasks[task].total, note=f"{report.retries} retries" if report.retries else "")
                self.sync_log.append((title, device, report))
        table = Table("order", "device", "photos", "pushed", "pulled", "rejected", "conflicts", "retries", "warnings", title=f"Syncs, {title} (random order)")
        for n, (_, device, r) in enumerate(x for x in self.sync_log if x[0] == title):
            warnings = "; ".join(w.code for w in r.warnings)
            table.add_row(str(n + 1), device, str(r.blobs), str(r.pushed), str(r.pulled), str(r.rejected), str(len(r.conflicts)), str(r.retries), warnings)
            self.figures.syncs.append({"round": title, "device": device, "blobs": r.blobs, "pushed": r.pushed, "pulled": r.pulled,
                                       "rejected": r.rejected, "conflicts": len(r.conflicts), "retries": r.retries,
                                       "warnings": [w.code for w in r.warnings]})
        self.console.print(table)
        for _, device, r in (x for x in self.sync_log if x[0] == title):
            for w in r.warnings:
                self.console.print(f"  {device}: [yellow]{w.code}[/yellow]: {w.detail}")
                self.figures.warnings.append({"device": device, "code": w.code, "detail": w.detail})

    # -- the supervisor ----------------------------------------------------------------------

    async def _supervise(self) -> None:
        self.console.rule("The supervisor's view (from the server's reports)")
        sup = self.devices["sup-laptop"]
        await sup.sync()
        conflicts = (await sup.list_conflicts(ward=WARD, status="open")).conflicts
        table = Table("id", "record", "field", "kind", "merge kept", "other side", "supervisor's decision", title="Conflicts and how each was resolved")
        for c in conflicts:
            kept, other = (c.server, c.client) if c.winner == "server" else (c.client, c.server)
            if c.field == "fine_vnd":
                choice, value, decision = "value", 1_500_000, "set 1,500,000 ₫"
            else:
                choice, value, decision = "kept", None, "kept: " + _side(kept)
            await sup.resolve_conflict(c.id, choice, value)  # type: ignore[arg-type]
            table.add_row(c.id, f"{c.collection}/…{c.record_id[-4:]}", c.field or "-", c.kind.replace("concurrent_edit", "concurrent"),
                          _side(kept), _side(other), decision)
            self.figures.conflicts.append({"id": c.id, "field": c.field or "-", "kind": c.kind, "decision": decision})
        self.console.print(table)
        await self._sync_round("after review", [*self.devices])
        summary = self.figures.summary = await sup.summary_report(ward=WARD)
        self.console.print(
            f"[bold]{summary.premises_checked} premises checked[/bold] in {summary.checks} checks, "
            f"[bold]{summary.violations_recorded} violations[/bold] recorded, fines {summary.fines_vnd:,} ₫"
        )
        kinds = Table("premises kind", "checked", title="Premises checked")
        categories = Table("category", "violations", title="Violations by category")
        statuses = Table("status", "violations", title="Violations by status")
        for table, counts, total in [
            (kinds, summary.premises_checked_by_kind, summary.premises_checked),
            (categories, summary.violations_by_category, summary.violations_recorded),
            (statuses, summary.violations_by_status, summary.violations_recorded),
        ]:
            for key, count in sorted(counts.items(), key=lambda kv: -kv[1]):
                table.add_row(key, str(count))
            table.add_row("[bold]total", f"[bold]{total}")
        self.console.print(Columns([kinds, categories, statuses]))
        await self._evidence(sup)
        targets = Table("target", "period", "target", "achieved", "per cent", title="Fire-safety targets")
        self.figures.targets = (await sup.targets_report(ward=WARD, period="2023")).targets
        for t in self.figures.targets:
            targets.add_row(t.metric, t.period, str(t.target), f"{t.achieved:g}", f"[bold]{t.percent:g} %")
        fleet = Table("device", "client", "pending", "clock offset", "rejected", title="Fleet health")
        self.figures.fleet = (await sup.fleet_health(ward=WARD)).devices
        for d in self.figures.fleet:
            offset = _offset(d.clock_offset_ms)
            fleet.add_row(d.device_id, f"{d.client or '-'} {d.client_version or ''}", str(d.pending if d.pending is not None else "-"), offset, str(d.rejected))
        self.console.print(Columns([targets, fleet]))

    async def _evidence(self, sup: AsyncPatrolClient) -> None:
        """The photos reached the server intact; the supervisor opens one on demand."""
        named = [(v, photo) for v in self.violations for photo in v.photos]
        uploaded = sum(r.blobs for _, _, r in self.sync_log)
        missing = await sup.missing_blobs(ward=WARD)
        violation, photo = named[0]
        data = await sup.get_blob(photo)  # fetched from the server, checked against its sha256 id
        self.figures.evidence = {"attached": len(named), "uploaded": uploaded, "missing": len(missing), "opened_bytes": len(data)}
        self.console.print(
            f"Evidence: {len(named)} violation photos attached on the handhelds, {uploaded} uploaded after their records, "
            f"{len(missing)} missing on the server. The supervisor opens the photo of violation {violation.record_no}: "
            f"{len(data):,} bytes, {photo[:19]}…, checksum verified."
        )

    async def _open_console(self, settings: Settings, url: str, server: LoopbackServer) -> None:
        """``--serve``: give the supervisor a console password and keep serving."""
        store = store_for(settings.db_url)
        await store.open()
        try:
            await store.set_password("u-minh", hash_password(DEMO_PASSWORD))
        finally:
            await store.close()
        self.console.rule("The supervisors' console")
        self.console.print(f"Open [bold]{url}/console/[/bold] and sign in as [bold]u-minh[/bold], password [bold]{DEMO_PASSWORD}[/bold]")
        self.console.print("(Ctrl-C stops the server; the demo's temporary store is deleted.)", style="dim")
        sys.stdout.flush()
        await server.wait()

    # -- the end: every device holds the server's data ----------------------------------------

    async def _check(self, admin: AsyncPatrolClient) -> int:
        self.console.rule("Every device holds the server's data")
        await admin.sync()  # the admin's view is the whole server
        server = {(r.collection, r.id): (r.seq, r.deleted, r.fields) async for r in admin.pulled_records()}
        table = Table("device", "records", "pending", "same as the server")
        ok = True
        for device, client in self.devices.items():
            await client.sync()
            mine = {(r.collection, r.id): (r.seq, r.deleted, r.fields) async for r in client.pulled_records()}
            same = mine == server and await client.pending_count() == 0
            ok = ok and same
            table.add_row(device, str(len(mine)), str(await client.pending_count()), "[green]yes" if same else "[red]NO")
            self.figures.devices.append({"device": device, "records": len(mine), "pending": await client.pending_count(), "same": same})
        self.console.print(table)
        self.console.print(f"{len(server)} records on the server; " + ("[green]all devices match." if ok else "[red]some devices differ."))
        self.figures.all_match = ok
        return 0 if ok else 1


def _side(side: Any) -> str:
    if side.deleted:
        return "deleted"
    value = side.value
    if value is None:
        return "edited record"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())[:40]
    return f"{value:,} ₫" if isinstance(value, int) else str(value)


def _offset(ms: int | None) -> str:
    if ms is None:
        return "-"
    if abs(ms) >= 3_600_000:
        return f"{ms / 3_600_000:+.0f} h"
    return f"{ms / 60_000:+.0f} min" if abs(ms) >= 60_000 else "ok"
