"""Load: many handhelds syncing at once, for a bounded time, on loopback.

    python bench/load.py                          # 200 devices, 30 s, SQLite
    python bench/load.py --devices 200 --seconds 10 --json load.json
    python bench/load.py --burst                  # no pauses, low server limits: load is shed
    python bench/load.py --db postgresql://...    # a fresh database on that server

Each simulated device (an asyncio task with a keep-alive connection of its own) loops
until the time is up: push a change set (a new check, and an edit of one of its
ward's shared premises), pull from its cursor until caught up, pause a random
0-``--pause`` seconds. The server runs in its own process (``patrol-sync serve``).

Answers are counted by kind: ``ok`` (200), ``shed`` (429/503 with Retry-After:
the device waits that long and sends the same request again, as the SDK does) and
``errors`` (anything else: another status, a 503 without Retry-After, a transport
error, a timeout). The figures (p50/p99 latency of pushes and pulls, throughput,
counts) are printed, and written as JSON with ``--json``; beside the latencies the
devices saw, the server's own (from its ``/metrics`` histogram) tell how much of
the time was queueing in the load driver itself.

The devices speak HTTP/1.1 over plain asyncio streams, not httpx: 200 httpx
clients in one process cost more CPU than the server they load (measured: the
driver at 2.5x the server's CPU), and on a 2-core machine that time is taken
from the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import running_server  # noqa: E402

WARDS = ("lam-son", "phu-son")
SHARED_PER_WARD = 20


def stamp(node: str) -> str:
    return f"{time.time_ns() // 1_000_000:013d}-0000-{node}"


class Stats:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = {"push": [], "pull": []}
        self.outcomes: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.changes = 0

    def figures(self, seconds: float, devices: int) -> dict[str, Any]:
        def pct(values: list[float], q: float) -> float | None:
            if not values:
                return None
            ordered = sorted(values)
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)

        return {
            "devices": devices,
            "seconds": round(seconds, 1),
            "requests": sum(self.outcomes.values()),
            "ok": self.outcomes["ok"],
            "shed": self.outcomes["shed"],
            "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors),
            "pushes": len(self.latency["push"]),
            "pulls": len(self.latency["pull"]),
            "changes_pushed": self.changes,
            "push_ms": {"p50": pct(self.latency["push"], 0.5), "p99": pct(self.latency["push"], 0.99), "max": pct(self.latency["push"], 1.0)},
            "pull_ms": {"p50": pct(self.latency["pull"], 0.5), "p99": pct(self.latency["pull"], 0.99), "max": pct(self.latency["pull"], 1.0)},
            "pushes_per_s": round(len(self.latency["push"]) / seconds, 1),
            "pulls_per_s": round(len(self.latency["pull"]) / seconds, 1),
        }


class Connection:
    """One device's keep-alive HTTP/1.1 connection (answers carry Content-Length)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, method: str, target: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        try:
            async with asyncio.timeout(30):
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
                await writer.drain()
                status = int((await reader.readline()).split(b" ", 2)[1])
                answer: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    answer[name.strip().lower()] = value.strip()
                content = await reader.readexactly(int(answer.get("content-length", "0")))
        except BaseException:
            self.close()
            raise
        if answer.get("connection", "").lower() == "close":
            self.close()
        return status, answer, content

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def call(conn: Connection, stats: Stats, kind: str, until: float, method: str, target: str, headers: dict[str, str], body: bytes = b"") -> bytes | None:
    """One request, sent again after each 429/503 with Retry-After; None on error or time up."""
    while time.monotonic() < until:
        started = time.perf_counter()
        try:
            status, answer, content = await conn.request(method, target, headers, body)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError, IndexError) as exc:
            stats.errors[type(exc).__name__] += 1
            return None
        elapsed = time.perf_counter() - started
        if status in (429, 503) and answer.get("retry-after", "").isdigit():
            stats.outcomes["shed"] += 1
            await asyncio.sleep(min(float(answer["retry-after"]), 5) * random.uniform(0.5, 1.5))
            continue
        if status != 200:
            stats.errors[f"HTTP {status}"] += 1
            return None
        stats.outcomes["ok"] += 1
        stats.latency[kind].append(elapsed)
        return content
    return None


async def device(url: str, name: str, token: str, ward: str, until: float, pause: float, stats: Stats, rng: random.Random) -> None:
    parts = urlsplit(url)
    conn = Connection(parts.hostname or "127.0.0.1", parts.port or 80)
    push_headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    pull_headers = {"Authorization": f"Bearer {token}"}
    cursor = ""
    n = 0
    await asyncio.sleep(rng.uniform(0, min(pause, 1.0)))  # handhelds do not all start in the same millisecond
    try:
        while time.monotonic() < until:
            n += 1
            ts = stamp(name)
            shared = f"{ward}-p{rng.randrange(SHARED_PER_WARD)}"
            changes = [
                {"collection": "checks", "id": uuid.uuid4().hex, "fields": {
                    "ward_id": {"value": ward, "ts": ts}, "premises_id": {"value": shared, "ts": ts},
                    "kind": {"value": "residence", "ts": ts}, "started_at": {"value": "2023-06-01T08:00:00+07:00", "ts": ts}}},
                {"collection": "premises", "id": shared, "fields": {"name": {"value": f"{shared} ({name} #{n})", "ts": ts}}},
            ]
            body = msgspec.json.encode({"device_id": name, "changeset_id": f"{name}-{n}", "changes": changes})
            if await call(conn, stats, "push", until, "POST", "/v1/sync/push", push_headers, body) is not None:
                stats.changes += len(changes)
            while time.monotonic() < until:
                content = await call(conn, stats, "pull", until, "GET", f"/v1/sync/pull?limit=200&cursor={cursor}", pull_headers)
                if content is None:
                    break
                page = msgspec.json.decode(content)
                cursor = page["cursor"]
                if not page["more"]:
                    break
            await asyncio.sleep(rng.uniform(0, pause))
    finally:
        conn.close()


async def seed(url: str, admin_token: str) -> None:
    """The shared premises each ward's devices edit."""
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=60) as http:
        ts = stamp("admin-cli")
        changes = [
            {"collection": "premises", "id": f"{ward}-p{i}", "fields": {
                "ward_id": {"value": ward, "ts": ts}, "name": {"value": f"Nhà trọ {i}", "ts": ts}, "kind": {"value": "boarding_house", "ts": ts}}}
            for ward in WARDS for i in range(SHARED_PER_WARD)
        ]
        response = await http.post("/v1/sync/push", json={"device_id": "admin-cli", "changeset_id": "seed", "changes": changes})
        response.raise_for_status()


def server_quantiles(metrics: str, route: str, method: str) -> dict[str, float | None]:
    """p50/p99 (ms) from the server's latency histogram, interpolated within buckets."""
    buckets: list[tuple[float, float]] = []
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name.endswith("_bucket") and sample.labels.get("route") == route and sample.labels.get("method") == method:
                buckets.append((float(sample.labels["le"]), sample.value))
    buckets.sort()
    if not buckets or not buckets[-1][1]:
        return {"p50": None, "p99": None}
    total = buckets[-1][1]

    def quantile(q: float) -> float:
        lower_bound, lower_count = 0.0, 0.0
        for bound, count in buckets:
            if count >= q * total:
                if bound == float("inf"):
                    return lower_bound * 1000
                share = (q * total - lower_count) / max(count - lower_count, 1e-9)
                return round((lower_bound + share * (bound - lower_bound)) * 1000, 1)
            lower_bound, lower_count = bound, count
        return lower_bound * 1000

    return {"p50": quantile(0.5), "p99": quantile(0.99)}


async def drive(url: str, admin_token: str, tokens: dict[str, str], seconds: float, pause: float, seed_rng: int = 1) -> dict[str, Any]:
    await seed(url, admin_token)
    stats = Stats()
    rng = random.Random(seed_rng)
    started = time.monotonic()
    until = started + seconds
    names = sorted(tokens)
    await asyncio.gather(*(
        device(url, name, tokens[name], WARDS[i % len(WARDS)], until, pause, stats, random.Random(rng.random()))
        for i, name in enumerate(names)
    ))
    elapsed = time.monotonic() - started
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        alive = (await http.get("/healthz")).status_code == 200
        metrics = (await http.get("/metrics")).text
    figures = stats.figures(elapsed, len(tokens))
    figures["server_alive_after"] = alive
    figures["server_push_ms"] = server_quantiles(metrics, "/v1/sync/push", "POST")
    figures["server_pull_ms"] = server_quantiles(metrics, "/v1/sync/pull", "GET")
    figures["server_shed"] = {line.split('"')[1]: float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith("patrol_sync_http_shed_total{")}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--pause", type=float, default=1.0, help="each device pauses 0 to this many seconds between syncs")
    parser.add_argument("--burst", action="store_true", help="no pauses, and the server's limits set low (max_inflight 16, queue 200 changes)")
    parser.add_argument("--db", default=None, help="a postgresql:// URL (default: a temporary SQLite file)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    env: dict[str, str] = {}
    pause = args.pause
    if args.burst:
        env = {"PATROL_SYNC_MAX_INFLIGHT": "16", "PATROL_SYNC_MAX_QUEUED_CHANGES": "200"}
        pause = 0.0
    with running_server(args.db, extra_env=env) as fleet:
        fleet.setup(args.devices, wards=WARDS)
        tokens = {name: token for name, token in fleet.tokens.items() if name != "reader"}
        figures = asyncio.run(drive(fleet.url, fleet.admin_token, tokens, args.seconds, pause))
    figures["mode"] = "burst" if args.burst else "steady"
    figures["store"] = "postgresql" if args.db else "sqlite"
    print(json.dumps(figures, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if figures["errors"] or not figures["server_alive_after"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
