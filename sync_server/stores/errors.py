"""Backend-neutral store errors; the HTTP layer maps them to problem documents."""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "CursorExpired",
    "CursorInvalid",
    "NotFound",
    "SchemaTooNew",
    "Refused",
    "StoreError",
    "StoreUnavailable",
    "UnknownReference",
]


class StoreError(Exception):
    """Base of every error a store raises on purpose."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or is locked for too long."""


class SchemaTooNew(StoreError):
    """The store was migrated by a newer version of patrol-sync: this one must not touch it."""

    def __init__(self, where: str, version: int, latest: int) -> None:
        super().__init__(
            f"{where} was written by a newer patrol-sync (schema {version}; this version knows up to {latest}): "
            "upgrade patrol-sync, or restore a backup made by this version"
        )


class AlreadyExists(StoreError):
    """An entity with this id exists already."""


class NotFound(StoreError):
    """No such entity."""


class UnknownReference(StoreError):
    """An entity names another one that does not exist (a team's ward, a user's team)."""


class Refused(StoreError):
    """A change the data's own rules forbid (the last enabled admin, a team that records name)."""


class CursorInvalid(StoreError):
    """A pull cursor this store cannot read."""


class CursorExpired(StoreError):
    """A pull cursor from another epoch of the store (restored from a backup)."""
