"""``patrol-sync demo`` runs the DOMAIN.md scenario end to end and prints the ward's figures.

The figures are read from ``demo --json`` (the story the demo tells people goes to
standard error then), never from the borders of the tables drawn for people."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "110", "PYTHONWARNINGS": "error"}
    return subprocess.run([sys.executable, "-m", "sync_server", "demo", *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)


@functools.cache
def figures(seed: str = "2023") -> dict[str, Any]:
    done = run("--seed", seed, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return msgspec.json.decode(done.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("seed", ["2023", "7"])
def test_the_demo_reports_the_wards_figures_whatever_the_sync_order(seed: str) -> None:
    summary = figures(seed)["summary"]
    assert (summary["premises_checked"], summary["violations_recorded"]) == (84, 47)
    assert summary["premises_checked_by_kind"]["boarding_house"] == 58  # mostly boarding houses
    assert sum(summary["violations_by_category"].values()) == sum(summary["violations_by_status"].values()) == 47
    targets = {t["metric"]: (t["period"], t["target"], t["achieved"], t["percent"]) for t in figures(seed)["targets"]}
    assert targets == {"fire_safety_groups": ("2023", 20, 64, 320), "public_fire_points": ("2023", 5, 23, 460)}


def test_the_demo_shows_collisions_skew_retries_and_ends_with_every_device_matching() -> None:
    shown = figures()
    assert sorted((c["field"], c["kind"]) for c in shown["conflicts"]) == [
        ("-", "delete"), ("fine_vnd", "concurrent_edit"), ("owner_phone", "concurrent_edit"), ("status", "rank")
    ]
    assert next(c["decision"] for c in shown["conflicts"] if c["field"] == "fine_vnd") == "set 1,500,000 ₫"
    skew = [w for w in shown["warnings"] if w["code"] == "clock_skew"]
    assert skew and all(w["device"] == "lamson-h03" for w in skew)
    ahead = [int(n) for w in skew for n in re.findall(r"(\d+) s ahead", w["detail"])]
    assert ahead and all(abs(n - 86_400) <= 5 for n in ahead)  # a day, give or take the run's own seconds
    fleet = {d["device_id"]: d for d in shown["fleet"]}
    assert fleet["lamson-h03"]["client"] == "patrol-sync-py" and fleet["lamson-h03"]["pending"] == 0
    assert abs(fleet["lamson-h03"]["clock_offset_ms"] - 86_400_000) < 600_000  # fleet health sees the clock
    assert sum(s["retries"] for s in shown["syncs"] if s["device"] == "lamson-h02") >= 2  # the flaky handheld's lost answer and 503
    assert [(d["device"], d["pending"], d["same"]) for d in shown["devices"]] == [
        ("lamson-h01", 0, True), ("lamson-h02", 0, True), ("lamson-h03", 0, True), ("sup-laptop", 0, True)
    ]
    assert shown["all_match"] is True
    evidence = shown["evidence"]
    assert (evidence["attached"], evidence["uploaded"], evidence["missing"]) == (9, 9, 0) and evidence["opened_bytes"] > 0


def test_the_demo_tells_its_story_to_people_and_ends_with_the_verdict() -> None:
    done = run()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all devices match." in done.stdout and "{" not in done.stdout.splitlines()[-1]
