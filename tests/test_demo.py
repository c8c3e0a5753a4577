"""``patrol-sync demo`` runs the DOMAIN.md scenario end to end and prints the ward's figures."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "110", "PYTHONWARNINGS": "error"}
    return subprocess.run([sys.executable, "-m", "sync_server", "demo", *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("seed", ["2023", "7"])
def test_the_demo_prints_the_wards_figures_whatever_the_sync_order(seed: str) -> None:
    done = run("--seed", seed)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "84 premises checked" in out
    assert "47 violations recorded" in out
    assert re.search(r"fire_safety_groups\s*│\s*2023\s*│\s*20\s*│\s*64\s*│\s*320 %", out)
    assert re.search(r"public_fire_points\s*│\s*2023\s*│\s*5\s*│\s*23\s*│\s*460 %", out)
    assert re.search(r"boarding_house\s*│\s*58\b", out)  # mostly boarding houses


def test_the_demo_shows_collisions_skew_retries_and_ends_with_every_device_matching() -> None:
    out = run().stdout
    conflicts = re.findall(r"│ (c-\d+) +│ \S+ +│ (\S+) +│ (\S+) +│", out)
    assert sorted((field, kind) for _, field, kind in conflicts) == [
        ("-", "delete"), ("fine_vnd", "concurrent"), ("owner_phone", "concurrent"), ("status", "rank")
    ]
    assert "set 1,500,000 ₫" in out
    assert "clock_skew: device lamson-h03 sent stamps 86400 s ahead" in out
    assert re.search(r"lamson-h03\s*│\s*patrol-sync-py \S+\s*│\s*0\s*│\s*\+24 h", out)  # fleet health sees the clock
    assert "2 retries" in out  # the flaky handheld's lost answer and 503
    assert len(re.findall(r"│ (?:lamson-h0\d|sup-laptop) +│ \d+ +│ 0 +│ yes", out)) == 4
    assert "all devices match." in out
    flat = " ".join(out.split())  # rich wraps long lines
    assert "Evidence: 9 violation photos attached on the handhelds, 9 uploaded after their records, 0 missing on the server." in flat
    assert re.search(r"The supervisor opens the photo of violation \S+: [\d,]+ bytes, sha256:[0-9a-f]{12}…, checksum verified", flat)
