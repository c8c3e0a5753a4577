"""The databases behind the tests: a throwaway PostgreSQL cluster, fresh databases
for each test on either store, and a few direct queries that speak to both.

PostgreSQL comes from ``PATROL_SYNC_TEST_PG`` (a ``postgresql://`` URL of a server
that lets its user create databases) or, when that is unset, from a cluster this
module starts with the ``initdb``/``pg_ctl`` found on PATH or under
``/usr/lib/postgresql/*/bin``: in a temporary directory, on a free loopback port,
without fsync (tests are not about the disk), stopped at the end of the session.
PostgreSQL refuses to run as root; as root the cluster runs as the ``postgres``
user (Debian's package creates it).

Each test gets its own database, copied from a template that has been migrated
once (``CREATE DATABASE ... TEMPLATE``: ~40 ms, against ~300 ms to migrate).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from sync_server.loopback import free_port

__all__ = ["Cluster", "Unavailable", "dump", "execute", "fail_inserts_of", "rows", "run_async", "start_cluster"]

T = TypeVar("T")
ENV = "PATROL_SYNC_TEST_PG"
_TEMPLATE = "patrol_template"


class Unavailable(RuntimeError):
    """No PostgreSQL to test with: the tests on it are skipped."""


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a thread of its own (safe inside a running event loop)."""

    async def main() -> T:
        return await make()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


class Cluster:
    """A PostgreSQL server where tests may create and drop databases."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._names = itertools.count()
        self._prefix = f"t{os.getpid()}_"

    async def _admin(self, *statements: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(_with_database(self.url, "postgres"))
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    def prepare(self) -> None:
        """Create the migrated template (the store's own migrations, as a worker runs them)."""
        from sync_server.stores import store_for

        async def migrate() -> None:
            await self._admin(f"DROP DATABASE IF EXISTS {_TEMPLATE}_{os.getpid()} WITH (FORCE)", f"CREATE DATABASE {_TEMPLATE}_{os.getpid()}")
            store = store_for(_with_database(self.url, f"{_TEMPLATE}_{os.getpid()}"))
            await store.open()
            await store.close()

        run_async(migrate)

    def new_database(self, migrated: bool = True) -> str:
        name = f"{self._prefix}{next(self._names)}"
        template = f" TEMPLATE {_TEMPLATE}_{os.getpid()}" if migrated else ""
        run_async(lambda: self._admin(f"CREATE DATABASE {name}{template}"))
        return _with_database(self.url, name)

    def drop_database(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        run_async(lambda: self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))

    def close(self) -> None:
        run_async(lambda: self._admin(f"DROP DATABASE IF EXISTS {_TEMPLATE}_{os.getpid()} WITH (FORCE)"))


def _binaries() -> str | None:
    if shutil.which("initdb") and shutil.which("pg_ctl"):
        return os.path.dirname(shutil.which("initdb") or "")
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return os.path.dirname(found[-1]) if found else None



@contextlib.contextmanager
def start_cluster() -> Iterator[Cluster]:
    """The cluster of ``PATROL_SYNC_TEST_PG``, or a throwaway one. Raises Unavailable if neither can be had."""
    if os.environ.get(ENV):
        cluster = Cluster(os.environ[ENV])
        cluster.prepare()
        try:
            yield cluster
        finally:
            cluster.close()
        return
    bindir = _binaries()
    if bindir is None:
        raise Unavailable(f"no PostgreSQL binaries (initdb, pg_ctl) on PATH or under /usr/lib/postgresql, and {ENV} is unset")
    as_user: list[str] = []
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable("running as root, and there is no postgres user to run PostgreSQL as") from None
        as_user = ["runuser", "-u", "postgres", "--"]
    root = tempfile.mkdtemp(prefix="patrol-pg-")
    data = os.path.join(root, "data")
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    port = free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*as_user, *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stderr or done.stdout}")

    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off "
        "-c max_connections=300 -c shared_buffers=64MB"
    )
    run(f"{bindir}/initdb", "-D", data, "--auth=trust", "--username=postgres", "--encoding=UTF8", "--locale=C", "--no-sync")
    try:
        run(f"{bindir}/pg_ctl", "-D", data, "-l", os.path.join(root, "log"), "-w", "-t", "60", "-o", options, "start")
        try:
            cluster = Cluster(f"postgresql://postgres@127.0.0.1:{port}/postgres")
            cluster.prepare()
            yield cluster
        finally:
            run(f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- direct queries, for tests that look inside the store ---------------------------------


async def rows(db_url: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows of a plain query (one both dialects read alike) on the store's database."""
    if db_url.startswith("sqlite:"):
        with contextlib.closing(sqlite3.connect(db_url.removeprefix("sqlite:///"))) as conn:
            return [tuple(r) for r in conn.execute(sql)]
    import asyncpg

    conn = await asyncpg.connect(db_url)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


async def execute(db_url: str, script: str) -> None:
    """Run a PostgreSQL script (several statements) on the store's database."""
    import asyncpg

    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(script)
    finally:
        await conn.close()


async def dump(db_url: str) -> str:
    """Every row of every table, as text."""
    if db_url.startswith("sqlite:"):
        with contextlib.closing(sqlite3.connect(db_url.removeprefix("sqlite:///"))) as conn:
            return "\n".join(conn.iterdump())
    import asyncpg

    conn = await asyncpg.connect(db_url)
    try:
        tables = await conn.fetch("SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        out = []
        for (table,) in tables:
            out += [r[0] for r in await conn.fetch(f"SELECT t::text FROM {table} t")]
        return "\n".join(out)
    finally:
        await conn.close()


async def fail_inserts_of(db_url: str, record_id: str, message: str) -> None:
    """Make the store fail, mid-transaction, when it inserts the record ``record_id``."""
    if db_url.startswith("sqlite:"):
        with contextlib.closing(sqlite3.connect(db_url.removeprefix("sqlite:///"))) as conn:
            conn.execute(
                f"CREATE TRIGGER fail_insert BEFORE INSERT ON records WHEN NEW.id = '{record_id}' "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )
            conn.commit()
        return
    import asyncpg

    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            f"""CREATE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.id = '{record_id}' THEN RAISE EXCEPTION '{message}'; END IF;
                    RETURN NEW;
                END $$;
                CREATE TRIGGER fail_insert BEFORE INSERT ON records FOR EACH ROW EXECUTE FUNCTION fail_insert();"""
        )
    finally:
        await conn.close()

