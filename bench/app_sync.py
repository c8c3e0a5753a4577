"""The handheld app's sync in real Chromium: a first sync of a 5,000-record ward, then an idle one.

    python bench/app_sync.py                 # --records 5000 --runs 3

The server (``patrol-sync serve``, its own process) holds a ward of ``--records``
check records, pushed raw by another device. A fresh browser context (an empty
phone) opens ``/app/``, is given its device token, and taps sync: the time is from
the tap until the app is idle with every record in IndexedDB; the bytes are what
crossed the wire for the API (request and response headers and bodies, bodies as
transferred, i.e. compressed when the server compresses), from Chromium's own
accounting (Playwright's ``request.sizes()``). The idle sync is a second tap with
nothing new on either side.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import msgspec
from playwright.async_api import Request, async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import running_server  # noqa: E402
from push_pull import check_change  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def seed(url: str, token: str, records: int) -> None:
    changes = [check_change("h001", i) for i in range(records)]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}, timeout=120) as http:
        for s in range(0, records, 1000):
            body = msgspec.json.encode({"device_id": "h001", "changeset_id": str(uuid.uuid4()), "changes": changes[s : s + 1000]})
            http.post("/v1/sync/push", content=body).raise_for_status()


class Wire:
    """Bytes of the API calls a page makes (headers and bodies, both ways)."""

    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0

    async def finished(self, request: Request) -> None:
        if "/v1/" not in request.url:
            return
        sizes = await request.sizes()
        self.requests += 1
        self.bytes += sizes["requestHeadersSize"] + sizes["requestBodySize"] + sizes["responseHeadersSize"] + sizes["responseBodySize"]


async def one_run(url: str, token: str, records: int) -> dict[str, Any]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
        page = await context.new_page()
        wire = Wire()
        pending: list[asyncio.Task[None]] = []
        page.on("requestfinished", lambda r: pending.append(asyncio.ensure_future(wire.finished(r))))
        await page.goto(f"{url}/app/")
        await page.wait_for_function("window.patrolApp && window.patrolApp.local")
        await page.evaluate("([t]) => window.patrolApp.local.setMeta({device_id: 'h000', token: t, user_id: 'u-000', ward_id: 'lam-son'})", [token])
        out: dict[str, Any] = {}
        for phase in ("first", "idle"):
            await asyncio.gather(*pending)
            wire.requests = wire.bytes = 0
            start = time.perf_counter()
            report = await page.evaluate("window.patrolApp.syncer.sync()")
            out[f"{phase}_s"] = time.perf_counter() - start
            await asyncio.sleep(0.2)
            await asyncio.gather(*pending)
            out[f"{phase}_bytes"], out[f"{phase}_requests"] = wire.bytes, wire.requests
            if phase == "first":
                assert report["pulled"] == records, report
        held = await page.evaluate("window.patrolApp.local.list('checks').then((l) => l.length)")
        assert held == records, held
        await browser.close()
        return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with running_server() as fleet:
        fleet.setup(devices=2)
        seed(fleet.url, fleet.tokens["h001"], args.records)
        runs = [await one_run(fleet.url, fleet.tokens["h000"], args.records) for _ in range(args.runs)]
    print(f"{args.records} records; {args.runs} runs (a fresh phone each); median [min-max]")
    for phase in ("first", "idle"):
        seconds = [r[f"{phase}_s"] for r in runs]
        kib = [r[f"{phase}_bytes"] / 1024 for r in runs]
        print(
            f"{phase:>5} sync: {statistics.median(seconds):.2f} s [{min(seconds):.2f}-{max(seconds):.2f}], "
            f"{statistics.median(kib):,.1f} KiB in {runs[0][f'{phase}_requests']} requests"
        )


if __name__ == "__main__":
    asyncio.run(main())
