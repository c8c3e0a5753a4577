"""Syncs over a 2G link (issue 13): an officer's day, a fresh handheld, an idle sync.

    python bench/field_link.py                       # 64 kbit/s each way, 400 ms round trip, both wire options
    python bench/field_link.py --scenarios day,idle --wire new
    python bench/field_link.py --scenarios fresh --records 5000 --wire plain --kbit 1024   # bytes only, faster

The link is ``tests/linkemu.py`` (an asyncio TCP proxy on loopback: bandwidth each
way, one-way delay, optional cuts at random bytes). The server runs in its own
process (``patrol-sync serve``); setup goes straight to it, only the measured device
crosses the link. ``--wire plain`` is the SDK with every wire option off
(``WireOptions.plain()``: no gzip, full answers, full stamps, 4 MiB pages, its own
records pulled back); ``new`` its defaults; ``msgpack`` the defaults with MessagePack
answers; ``own`` the defaults but pulling its own records back; ``whole`` the
defaults but whole push answers.

- **day**: a ward with 40 premises, a colleague's 55 records (40 checks, 15
  violations) waiting; the officer records 40 checks and 15 violations, 3 of them with
  a photo of ~150 KB, then syncs once. "records" is the time and bytes until the
  records are pushed and pulled (photos go last), "whole" includes the photos.
- **fresh**: a new handheld pulls a ward of ``--records`` records.
- **idle**: a sync with nothing to push or pull.
- **revisit** (after the day's): the officer fines the day's 15 violations and syncs
  (edits of records it made: a minimal answer gives them as ``seq`` alone).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._harness import Fleet, running_server  # noqa: E402
from client_sdk import AsyncPatrolClient, RetryPolicy, SyncProgress, WireOptions, new_id  # noqa: E402
from schemas import Check, Premises, Violation  # noqa: E402
from tests.linkemu import Link  # noqa: E402

START = dt.datetime(2023, 6, 8, 1, 0, tzinfo=dt.UTC)


def _client(fleet: Fleet, device: str, url: str, path: Path, wire: WireOptions | None = None) -> AsyncPatrolClient:
    user = f"u-{int(device[1:]):03d}"
    return AsyncPatrolClient(url, token=fleet.tokens[device], device_id=device, user_id=user, path=path, wire=wire, retry=RetryPolicy(attempts=8))


async def _premises(client: AsyncPatrolClient, count: int) -> list[str]:
    ids = []
    async with client.batch():
        for n in range(count):
            p = await client.create(Premises(id=new_id(), ward_id="lam-son", name=f"Cơ sở kinh doanh số {n}", kind="shop", address=f"{n} đường Lê Lợi, phường Lam Sơn", owner_name="Nguyễn Văn An"))
            ids.append(p.id)
    return ids


async def _day(client: AsyncPatrolClient, premises: list[str], photos: int = 0) -> None:
    """40 checks and 15 violations, ``photos`` of them with a photo of ~150 KB."""
    for n, pid in enumerate(premises[:40]):
        c = await client.create(
            Check(id=new_id(), ward_id="lam-son", premises_id=pid, kind="residence", started_at=START + dt.timedelta(minutes=12 * n), notes="Kiểm tra định kỳ, chủ cơ sở có mặt")
        )
        if n < 15:
            v = await client.create(
                Violation(id=new_id(), ward_id="lam-son", check_id=c.id, premises_id=pid, category="fire_safety", status="open", description="Thiếu bình chữa cháy tại lối thoát hiểm", fine_vnd=1_500_000)
            )
            if n < photos:
                data = b"\xff\xd8\xff\xe0" + hashlib.shake_256(f"{c.id}".encode()).digest(150_000)
                await client.add(Violation, v.id, "photos", await client.put_blob(data))


def _wire(name: str) -> WireOptions:
    """``plain``: every wire option off; ``new``: the SDK's defaults; ``msgpack``: the
    defaults with MessagePack answers; ``own``: the defaults but pulling its own records
    back (``skip_own`` off, as before it existed)."""
    if name == "plain":
        return WireOptions.plain()
    if name == "msgpack":
        return WireOptions(msgpack_answers=True)
    if name == "own":
        return WireOptions(skip_own=False)
    if name == "whole":
        return WireOptions(minimal=False)
    return WireOptions()


async def _day_scenario(fleet: Fleet, tmp: Path, wire: str, link_args: dict[str, Any]) -> dict[str, Any]:
    seeder = _client(fleet, "h002", fleet.url, tmp / "seeder.db")
    officer = _client(fleet, "h000", fleet.url, tmp / "officer.db", _wire(wire))
    colleague = _client(fleet, "h001", fleet.url, tmp / "colleague.db")
    async with seeder, colleague:
        premises = await _premises(seeder, 40)
        await seeder.sync()
        async with officer:
            await officer.sync()  # the ward's premises, yesterday on the office's Wi-Fi
        await colleague.sync()
        await _day(colleague, premises)
        await colleague.sync()
    port = urllib.parse.urlsplit(fleet.url).port
    assert port is not None
    async with Link(port, **link_args) as link:
        officer = _client(fleet, "h000", link.url, tmp / "officer.db", _wire(wire))
        async with officer:
            await _day(officer, premises, photos=3)
            marks: dict[str, Any] = {}
            started = time.monotonic()

            def progress(p: SyncProgress) -> None:
                if p.phase != "blobs":
                    marks["records"] = (time.monotonic() - started, link.up_bytes, link.down_bytes, link.connections)

            report = await officer.sync(progress=progress)
            whole = (time.monotonic() - started, link.up_bytes, link.down_bytes, link.connections)
            idle_before = (link.up_bytes, link.down_bytes)
            t0 = time.monotonic()
            await officer.sync()
            idle = (time.monotonic() - t0, link.up_bytes - idle_before[0], link.down_bytes - idle_before[1])
            # the afternoon: the day's 15 violations fined (edits of records the officer made)
            for v in await officer.find(Violation):
                if v.created_by == "u-000":
                    await officer.update(Violation, v.id, status="fined", fine_vnd=2_500_000)
            revisit_before = (link.up_bytes, link.down_bytes)
            t0 = time.monotonic()
            await officer.sync()
            revisit = (time.monotonic() - t0, link.up_bytes - revisit_before[0], link.down_bytes - revisit_before[1])
    r = marks["records"]
    return {
        "scenario": "day",
        "wire": wire,
        "pushed": report.pushed,
        "pulled": report.pulled,
        "photos": report.blobs,
        "records_s": round(r[0], 1),
        "records_up_kB": round(r[1] / 1000, 1),
        "records_down_kB": round(r[2] / 1000, 1),
        "whole_s": round(whole[0], 1),
        "whole_up_kB": round(whole[1] / 1000, 1),
        "whole_down_kB": round(whole[2] / 1000, 1),
        "connections": whole[3],
        "idle_s": round(idle[0], 2),
        "idle_up_B": idle[1],
        "idle_down_B": idle[2],
        "revisit_s": round(revisit[0], 2),
        "revisit_up_B": revisit[1],
        "revisit_down_B": revisit[2],
    }


async def _fresh_scenario(fleet: Fleet, tmp: Path, wire: str, records: int, link_args: dict[str, Any]) -> dict[str, Any]:
    seeder = _client(fleet, "h002", fleet.url, tmp / "seeder.db")
    async with seeder:
        premises = await _premises(seeder, records * 2 // 5)
        await seeder.sync()
        left = records - len(premises)
        async with seeder.batch():
            for n in range(left):
                pid = premises[n % len(premises)]
                c = await seeder.create(
                    Check(id=new_id(), ward_id="lam-son", premises_id=pid, kind="residence", started_at=START + dt.timedelta(minutes=n), notes="Kiểm tra định kỳ")
                )
                del c
        await seeder.sync()
    port = urllib.parse.urlsplit(fleet.url).port
    assert port is not None
    async with Link(port, **link_args) as link:
        fresh = _client(fleet, "h001", link.url, tmp / "fresh.db", _wire(wire))
        async with fresh:
            started = time.monotonic()
            report = await fresh.sync()
            seconds = time.monotonic() - started
    return {
        "scenario": "fresh",
        "wire": wire,
        "pulled": report.pulled,
        "seconds": round(seconds, 1),
        "up_kB": round(link.up_bytes / 1000, 1),
        "down_kB": round(link.down_bytes / 1000, 1),
        "connections": link.connections,
        "cuts": link.cuts,
    }


async def _run(args: argparse.Namespace) -> None:
    link_args = {"up_kbit": args.kbit, "down_kbit": args.kbit, "rtt_ms": args.rtt_ms, "cut_mean_bytes": args.cut_mean_bytes, "seed": 1}
    for wire in args.wire.split(","):
        for scenario in args.scenarios.split(","):
            if scenario == "idle":
                continue  # measured at the end of "day"
            with running_server() as fleet, tempfile.TemporaryDirectory(prefix="patrol-link-") as tmp:
                await asyncio.to_thread(fleet.setup, 3)
                if scenario == "day":
                    result = await _day_scenario(fleet, Path(tmp), wire, link_args)
                else:
                    result = await _fresh_scenario(fleet, Path(tmp), wire, args.records, link_args)
            print(json.dumps({**result, "kbit": args.kbit, "rtt_ms": args.rtt_ms}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default="day,fresh")
    parser.add_argument("--wire", default="plain,new", help="comma-separated: plain, new, msgpack, own, whole")
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--kbit", type=float, default=64)
    parser.add_argument("--rtt-ms", type=float, default=400)
    parser.add_argument("--cut-mean-bytes", type=float, default=None)
    asyncio.run(_run(parser.parse_args()))


if __name__ == "__main__":
    main()
