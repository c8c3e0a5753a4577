"""The SDK's sync, beside raw HTTP on the same server in the same run.

    python bench/sdk_push_pull.py                       # push 10,000 edits, pull 100,000 records
    python bench/sdk_push_pull.py --push 10000 --pull 100000 --changes 500

- **push**: one device holds 10,000 pending edits (new check records, made offline
  before the clock starts) and pushes them with one ``sync()`` (change sets of
  ``--changes``). Beside it, raw HTTP: the same device's records, bodies encoded
  before the clock starts, posted one change set after another.
- **pull**: the server holds 100,000 records (pushed raw by 50 devices); a device
  with an empty store pulls them all with one ``sync()``, into its SQLite file.
  Beside it, raw HTTP: the same pages fetched and decoded into the schema's structs
  (``bench/push_pull.py``'s pull), kept nowhere.

The server runs in its own process (``patrol-sync serve``); the SDK runs here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import running_server  # noqa: E402
from _workloads import WORKLOADS  # noqa: E402
from _workloads import light as check_change  # noqa: E402
from push_pull import DEVICES, bodies, pull_all, push_all  # noqa: E402

from client_sdk import AsyncPatrolClient  # noqa: E402
from schemas import Check  # noqa: E402


async def sdk_push(url: str, token: str, total: int, changes: int, store: Path) -> float:
    async with AsyncPatrolClient(url, token=token, device_id="h000", user_id="u-000", path=store, max_changes=changes) as device:
        async with device.batch():
            for i in range(total):
                c = check_change("h000", i)
                fields = {k: v["value"] for k, v in c["fields"].items()}
                await device.create(msgspec.convert({"id": c["id"], **fields}, Check))
        start = time.perf_counter()
        report = await device.sync(pull=False)
        elapsed = time.perf_counter() - start
    assert report.pushed == total and report.rejected == 0, report
    return elapsed


async def raw_push(url: str, token: str, total: int, changes: int) -> float:
    records = [check_change("h001", i) for i in range(total)]
    payloads = [
        msgspec.json.encode({"device_id": "h001", "changeset_id": str(uuid.uuid4()), "changes": records[s : s + changes]})
        for s in range(0, total, changes)
    ]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        start = time.perf_counter()
        for body in payloads:
            (await http.post("/v1/sync/push", content=body, headers=headers)).raise_for_status()
        return time.perf_counter() - start


async def sdk_pull(url: str, token: str, store: Path) -> tuple[float, int]:
    async with AsyncPatrolClient(url, token=token, device_id="reader", user_id="u-reader", path=store) as device:
        start = time.perf_counter()
        report = await device.sync(push=False)
        return time.perf_counter() - start, report.pulled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--push", type=int, default=10_000, help="pending edits one device pushes")
    parser.add_argument("--pull", type=int, default=100_000, help="records an empty device pulls")
    parser.add_argument("--changes", type=int, default=500, help="changes per change set")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="patrol-sdk-bench-") as tmp, running_server() as fleet:
        fleet.setup(DEVICES)
        sdk_push_s = asyncio.run(sdk_push(fleet.url, fleet.tokens["h000"], args.push, args.changes, Path(tmp) / "h000.db"))
        raw_push_s = asyncio.run(raw_push(fleet.url, fleet.tokens["h001"], args.push, args.changes))
        rest = args.pull - 2 * args.push  # the two pushes above count towards the records to pull
        if rest > 0:
            asyncio.run(push_all(fleet.url, fleet.tokens, bodies(rest, WORKLOADS["light"])))
        raw_pull_s, raw_pulled = asyncio.run(pull_all(fleet.url, fleet.tokens["reader"]))
        sdk_pull_s, sdk_pulled = asyncio.run(sdk_pull(fleet.url, fleet.tokens["reader"], Path(tmp) / "reader.db"))
    assert sdk_pulled == raw_pulled, (sdk_pulled, raw_pulled)
    result = {
        "push_edits": args.push,
        "changes_per_set": args.changes,
        "sdk_push_per_s": round(args.push / sdk_push_s),
        "raw_push_per_s": round(args.push / raw_push_s),
        "pull_records": sdk_pulled,
        "sdk_pull_per_s": round(sdk_pulled / sdk_pull_s),
        "raw_pull_per_s": round(raw_pulled / raw_pull_s),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"push {args.push:>7} edits: SDK {result['sdk_push_per_s']:>7}/s ({sdk_push_s:.2f} s)   raw HTTP {result['raw_push_per_s']:>7}/s "
        f"({raw_push_s:.2f} s)   SDK/raw time {sdk_push_s / raw_push_s:.2f}x"
    )
    print(
        f"pull {sdk_pulled:>7} records: SDK {result['sdk_pull_per_s']:>7}/s ({sdk_pull_s:.2f} s)   raw HTTP {result['raw_pull_per_s']:>7}/s "
        f"({raw_pull_s:.2f} s)   SDK/raw time {sdk_pull_s / raw_pull_s:.2f}x"
    )


if __name__ == "__main__":
    main()
