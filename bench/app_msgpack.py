"""Would MessagePack save the handheld app bytes once compressed? JSON and MessagePack sizes.

    python bench/app_msgpack.py

A pull page of 1,000 check records as ``patrol-sync serve`` answers it (``Accept``
JSON or MessagePack), and push bodies of 1,000 and of 3 checks, each raw, gzipped
(level 6, the server's) and brotli'd (quality 5, what the server sends Chromium).
The answer decided the app's choice (bench/README.md: it stays with JSON).
"""

from __future__ import annotations

import gzip
import sys
import uuid
from pathlib import Path

import brotli  # type: ignore[import-untyped]
import httpx
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import running_server  # noqa: E402
from _workloads import light as check_change  # noqa: E402


def sizes(name: str, as_json: bytes, as_msgpack: bytes) -> None:
    for label, pack in (("gzip 6", lambda b: gzip.compress(b, 6)), ("brotli 5", lambda b: brotli.compress(b, quality=5))):
        j, m = len(pack(as_json)), len(pack(as_msgpack))
        print(f"{name:<28} {label:<8} JSON {len(as_json):>9,} -> {j:>7,}   MessagePack {len(as_msgpack):>9,} -> {m:>7,}   saved {100 * (j - m) / j:.1f} %")


def main() -> None:
    with running_server() as fleet:
        fleet.setup(devices=2)
        changes = [check_change("h001", i) for i in range(1000)]
        for count in (1000, 3):
            body = {"device_id": "h001", "changeset_id": str(uuid.uuid4()), "changes": changes[:count]}
            sizes(f"push, {count} checks", msgspec.json.encode(body), msgspec.msgpack.encode(body))
        with httpx.Client(base_url=fleet.url, headers={"Authorization": f"Bearer {fleet.tokens['h001']}"}, timeout=60) as http:
            seed = msgspec.json.encode({"device_id": "h001", "changeset_id": str(uuid.uuid4()), "changes": changes})
            http.post("/v1/sync/push", content=seed, headers={"Content-Type": "application/json"}).raise_for_status()
            pages = [
                http.get("/v1/sync/pull?limit=1000", headers={"Accept": accept, "Accept-Encoding": "identity"}).content
                for accept in ("application/json", "application/msgpack")
            ]
        sizes("pull page, 1,000 records", *pages)


if __name__ == "__main__":
    main()
