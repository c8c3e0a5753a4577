"""Load: 200 simulated handhelds syncing at once on loopback (``bench/load.py``).

Steady: each device pushes, pulls until caught up, pauses up to a second, for a
bounded time: zero errors, latencies recorded. Burst: no pauses and the server's
limits set low: the excess is shed with 429/503 and Retry-After, never an error,
and the server still answers afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .. import storedb
from ..budget import budget
from ._process import ROOT

pytestmark = pytest.mark.slow

DEVICES = 200
#: how long the devices sync: long enough for every device to sync several times
STEADY_S = budget(5, 30)
BURST_S = budget(4, 20)


def run_load(tmp_path: Path, *args: str) -> dict[str, object]:
    out = tmp_path / "load.json"
    done = subprocess.run(
        [sys.executable, "bench/load.py", "--devices", str(DEVICES), "--json", str(out), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    figures: dict[str, object] = json.loads(out.read_text())
    print(f"\nload {' '.join(args)}: {json.dumps(figures)}")
    return figures


def test_two_hundred_devices_sync_at_once_without_a_single_error(tmp_path: Path) -> None:
    figures = run_load(tmp_path, "--seconds", str(STEADY_S))
    assert figures["errors"] == 0 and figures["server_alive_after"] is True
    assert figures["pushes"] >= DEVICES and figures["pulls"] >= DEVICES  # every device synced, most several times


def test_two_hundred_devices_on_postgresql_without_a_single_error(tmp_path: Path, postgres: storedb.Cluster) -> None:
    figures = run_load(tmp_path, "--seconds", str(STEADY_S), "--db", postgres.url)
    assert figures["errors"] == 0 and figures["server_alive_after"] is True
    assert figures["pushes"] >= DEVICES


def test_a_burst_past_the_limits_is_shed_with_retry_after_and_never_errs(tmp_path: Path) -> None:
    figures = run_load(tmp_path, "--seconds", str(BURST_S), "--burst")
    assert figures["errors"] == 0 and figures["server_alive_after"] is True
    assert isinstance(figures["shed"], int) and figures["shed"] > 0
    assert figures["pushes"] >= DEVICES // 2
