"""Console page render time on a large store (issue 14).

    python bench/console.py                          # 1,000,000 checks, 500,000 violations
    python bench/console.py --checks 100000 --violations 50000

The store is bench/supervision.py's (30 wards, 2,000 premises each, filled through the
store's own write path). The server runs as `patrol-sync serve`; a console session signs
in as the admin (every ward) and each page is asked 15 times: median and 95th percentile
of the whole HTML answer, template rendering included.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import running_server  # noqa: E402
from supervision import WARDS, fill, timed  # noqa: E402

PASSWORD = "bench-console-2023"

PAGES = [
    ("overview, one ward-month", "/console/", {"ward": "ward-07", "from": "2023-06-01", "to": "2023-06-30"}),
    ("overview, one ward, all time", "/console/", {"ward": "ward-07"}),
    ("overview, every ward, all time", "/console/", {}),
    ("violations list, one ward, page 1", "/console/records/violations", {"ward": "ward-07"}),
    ("violations list, one ward-month, fined", "/console/records/violations", {"ward": "ward-07", "from": "2023-06-01", "to": "2023-06-30", "status": "fined"}),
    ("violations list, every ward, page 1", "/console/records/violations", {}),
    ("checks list, one ward, page 1", "/console/records/checks", {"ward": "ward-07"}),
    ("premises list, one ward, page 1", "/console/records/premises", {"ward": "ward-07"}),
]


def sign_in(http: httpx.Client) -> None:
    form = http.get("/console/signin")
    match = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert match is not None
    answer = http.post("/console/signin", data={"csrf": match.group(1), "user": "admin", "password": PASSWORD, "next": "/console/"})
    assert answer.status_code == 303, answer.text[:300]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checks", type=int, default=1_000_000)
    parser.add_argument("--violations", type=int, default=500_000)
    parser.add_argument("--premises-per-ward", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="patrol-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'big.db'}"
        seconds = asyncio.run(fill(url, args.checks, args.violations, args.premises_per_ward))
        total = args.checks + args.violations + args.premises_per_ward * len(WARDS)
        size_mb = os.path.getsize(Path(tmp) / "big.db") / 1e6
        print(f"filled {total:,} records in {seconds:.0f} s ({total / seconds:,.0f}/s); store {size_mb:,.0f} MB", flush=True)
        with running_server(url) as fleet, httpx.Client(base_url=fleet.url, timeout=120, follow_redirects=False) as http:
            subprocess.run([sys.executable, "-m", "sync_server", "admin", "user", "password", "admin", "--db", url], input=PASSWORD + "\n", text=True, check=True, capture_output=True)
            sign_in(http)
            print(f"{'page':<42} {'median ms':>10} {'p95 ms':>8} {'bytes':>8}")
            for name, path, params in PAGES:
                median, p95, size = timed(http, path, params)
                print(f"{name:<42} {median:>10.1f} {p95:>8.1f} {size:>8}", flush=True)
            page = http.get("/console/records/violations", params={"ward": "ward-07"}).text
            cursor = re.search(r'rel="next" href="[^"]*cursor=([^"&]+)', page)
            if cursor:
                median, p95, size = timed(http, "/console/records/violations", {"ward": "ward-07", "cursor": httpx.QueryParams(f"c={cursor.group(1)}")["c"]})
                print(f"{'violations list, one ward, page 2':<42} {median:>10.1f} {p95:>8.1f} {size:>8}")


if __name__ == "__main__":
    main()
