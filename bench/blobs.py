"""Attachments: upload and download throughput of 100 photos of 2 MiB each.

    python bench/blobs.py                          # 100 photos x 2 MiB, SQLite store, blobs beside it
    python bench/blobs.py --photos 100 --mib 2 --concurrency 1,4

- **raw HTTP**: ``PUT /v1/blobs/{id}`` of each photo (random bytes: photos do not
  compress), then the same again (already stored: the server hashes the body and
  writes nothing), then ``GET`` of each, hash checked; with 1 and 4 requests at once.
- **SDK**: one handheld keeps the 100 photos, names them in 100 violations and
  ``sync()``s (uploads before the push; photos above ``blob_chunk_bytes`` would go
  in resumable chunks: ``--chunk-kib``); another device ``get_blob``s each one
  (ranges of ``blob_chunk_bytes``, hash checked, kept in its SQLite store).

The server runs in its own process (``patrol-sync serve``); the clients run here.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._harness import running_server  # noqa: E402
from client_sdk import AsyncPatrolClient, new_id  # noqa: E402
from schemas import Violation  # noqa: E402

MiB = 1024 * 1024


def blob_id(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def _each(concurrency: int, items: list[bytes], work: object) -> float:
    queue = list(items)
    started = time.perf_counter()

    async def worker() -> None:
        while queue:
            await work(queue.pop())  # type: ignore[operator]

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def raw(url: str, token: str, reader: str, photos: list[bytes], concurrency: int) -> dict[str, float]:
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120, limits=limits) as http, \
            httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {reader}"}, timeout=120, limits=limits) as other:
        statuses: list[int] = []

        async def put(data: bytes) -> None:
            response = await http.put(f"/v1/blobs/{blob_id(data)}", content=data, headers={"Content-Type": "application/octet-stream"})
            statuses.append(response.status_code)

        upload_s = await _each(concurrency, photos, put)
        assert set(statuses) <= {200, 201}, set(statuses)
        statuses.clear()
        again_s = await _each(concurrency, photos, put)
        assert set(statuses) == {200}, set(statuses)
        # name them (a violation each), so that the ward may read them
        ts = f"{time.time_ns() // 1_000_000:013d}-0000-h000"
        changes = [
            {"collection": "violations", "id": new_id(), "fields": {
                "ward_id": {"value": "lam-son", "ts": ts}, "check_id": {"value": "c", "ts": ts}, "premises_id": {"value": "p", "ts": ts},
                "category": {"value": "fire_safety", "ts": ts}, "status": {"value": "open", "ts": ts}, "photos": {"add": [blob_id(p)], "ts": ts}}}
            for p in photos
        ]
        answer = await http.post("/v1/sync/push", json={"device_id": "h000", "changeset_id": new_id(), "changes": changes})
        answer.raise_for_status()

        async def get(data: bytes) -> None:
            response = await other.get(f"/v1/blobs/{blob_id(data)}")
            assert response.status_code == 200 and hashlib.sha256(response.content).digest() == hashlib.sha256(data).digest()

        download_s = await _each(concurrency, photos, get)
    return {"upload_s": upload_s, "again_s": again_s, "download_s": download_s}


async def sdk(url: str, fleet_tokens: dict[str, str], photos: list[bytes], tmp: Path, chunk: int) -> dict[str, float]:
    async with AsyncPatrolClient(url, token=fleet_tokens["h002"], device_id="h002", user_id="u-002", path=tmp / "h002.db", blob_chunk_bytes=chunk) as h:
        async with h.batch():
            for data in photos:
                photo = await h.put_blob(data)
                await h.create(Violation(id=new_id(), ward_id="lam-son", check_id="c", premises_id="p", category="fire_safety", status="open", photos=[photo]))
        started = time.perf_counter()
        report = await h.sync(pull=False)
        upload_s = time.perf_counter() - started
        assert report.blobs == len(photos) and report.pushed == len(photos), report
    async with AsyncPatrolClient(url, token=fleet_tokens["h003"], device_id="h003", user_id="u-003", path=tmp / "h003.db", blob_chunk_bytes=chunk) as r:
        started = time.perf_counter()
        for data in photos:
            assert await r.get_blob(blob_id(data)) == data
        download_s = time.perf_counter() - started
    return {"upload_s": upload_s, "download_s": download_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--mib", type=float, default=2.0, help="size of each photo")
    parser.add_argument("--concurrency", default="1,4", help="requests at once for the raw runs")
    parser.add_argument("--chunk-kib", type=int, default=4096, help="the SDK's blob_chunk_bytes (photos above it go up in chunks)")
    parser.add_argument("--db", default=None, help="postgresql://... (blobs then in a temporary folder)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    size = int(args.mib * MiB)
    total_mib = args.photos * size / MiB
    results: dict[str, object] = {"photos": args.photos, "photo_bytes": size}
    with tempfile.TemporaryDirectory(prefix="patrol-blob-bench-") as tmp:
        env = {"PATROL_SYNC_BLOB_DIR": str(Path(tmp) / "blobs")} if args.db else None
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            photos = [os.urandom(size) for _ in range(args.photos)]  # fresh bytes each run: nothing stored yet
            with running_server(args.db, extra_env=env) as fleet:
                fleet.setup(4)
                got = asyncio.run(raw(fleet.url, fleet.tokens["h000"], fleet.tokens["h001"], photos, concurrency))
            results[f"raw_c{concurrency}"] = {k: round(total_mib / v, 1) for k, v in got.items()}
        photos = [os.urandom(size) for _ in range(args.photos)]
        with running_server(args.db, extra_env=env) as fleet:
            fleet.setup(4)
            got = asyncio.run(sdk(fleet.url, fleet.tokens, photos, Path(tmp), args.chunk_kib * 1024))
        results["sdk"] = {k: round(total_mib / v, 1) for k, v in got.items()}
    if args.json:
        print(json.dumps(results))
        return
    print(f"{args.photos} photos of {size / MiB:g} MiB ({total_mib:g} MiB), MiB/s (photos/s = MiB/s / {size / MiB:g}):")
    for name, figures in results.items():
        if isinstance(figures, dict):
            print(f"  {name:<8} " + "   ".join(f"{k.removesuffix('_s')} {v:>7} MiB/s" for k, v in figures.items()))


if __name__ == "__main__":
    main()
