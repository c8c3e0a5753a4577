"""Browser tests of the console: one server (on a thread, SQLite) and one Chromium per
module, a fresh browser context per test. Debian's Chromium, driven by Playwright."""

from __future__ import annotations

import asyncio
import concurrent.futures
import shutil
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn

from sync_server.app import create_app
from sync_server.services import identity
from sync_server.services.passwords import hash_password
from sync_server.settings import Settings
from sync_server.stores import store_for

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class ThreadedServer:
    """A real server on loopback, on a thread of its own (the browser tests block)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, name="console-test-server", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to its end on a thread of its own: Playwright's blocking API keeps
    an event loop running on the test's thread."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def bootstrap(db_url: str) -> str:
    async def run() -> str:
        store = store_for(db_url)
        await store.open()
        try:
            return await identity.bootstrap(store)
        finally:
            await store.close()

    return run_async(run)


def set_password(db_url: str, user: str, password: str) -> None:
    async def run() -> None:
        store = store_for(db_url)
        await store.open()
        try:
            await store.set_password(user, hash_password(password))
        finally:
            await store.close()

    run_async(run)


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
