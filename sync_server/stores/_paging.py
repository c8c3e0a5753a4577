"""Pull paging, one way for every backend: cursors, page cuts, and ``Store.pull``.

A backend knows only how to read one page of ``(position, doc)`` rows after a
position (its own order: SQLite's seq, PostgreSQL's ``pos`` below the horizon, see
``postgres/_cursor.py``) and its highest stored position; :class:`Paging` does the
rest the same way on both: the cursor (``stores/cursors.py``, 400 when unreadable, 410 from another epoch or from ahead of the store), the page's bounds in
count and bytes, and the cursor after the page.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from .base import Page, Skip
from .cursors import decode_cursor, encode_cursor
from .errors import CursorExpired

__all__ = ["PageRow", "Paging", "cut_page", "decode_cursor", "encode_cursor"]

#: one row of a page: the record's position in pull order, its stored document, and
#: (only when the pull has a ``skip``) its merge state
PageRow = tuple[int, bytes] | tuple[int, bytes, bytes]


def cut_page(rows: Sequence[PageRow], limit: int, max_bytes: int | None, skip: Skip | None = None) -> tuple[list[bytes], int | None, bool]:
    """One page from rows fetched ``limit + 1``: the documents, the position of the last
    row the page passed over (None: no row), and whether more wait. At most ``limit``
    rows and, past the first document, no more than ``max_bytes`` of documents, so that
    a page of large records stays small enough to cross a slow link (PROTOCOL.md 1:
    4 MiB by default). Rows ``skip`` leaves out (``own=skip``: they need the merge
    state, the third column) cost nothing but still move the position on, so the cursor
    passes them."""
    more = len(rows) > limit
    docs: list[bytes] = []
    last: int | None = None
    size = 0
    for row in rows[:limit]:
        if skip is not None and skip(row[1], row[2]):  # type: ignore[misc]
            last = row[0]
            continue
        size += len(row[1]) + 1
        if max_bytes is not None and size > max_bytes and docs:
            return docs, last, True
        docs.append(row[1])
        last = row[0]
    return docs, last, more


class Paging(abc.ABC):
    """``Store.pull`` over a backend's two page reads."""

    epoch: str

    def encode_cursor(self, position: int) -> str:
        return encode_cursor(self.epoch, position)

    @abc.abstractmethod
    async def _page_rows(
        self, wards: frozenset[str] | None, after: int, fetch: int, collections: frozenset[str] | None, crdt: bool = False
    ) -> Sequence[PageRow]:
        """Up to ``fetch`` rows after position ``after``, in pull order (``wards`` not
        empty); with ``crdt``, each row's merge state as its third column."""

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
        skip: Skip | None = None,
    ) -> Page:
        after = decode_cursor(self.epoch, cursor) if cursor else 0
        fetched = wards is None or wards
        rows = await self._page_rows(wards, after, limit + 1, collections, crdt=skip is not None) if fetched else []
        # nothing newer: is the cursor from the future of a store restored from a backup?
        if not rows and after and after > await self._top_position():
            raise CursorExpired("the cursor is ahead of this store (restored from a backup?); pull again from the start")
        docs, last, more = cut_page(rows, limit, max_bytes, skip)
        return Page(docs, self.encode_cursor(after if last is None else last), more)
