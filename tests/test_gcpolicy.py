"""The serving process's garbage-collection policy (``sync_server/gcpolicy.py``, issue 16)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sync_server.gcpolicy import THRESHOLDS

_PROBE = "import gc; from sync_server.asgi import app_factory; app_factory(); print(gc.get_threshold(), gc.get_freeze_count() > 0)"


def test_the_served_app_freezes_its_start_up_objects_and_raises_the_young_threshold(tmp_path: Path) -> None:
    env = {**os.environ, "PATROL_SYNC_DB_URL": f"sqlite:///{tmp_path / 'gc.db'}"}
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split("\n")[0] == f"{THRESHOLDS} True"


def test_building_an_app_in_a_test_process_keeps_the_default_collector(tmp_path: Path) -> None:
    probe = "import gc; from sync_server.app import create_app; from sync_server.settings import Settings; "
    probe += f"create_app(Settings(db_url='sqlite:///{tmp_path / 'gc.db'}')); print(gc.get_threshold(), gc.get_freeze_count())"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split("\n")[0] == f"{(700, 10, 10)} 0"
