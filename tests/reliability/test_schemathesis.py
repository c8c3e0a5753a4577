"""Schemathesis against the served OpenAPI document: zero 5xx, zero answers that
break the document (status codes, content types, headers, bodies).

The run is bounded in cases, not time (examples, coverage and fuzzing phases, a few
dozen cases an operation, a fixed seed) and runs on SQLite only: the HTTP layer it probes is the
same over both stores, whose own behaviour the rest of the suite checks on both.

Two checks are left out. ``positive_data_acceptance`` (a request the document allows
must get a 2xx): some rules cannot be said in OpenAPI (a device's user, a team's ward
must exist; ``from`` must not be after ``to``; a time zone must be an IANA name), and
those requests rightly get 422; every other constraint the server checks is in the
document (``sync_server/http/openapi.py``). ``unsupported_method``: it wants 405 for every
method the document does not list, and Litestar answers OPTIONS itself (204 with
``Allow``, behind auth); other undocumented methods do get 405. And
``allow_header_conformance``: where one path has handlers in two functions (GET and
POST ``/v1/admin/wards``), Litestar's ``Allow`` names the methods of one of them only.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ..budget import budget
from ._process import ServerProcess, cli

pytestmark = pytest.mark.slow

#: generated cases per operation and phase: a budget in cases, not in wall time, so a busy
#: machine runs the same cases, only slower (a time budget made the count vary, and fall short)
EXAMPLES = budget(5, 50)


def schemathesis(url: str, token: str, report: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    st = Path(sys.executable).with_name("st")
    return subprocess.run(
        [
            str(st), "run", f"{url}/schema/openapi.json",
            "-H", f"Authorization: Bearer {token}",
            "--phases", "examples,coverage,fuzzing",
            "--checks", "all",
            "--exclude-checks", "positive_data_acceptance,unsupported_method,allow_header_conformance",
            "--max-examples", str(EXAMPLES),
            "--seed", "20260611",
            "--request-timeout", "30",
            "--report", "junit", "--report-junit-path", str(report),
            "--warnings", "off",
            "--output-truncate", "true",
            *extra,
        ],
        capture_output=True, text=True, cwd=report.parent, timeout=600,  # its cache stays out of the repo
    )


async def test_schemathesis_finds_no_5xx_and_no_answer_outside_the_document(
    sqlite_url: str, make_server: type[ServerProcess], tmp_path: Path
) -> None:
    token = cli("admin", "bootstrap", "--db", sqlite_url)
    server = make_server(sqlite_url, env={"PATROL_SYNC_MAX_WAIT_S": "0.5"})  # long polls (wait=60) end at once
    await server.start()
    done = schemathesis(server.url, token, tmp_path / "junit.xml")
    summary = done.stdout[-6000:]
    assert done.returncode == 0, summary
    generated = re.search(r"(\d+) generated", done.stdout)
    assert generated is not None and int(generated.group(1)) >= 1000, summary
    assert "Server error" not in done.stdout
    print(f"\nschemathesis: {generated.group(0)} test cases; " + " ".join(done.stdout.strip().splitlines()[-1:]))
    assert '"level": "error"' not in server.log()
