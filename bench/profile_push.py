"""Profile the server while it takes pushes: py-spy on the server process, stage timers on.

    python bench/profile_push.py --records 10000 --workload realistic --out /tmp/push.svg

Needs ``py-spy`` on PATH (``pip install py-spy`` into any venv: it attaches to the
server's process from outside).  Writes a flame graph (``--format speedscope`` or
``raw`` for collapsed stacks); the server prints its stage table when it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import running_server  # noqa: E402
from _workloads import WORKLOADS  # noqa: E402
from push_pull import DEVICES, bodies, push_all  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--workload", default="realistic")
    parser.add_argument("--out", default="push-profile.txt")
    parser.add_argument("--format", default="raw", help="py-spy's: flamegraph, speedscope or raw")
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    args = parser.parse_args()
    work = bodies(args.records, WORKLOADS[args.workload])
    with running_server(None, extra_env={"PATROL_STAGE_TIMERS": "1"}) as fleet:
        fleet.setup(DEVICES)
        pid = fleet.pid
        spy = subprocess.Popen([args.py_spy, "record", "--pid", str(pid), "--threads", "--rate", "250", "--format", args.format, "--output", args.out])
        time.sleep(1)
        seconds = asyncio.run(push_all(fleet.url, fleet.tokens, work))
        spy.send_signal(2)  # py-spy writes its output on SIGINT
        spy.wait(timeout=120)
    print(f"{args.records / seconds:.0f} records/s pushed; profile in {args.out}")


if __name__ == "__main__":
    main()
