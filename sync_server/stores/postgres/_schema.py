"""Numbered migrations, applied at start-up by whichever worker gets there first.

Several workers start at once: each takes a session-level advisory lock before
it reads which migrations are applied, so each migration runs exactly once and
the others wait, then find nothing to do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from ..errors import SchemaTooNew
from . import _blobs, _projections
from ._cursor import RANK_BITS

__all__ = ["MIGRATION_LOCK", "latest", "migrate", "pending", "rebase"]

#: advisory lock key (any constant of this application's own)
MIGRATION_LOCK = 7_326_530_001


#: Python steps run after a migration's SQL, in its transaction (what SQL alone cannot compute)
_STEPS: dict[int, Callable[[Any], Awaitable[None]]] = {
    2: _projections.rebuild,
    3: _blobs.rebuild,  # references of the records written before blobs were served
}


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files(__package__).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(found)


def latest() -> int:
    """The highest migration this version of the code knows."""
    return max(version for version, _ in _migrations())


async def pending(conn: Any, where: str = "the database") -> list[int]:
    """The migrations this database lacks; :class:`SchemaTooNew` if a newer version wrote it."""
    if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
        return [version for version, _ in _migrations()]
    done = {int(row[0]) for row in await conn.fetch("SELECT version FROM schema_migrations")}
    if done and max(done) > latest():
        raise SchemaTooNew(where, max(done), latest())
    return [version for version, _ in _migrations() if version not in done]


async def migrate(conn: Any, where: str = "the database") -> tuple[str, int]:
    """Apply the migrations this database lacks; answer its epoch and xid base.

    A database a newer version has migrated is refused before anything is written."""
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        todo = set(await pending(conn, where))
        for version, script in _migrations():
            if version not in todo:
                continue
            async with conn.transaction():
                await conn.execute(script)  # no arguments: the simple protocol runs a whole script
                step = _STEPS.get(version)
                if step is not None:
                    await step(conn)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
        base = await rebase(conn)
        epoch = await conn.fetchval("SELECT value FROM meta WHERE key = 'epoch'")
        return str(epoch), base
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)


async def rebase(conn: Any) -> int:
    """Keep new pull positions above every stored one (see ``_cursor``, *restores*).

    Transaction ids only grow in one cluster, but a logical restore into another
    cluster brings positions made from the old cluster's ids; new ones must not
    land below them. Such a store is a restored backup: it also takes a new epoch,
    so that clients holding cursors from after the backup start over (410), as
    after the SQLite store's restore. Answers the xid base to use."""
    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT (SELECT max(pos) FROM records) AS top, "
            "pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS next_xid, "
            "(SELECT value::bigint FROM meta WHERE key = 'xid_base' FOR UPDATE) AS base"
        )
        base = int(row["base"])
        if row["top"] is not None and (int(row["next_xid"]) + base) << RANK_BITS <= int(row["top"]):
            base = (int(row["top"]) >> RANK_BITS) - int(row["next_xid"]) + 1
            await conn.execute("UPDATE meta SET value = $1 WHERE key = 'xid_base'", str(base))
            await conn.execute("UPDATE meta SET value = substr(replace(gen_random_uuid()::text, '-', ''), 1, 16) WHERE key = 'epoch'")
        return base
