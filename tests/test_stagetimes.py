"""The push path's stage timers (``sync_server/stagetimes.py``): off by default, a table when on."""

from __future__ import annotations

import os
import subprocess
import sys

_PROBE = """
from sync_server import stagetimes
stagetimes.add_records(4)
with stagetimes.timer("loop: merge"):
    sum(range(10_000))
watch = stagetimes.timer("db: COMMIT")
watch.start(); watch.stop()
stagetimes.report()
"""


def _run(value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PATROL_STAGE_TIMERS"}
    if value is not None:
        env["PATROL_STAGE_TIMERS"] = value
    return subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True, timeout=60).stderr


def test_stage_timers_print_a_table_per_record_when_switched_on() -> None:
    table = _run("1")
    assert "stage times, µs per record (4 records):" in table
    assert "loop: merge" in table and "db: COMMIT" in table and "= the process, all threads" in table


def test_stage_timers_are_silent_by_default() -> None:
    assert _run(None) == ""
