"""One hostile device floods the server; how does another device's push fare? (issue 11)

The server runs with default settings in its own process. The hostile officer
(``h000``) holds ``--slow`` pushes whose bodies never finish, each under another
spelling of his ``Authorization`` header (``"Bearer" + N spaces + token``), and
meanwhile sends pulls as fast as one connection pool allows. The other officer
(``h001``) pushes change sets of 10 records one after the other; we report the
latency of those pushes, quiet and under the flood, and what the hostile device got.

    .venv/bin/python bench/flood.py --slow 300 --pushes 200
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Fleet, running_server  # noqa: E402

_counter = itertools.count()


def _stamp(node: str) -> str:
    return f"{time.time_ns() // 1_000_000:013d}-{next(_counter) % 65536:04x}-{node}"


def _changes(node: str, n: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        ts = _stamp(node)
        values = {"ward_id": "lam-son", "name": "Nhà trọ Lê Lợi", "kind": "boarding_house"}
        out.append({"collection": "premises", "id": str(uuid.uuid4()), "fields": {k: {"value": v, "ts": ts, "base": None} for k, v in values.items()}})
    return out


async def _victim(fleet: Fleet, pushes: int) -> tuple[list[float], collections.Counter[int]]:
    latencies: list[float] = []
    statuses: collections.Counter[int] = collections.Counter()
    headers = {"Authorization": f"Bearer {fleet.tokens['h001']}"}
    async with httpx.AsyncClient(base_url=fleet.url, headers=headers, timeout=60) as http:
        for _ in range(pushes):
            body = {"device_id": "h001", "changeset_id": str(uuid.uuid4()), "changes": _changes("h001", 10)}
            started = time.perf_counter()
            response = await http.post("/v1/sync/push", json=body)
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] += 1
    return latencies, statuses


async def _slow_push(url: str, token: str, spaces: int, seen: collections.Counter[str]) -> asyncio.StreamWriter | None:
    host, port = url.removeprefix("http://").split(":")
    try:
        reader, writer = await asyncio.open_connection(host, int(port))
    except OSError:
        seen["connect failed"] += 1
        return None
    writer.write(
        (
            f"POST /v1/sync/push HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer{' ' * spaces}{token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{"
        ).encode()
    )
    await writer.drain()

    async def answer() -> None:
        try:
            line = await reader.readline()
            seen[line.split()[1].decode() if line else "closed"] += 1
        except (OSError, IndexError):
            seen["closed"] += 1

    asyncio.get_running_loop().create_task(answer())
    return writer


async def _pull_flood(fleet: Fleet, stop: asyncio.Event, seen: collections.Counter[str]) -> None:
    headers = {"Authorization": f"Bearer {fleet.tokens['h000']}"}
    async with httpx.AsyncClient(base_url=fleet.url, headers=headers, timeout=60) as http:

        async def one() -> None:
            while not stop.is_set():
                try:
                    seen[str((await http.get("/v1/sync/pull", params={"limit": 1})).status_code)] += 1
                except httpx.HTTPError:
                    seen["error"] += 1

        await asyncio.gather(*(one() for _ in range(8)))


def _figures(name: str, latencies: list[float], statuses: collections.Counter[int]) -> None:
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"{name:>8}: p50 {statistics.median(ms):7.1f} ms  p99 {p99:7.1f} ms  statuses {dict(statuses)}")


async def main(slow: int, pushes: int) -> None:
    with running_server() as fleet:
        fleet.setup(2)
        quiet = await _victim(fleet, pushes)
        _figures("quiet", *quiet)
        seen: collections.Counter[str] = collections.Counter()
        writers = [await _slow_push(fleet.url, fleet.tokens["h000"], n + 1, seen) for n in range(slow)]
        stop = asyncio.Event()
        flood = asyncio.create_task(_pull_flood(fleet, stop, seen))
        loud = await _victim(fleet, pushes)
        stop.set()
        await flood
        _figures("flooded", *loud)
        print(f"the hostile device got: {dict(sorted(seen.items()))}")
        for writer in writers:
            if writer is not None:
                writer.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=300, help="slow-body pushes the hostile device holds")
    parser.add_argument("--pushes", type=int, default=200, help="pushes of the other device, each phase")
    args = parser.parse_args()
    asyncio.run(main(args.slow, args.pushes))
