"""The handheld app's sync in real Chromium: a first sync of a 5,000-record ward, then an idle one.

    python bench/app_sync.py                          # --records 5000 --runs 3, loopback
    python bench/app_sync.py --link 64,400 --runs 1   # through a 64 kbit/s link, 400 ms round trip

The server (``patrol-sync serve``, its own process) holds a ward of ``--records``
check records, pushed raw by another device. A fresh browser context (an empty
phone) opens ``/app/``, is given its device token, and syncs: the time is from the
call until the app is idle with every record in IndexedDB. Then an idle sync (nothing
new on either side), then a push of ``--push`` new checks the officer recorded.

Bytes are counted two ways, each way (up: phone to server; down: server to phone):
Chromium's own accounting of the API calls (``/v1/``: request and response headers
and bodies, bodies as transferred, i.e. compressed; Playwright's ``request.sizes()``),
and, with ``--link``, the TCP payload that crossed the emulated link
(``tests/linkemu.py``, an asyncio proxy: Chromium talks only to the proxy's port, so
the app shell's first load crosses it too, and is reported on its own line).
Compression is on as in the field: the server compresses answers over 1 KiB (brotli,
which Chromium offers), and the app gzips push bodies from 1 KiB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
from playwright.async_api import Request, async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _harness import running_server  # noqa: E402
from _workloads import light as check_change  # noqa: E402

from tests.linkemu import Link  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHASES = ("first", "idle", "push")


def seed(url: str, token: str, records: int) -> None:
    changes = [check_change("h001", i) for i in range(records)]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}, timeout=120) as http:
        for s in range(0, records, 1000):
            body = msgspec.json.encode({"device_id": "h001", "changeset_id": str(uuid.uuid4()), "changes": changes[s : s + 1000]})
            http.post("/v1/sync/push", content=body).raise_for_status()


class Wire:
    """Bytes of the API calls a page makes (headers and bodies), each way."""

    def __init__(self) -> None:
        self.requests = 0
        self.up = 0
        self.down = 0

    async def finished(self, request: Request) -> None:
        if "/v1/" not in request.url:
            return
        sizes = await request.sizes()
        self.requests += 1
        self.up += sizes["requestHeadersSize"] + sizes["requestBodySize"]
        self.down += sizes["responseHeadersSize"] + sizes["responseBodySize"]


@contextlib.asynccontextmanager
async def through(url: str, link: tuple[float, float] | None) -> AsyncIterator[tuple[str, Link | None]]:
    """The address the phone uses: the server's, or an emulated link's in front of it."""
    if link is None:
        yield url, None
        return
    kbit, rtt = link
    async with Link(int(url.rsplit(":", 1)[1]), up_kbit=kbit, down_kbit=kbit, rtt_ms=rtt) as emulated:
        yield emulated.url, emulated


PUSH = """async (n) => {
  for (let i = 0; i < n; i++) await window.patrolApp.local.create("checks", {ward_id: "lam-son", premises_id: `prem-${i}`,
    kind: "residence", started_at: "2026-11-30T09:00:00+07:00", result: "ok", residents_present: i % 9,
    notes: "Kiểm tra nhà trọ, đăng ký tạm trú đầy đủ"});
}"""


async def one_run(url: str, token: str, records: int, link: tuple[float, float] | None, push: int) -> dict[str, Any]:
    """One fresh phone; ``records``: what the server holds (earlier runs' pushes included)."""
    async with async_playwright() as p, through(url, link) as (base, emulated):
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
        page = await context.new_page()
        page.set_default_timeout(600_000)
        wire = Wire()
        pending: list[asyncio.Task[None]] = []
        page.on("requestfinished", lambda r: pending.append(asyncio.ensure_future(wire.finished(r))))
        out: dict[str, Any] = {}
        start = time.perf_counter()
        await page.goto(f"{base}/app/")
        await page.wait_for_function("window.patrolApp && window.patrolApp.local")
        out["shell_s"] = time.perf_counter() - start
        out["shell_up"], out["shell_down"] = emulated.counters() if emulated else (0, 0)
        await page.evaluate("([t]) => window.patrolApp.local.setMeta({device_id: 'h000', token: t})", [token])
        for phase in PHASES:
            if phase == "push":
                await page.evaluate(PUSH, push)
            await asyncio.gather(*pending)
            wire.requests = wire.up = wire.down = 0
            before = emulated.counters() if emulated else (0, 0)
            start = time.perf_counter()
            report = await page.evaluate("window.patrolApp.syncer.sync()")
            out[f"{phase}_s"] = time.perf_counter() - start
            await asyncio.sleep(0.2)
            await asyncio.gather(*pending)
            after = emulated.counters() if emulated else (0, 0)
            out[f"{phase}_up"], out[f"{phase}_down"] = wire.up, wire.down
            out[f"{phase}_link_up"], out[f"{phase}_link_down"] = after[0] - before[0], after[1] - before[1]
            out[f"{phase}_requests"] = wire.requests
            if phase == "first":
                assert report["pulled"] == records, report
            if phase == "push":
                assert report["pushed"] == push, report
        held = await page.evaluate("window.patrolApp.local.list('checks').then((l) => l.length)")
        assert held == records + push, held
        await browser.close()
        return out


def _kib(values: list[float]) -> str:
    return f"{statistics.median(values) / 1024:,.1f}"


def report(runs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    where = f"a {args.link[0]:g} kbit/s link, {args.link[1]:g} ms round trip" if args.link else "loopback"
    print(f"{args.records} records, through {where}; {len(runs)} run(s) (a fresh phone each); median [min-max]")
    if args.link:
        seconds = [r["shell_s"] for r in runs]
        print(f"  app shell, first load: {statistics.median(seconds):.1f} s, link {_kib([r['shell_up'] for r in runs])} KiB up, "
              f"{_kib([r['shell_down'] for r in runs])} KiB down")
    for phase in PHASES:
        seconds = [r[f"{phase}_s"] for r in runs]
        line = (f"  {phase:>5} sync: {statistics.median(seconds):.2f} s [{min(seconds):.2f}-{max(seconds):.2f}], "
                f"API {_kib([r[f'{phase}_up'] for r in runs])} KiB up, {_kib([r[f'{phase}_down'] for r in runs])} KiB down "
                f"in {runs[0][f'{phase}_requests']} requests")
        if args.link:
            line += f"; link {_kib([r[f'{phase}_link_up'] for r in runs])} KiB up, {_kib([r[f'{phase}_link_down'] for r in runs])} KiB down"
        print(line)


def _link(text: str) -> tuple[float, float]:
    kbit, rtt = text.split(",")
    return float(kbit), float(rtt)


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--push", type=int, default=100, help="new checks in the push phase")
    parser.add_argument("--link", type=_link, default=None, metavar="KBIT,RTT_MS", help="through an emulated link, e.g. 64,400")
    args = parser.parse_args()
    with running_server() as fleet:
        fleet.setup(devices=2)
        seed(fleet.url, fleet.tokens["h001"], args.records)
        runs = [await one_run(fleet.url, fleet.tokens["h000"], args.records + i * args.push, args.link, args.push) for i in range(args.runs)]
    report(runs, args)


if __name__ == "__main__":
    asyncio.run(main())
