"""The README's examples run as written (against a real server on loopback)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from .helpers import World

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_the_readme_has_python_examples() -> None:
    assert _python_blocks()


async def test_the_readme_sdk_example_syncs_against_a_server(world: World, tmp_path: Path) -> None:
    (block,) = [b for b in _python_blocks() if "PatrolClient(" in b]
    code = block.replace('"http://127.0.0.1:8000"', repr(world.base_url)).replace('"lamson-h01.sqlite"', repr(str(tmp_path / "h.sqlite")))
    namespace = {"TOKEN": world.officer_a.token}
    # the blocking client runs its own loop on a thread: keep this test's loop free
    await asyncio.to_thread(exec, compile(code, "README.md", "exec"), namespace)
    records = await world.supervisor.pull_all()
    assert sorted(r["collection"] for r in records) == ["checks", "premises", "violations"]
    violation = next(r for r in records if r["collection"] == "violations")
    assert violation["fields"]["status"] == "fined" and violation["fields"]["fine_vnd"] == 1_500_000
