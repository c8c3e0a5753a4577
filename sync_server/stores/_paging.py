"""Pull paging, one way for every backend: cursors, page cuts, and ``Store.pull``.

A backend knows only how to read one page of ``(position, doc)`` rows after a
position (its own order: SQLite's seq, PostgreSQL's ``pos`` below the horizon, see
``postgres/_cursor.py``) and its highest stored position; :class:`Paging` does the
rest the same way on both: the cursor (``base64url("<epoch>:<position>")``, 400 when
unreadable, 410 from another epoch or from ahead of the store), the page's bounds in
count and bytes, and the cursor after the page.
"""

from __future__ import annotations

import abc
import base64
import binascii
from collections.abc import Sequence

from .base import Page
from .errors import CursorExpired, CursorInvalid

__all__ = ["PageRow", "Paging", "cut_page", "decode_cursor", "encode_cursor"]

#: one row of a page: the record's position in pull order, and its stored document
PageRow = tuple[int, bytes]


def encode_cursor(epoch: str, position: int) -> str:
    return base64.urlsafe_b64encode(f"{epoch}:{position}".encode()).decode().rstrip("=")


def decode_cursor(epoch: str, cursor: str) -> int:
    """The position in a cursor. Raises CursorInvalid, or CursorExpired for another epoch."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        their_epoch, pos = text.split(":")
        value = int(pos) if pos.isascii() and pos.isdigit() else -1
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise CursorInvalid(f"unreadable cursor {cursor[:40]!r}") from None
    if value < 0 or value >= 1 << 63:  # past a 64-bit integer: no such position
        raise CursorInvalid(f"unreadable cursor {cursor[:40]!r}")
    if their_epoch != epoch:
        raise CursorExpired("the cursor is from another epoch of this store; pull again from the start")
    return value


def cut_page(rows: Sequence[PageRow], limit: int, max_bytes: int | None) -> tuple[list[PageRow], bool]:
    """The rows of one page (``limit + 1`` fetched) and whether more wait: at most
    ``limit`` rows and, past the first, no more than ``max_bytes`` of documents, so that
    a page of large records stays small enough to cross a slow link (PROTOCOL.md 1:
    4 MiB by default)."""
    more = len(rows) > limit
    page = list(rows[:limit])
    if max_bytes is not None:
        size = 0
        for n, row in enumerate(page):
            size += len(row[1]) + 1
            if size > max_bytes and n > 0:
                return page[:n], True
    return page, more


class Paging(abc.ABC):
    """``Store.pull`` over a backend's two page reads."""

    epoch: str

    def encode_cursor(self, position: int) -> str:
        return encode_cursor(self.epoch, position)

    @abc.abstractmethod
    async def _page_rows(
        self, wards: frozenset[str] | None, after: int, fetch: int, collections: frozenset[str] | None
    ) -> Sequence[PageRow]:
        """Up to ``fetch`` rows after position ``after``, in pull order (``wards`` not empty)."""

    @abc.abstractmethod
    async def _top_position(self) -> int:
        """The highest position stored (0 when empty)."""

    async def pull(
        self,
        wards: frozenset[str] | None,
        cursor: str | None,
        limit: int,
        collections: frozenset[str] | None,
        max_bytes: int | None = None,
    ) -> Page:
        after = decode_cursor(self.epoch, cursor) if cursor else 0
        rows = await self._page_rows(wards, after, limit + 1, collections) if wards is None or wards else []
        # nothing newer: is the cursor from the future of a store restored from a backup?
        if not rows and after and after > await self._top_position():
            raise CursorExpired("the cursor is ahead of this store (restored from a backup?); pull again from the start")
        page, more = cut_page(rows, limit, max_bytes)
        return Page([doc for _, doc in page], self.encode_cursor(page[-1][0] if page else after), more)
