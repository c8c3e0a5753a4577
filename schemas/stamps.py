"""Stamps: hybrid logical clock values that compare as plain strings.

A stamp is ``"<ms>-<counter>-<node>"``: 13 decimal digits of milliseconds since
the Unix epoch, 4 lowercase hex digits of counter, and the node (a device id, or
``server``).  Every device keeps one :class:`HLC`; so does the server.  The clock
never goes backwards, even when the wall clock does, and it moves past every stamp
it observes, so an edit made after seeing another always carries a higher stamp.

The wall clock and the one way both ends write a time in UTC live here too, so
``created_at`` written by the SDK and by the server read the same.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

__all__ = ["HLC", "SERVER_NODE", "format_stamp", "stamp_ms", "stamp_node", "utc_now", "utc_text", "wall_ms"]

SERVER_NODE = "server"
_COUNTER_MAX = 0xFFFF


def format_stamp(ms: int, counter: int, node: str) -> str:
    return f"{ms:013d}-{counter:04x}-{node}"


def stamp_ms(stamp: str) -> int:
    return int(stamp[:13])


def stamp_node(stamp: str) -> str:
    return stamp[19:]


def wall_ms() -> int:
    """The wall clock in milliseconds since the Unix epoch (what a stamp starts with)."""
    return time.time_ns() // 1_000_000


def utc_text(ms: int) -> str:
    """RFC 3339 in UTC with milliseconds: ``2023-06-08T02:00:00.000Z``."""
    when = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now() -> str:
    """Now, as :func:`utc_text` writes it."""
    return utc_text(wall_ms())


class HLC:
    """A hybrid logical clock (Kulkarni et al.), with string stamps.

    ``state`` is ``(ms, counter)`` of the last stamp issued or observed; persist it
    (the SDK does) so that a restart never issues a stamp twice.
    """

    __slots__ = ("node", "_ms", "_counter", "_wall")

    def __init__(self, node: str, state: tuple[int, int] = (0, 0), wall: Callable[[], int] = wall_ms) -> None:
        self.node = node
        self._ms, self._counter = state
        self._wall = wall

    @property
    def state(self) -> tuple[int, int]:
        return self._ms, self._counter

    def now(self) -> str:
        """A new stamp, higher than every stamp issued or observed before."""
        wall = self._wall()
        if wall > self._ms:
            self._ms, self._counter = wall, 0
        elif self._counter < _COUNTER_MAX:
            self._counter += 1
        else:  # 65,536 stamps in one millisecond: borrow the next one
            self._ms, self._counter = self._ms + 1, 0
        return format_stamp(self._ms, self._counter, self.node)

    def observe(self, stamp: str) -> None:
        """Move past a stamp seen from elsewhere (a pulled record, a pushed edit)."""
        ms, counter = int(stamp[:13]), int(stamp[14:18], 16)
        if (ms, counter) > (self._ms, self._counter):
            self._ms, self._counter = ms, counter
