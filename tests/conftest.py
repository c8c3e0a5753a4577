"""Fixtures: a real server on loopback (uvicorn) over a fresh store per test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn

from sync_server import identity
from sync_server.app import create_app
from sync_server.settings import Settings
from sync_server.stores import store_for

from .helpers import World, make_world


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'patrol-sync.db'}"


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(db_url=db_url)


@pytest.fixture
async def admin_token(settings: Settings) -> str:
    store = store_for(settings.db_url)
    await store.open()
    try:
        return await identity.bootstrap(store)
    finally:
        await store.close()


class RunningServer:
    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None]) -> None:
        self.server = server
        self.task = task
        port = server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


async def start_server(settings: Settings) -> RunningServer:
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.005)
    return RunningServer(server, task)


@pytest.fixture
async def server(settings: Settings, admin_token: str) -> AsyncIterator[RunningServer]:
    running = await start_server(settings)
    yield running
    await running.stop()


@pytest.fixture
async def world(server: RunningServer, admin_token: str) -> AsyncIterator[World]:
    w = await make_world(server.url, admin_token)
    yield w
    for api in w.all():
        await api.aclose()
