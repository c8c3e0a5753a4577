"""Fixtures: a real server on loopback (uvicorn) over a fresh store per test.

Every test that touches a store runs once per store (``sqlite``, ``postgresql``):
``store_kind`` is the one parameter, ``new_db_url`` makes fresh databases of that
kind, and ``db_url`` (under ``settings``, ``server``, ``world``) is one of them.
PostgreSQL comes from ``tests/storedb.py`` (a throwaway cluster, or
``PATROL_SYNC_TEST_PG``); without one, the ``postgresql`` runs are skipped.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from sync_server.loopback import LoopbackServer
from sync_server.settings import Settings

from . import budget, storedb  # noqa: F401  (budget: Hypothesis' profiles, loaded before any test module)
from .helpers import World, bootstrap_admin, make_world

STORES = ["sqlite", "postgresql"]


def _temporary_files_in_memory() -> None:
    """The tests' stores, blobs and PostgreSQL cluster on tmpfs (``/dev/shm``), where the
    machine has one with room and ``TMPDIR`` does not say otherwise: SQLite's
    ``synchronous=FULL`` syncs every commit, a few milliseconds each on a VM's disk, tens
    of thousands of times a run. No test is about the disk surviving a power cut (the
    crash test kills the process, whose committed pages the kernel keeps either way)."""
    shm = "/dev/shm"
    if os.environ.get("TMPDIR") or not os.path.isdir(shm) or not os.access(shm, os.W_OK):
        return
    room = os.statvfs(shm)
    if room.f_bavail * room.f_frsize >= 2 << 30:
        os.environ["TMPDIR"] = shm  # the servers and tools the tests start, too
        tempfile.tempdir = None  # read TMPDIR again


_temporary_files_in_memory()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[storedb.Cluster | None]:
    """Started on first use, stopped at the end of the session."""
    with contextlib.ExitStack() as stack:
        try:
            cluster = stack.enter_context(storedb.start_cluster())
        except storedb.Unavailable as exc:
            _unavailable.append(str(exc))
            cluster = None
        yield cluster


_unavailable: list[str] = []


@pytest.fixture
def postgres(request: pytest.FixtureRequest) -> storedb.Cluster:
    cluster: storedb.Cluster | None = request.getfixturevalue("pg_cluster")
    if cluster is None:
        pytest.skip(f"PostgreSQL is not available: {_unavailable[-1] if _unavailable else 'see tests/storedb.py'}")
    return cluster


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def new_db_url(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[], str]]:
    """Makes fresh, empty stores of this test's kind (dropped after the test)."""
    made: list[str] = []
    cluster: storedb.Cluster | None = request.getfixturevalue("postgres") if store_kind == "postgresql" else None

    def make() -> str:
        if cluster is None:
            url = f"sqlite:///{tmp_path / f'patrol-sync-{len(made)}.db'}"
        else:
            url = cluster.new_database()
        made.append(url)
        return url

    yield make
    if cluster is not None:
        for url in made:
            cluster.drop_database(url)


@pytest.fixture
def db_url(new_db_url: Callable[[], str]) -> str:
    return new_db_url()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """SQLite keeps its blobs beside the file; PostgreSQL gets a folder (the shared volume).

    The tests stamp their edits in June 2023 (``helpers.BASE_MS``), long before their
    devices are registered: the registration bound of stamps is off here, and on in
    ``tests/reliability/test_hardening.py``, which tests it."""
    return Settings(
        db_url=db_url, blob_dir="" if db_url.startswith("sqlite:") else str(tmp_path / "blobs"), stamps_after_registration=False
    )


@pytest.fixture
async def admin_token(settings: Settings) -> str:
    return await bootstrap_admin(settings.db_url)


@pytest.fixture
async def server(settings: Settings, admin_token: str) -> AsyncIterator[LoopbackServer]:
    async with LoopbackServer(settings) as running:
        yield running


@pytest.fixture
async def world(server: LoopbackServer, admin_token: str) -> AsyncIterator[World]:
    w = await make_world(server.url, admin_token)
    yield w
    for api in w.all():
        await api.aclose()


@pytest.fixture
def threaded_server(settings: Settings, admin_token: str) -> Iterator[str]:
    """For the blocking client, which blocks the test: a server on a thread of its own."""
    with LoopbackServer(settings) as running:
        yield running.url


#: Under pytest-xdist (``make test`` runs two workers where it is installed, ``--dist
#: loadgroup``) each file stays whole on one worker, so a module's server and Chromium
#: start once; these files, which load the machine or time it, share one worker and
#: run one after another there.
HEAVY = {
    "tests/reliability/test_crash.py", "tests/reliability/test_load.py", "tests/reliability/test_schemathesis.py",
    "tests/reliability/test_backpressure.py", "tests/reliability/test_backup.py", "tests/test_workers.py",
    "tests/sdk/test_link.py", "tests/app/test_link.py", "tests/test_wire.py",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not getattr(config.option, "numprocesses", None):
        return
    root = Path(str(config.rootpath))
    for item in items:
        path = item.path.relative_to(root).as_posix()
        item.add_marker(pytest.mark.xdist_group("heavy" if path in HEAVY else path))
