"""docs/GETTING_STARTED.md runs as written, against a real server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from pathlib import Path

from .helpers import World

PAGE = Path(__file__).resolve().parent.parent / "docs" / "GETTING_STARTED.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)


def _run(block: str, world: World, tmp_path: Path) -> str:
    code = block.replace('"http://127.0.0.1:8000"', repr(world.base_url)).replace('"lamson-h01.sqlite"', repr(str(tmp_path / "h01.sqlite")))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(PAGE), "exec"), {"TOKEN": world.officer_a.token})
    return out.getvalue()


async def test_the_getting_started_page_runs_against_a_server_and_says_what_it_did(world: World, tmp_path: Path) -> None:
    first, second = _python_blocks()
    printed = await asyncio.to_thread(_run, first, world, tmp_path)  # the page's asyncio.run needs a thread of its own
    assert "refused: premises.rooms" in printed
    assert "3 records waiting" in printed
    assert "pushed 3, pulled 3, rejected 0" in printed
    assert "1 fire-safety checks in June" in printed
    records = {r["collection"]: r for r in await world.supervisor.pull_all()}
    assert records["violations"]["fields"]["status"] == "fined" and len(records["violations"]["fields"]["photos"]) == 1
    # an officer may not create a ward: the error carries the server's status and details
    printed = await asyncio.to_thread(_run, second, world, tmp_path)
    assert printed.startswith("403 ")
