"""Where a store stands against the migrations this version of the code knows.

``patrol-sync migrate --check`` asks this before an upgrade; opening a store
(``Store.open``) applies what is pending, and refuses a store a newer version
wrote (:class:`~.errors.SchemaTooNew`)."""

from __future__ import annotations

import dataclasses

__all__ = ["SchemaStatus", "schema_status"]


@dataclasses.dataclass(frozen=True, slots=True)
class SchemaStatus:
    version: int  # the highest migration applied
    latest: int  # the highest this code knows
    pending: int  # how many of them the store lacks


async def schema_status(url: str) -> SchemaStatus:
    """The status of the existing store ``url`` names; nothing is created or changed."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from .sqlite.store import schema_status as sqlite_status

        return sqlite_status(url)
    if scheme in ("postgresql", "postgres"):
        from .postgres.store import schema_status as postgres_status

        return await postgres_status(url)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///file.db or postgresql://...")
