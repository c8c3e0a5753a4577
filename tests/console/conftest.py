"""Browser tests of the console: one server (on a thread, SQLite) and one Chromium per
module, a fresh browser context per test. Debian's Chromium, driven by Playwright."""

from __future__ import annotations

import asyncio
import concurrent.futures
import shutil
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from sync_server.services import identity
from sync_server.services.passwords import hash_password
from sync_server.stores import store_for

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


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
