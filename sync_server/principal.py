"""Who is calling, and which wards they may see and change."""

from __future__ import annotations

import dataclasses
import datetime as dt

__all__ = ["Principal", "epoch_ms"]


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
    #: when the device was registered (ms since the epoch; 0: not known): no stamp of it can be
    #: much earlier (PROTOCOL.md section 3)
    registered_ms: int = 0

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_supervisor(self) -> bool:
        return self.role in ("supervisor", "admin")

    def may_see(self, ward_id: str) -> bool:
        return ward_id in self.wards


def epoch_ms(when: str | None) -> int:
    """An ISO 8601 time as stored (``...Z``) in ms since the epoch; 0 for none or unreadable."""
    if not when:
        return 0
    try:
        moment = dt.datetime.fromisoformat(when)
    except ValueError:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)
