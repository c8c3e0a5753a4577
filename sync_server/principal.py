"""Who is calling, and which wards they may see and change."""

from __future__ import annotations

import dataclasses

__all__ = ["Principal"]


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    """The caller behind a token: one user on one device.

    ``wards`` is the caller's scope: the wards of his teams plus his own
    ``ward_ids``; for an admin, every ward that exists.
    """

    user_id: str
    device_id: str
    role: str
    wards: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_supervisor(self) -> bool:
        return self.role in ("supervisor", "admin")

    def may_see(self, ward_id: str) -> bool:
        return ward_id in self.wards
