"""Reliability fixtures: stores, servers in processes of their own (``_process``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from ._process import ServerProcess


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[type[ServerProcess]]:
    """Builds ServerProcess objects that are all stopped at the end of the test."""
    made: list[ServerProcess] = []

    class Tracked(ServerProcess):
        def __init__(self, db_url: str, log_path: Path | None = None, env: dict[str, str] | None = None) -> None:
            super().__init__(db_url, log_path or tmp_path / f"server-{len(made)}.log", env)
            made.append(self)

    yield Tracked
    for server in made:
        server.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "settings(**values): server settings for this test (tests/reliability)")
