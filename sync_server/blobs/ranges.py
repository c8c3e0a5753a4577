"""HTTP byte ranges (RFC 9110 section 14): ``Range`` of downloads, ``Content-Range`` of
resumable uploads. Pure functions, no I/O."""

from __future__ import annotations

import re

__all__ = ["ChunkRange", "Unsatisfiable", "parse_chunk_range", "parse_range"]

_RANGE = re.compile(r"bytes=(\d{0,18})-(\d{0,18})")
_CHUNK = re.compile(r"bytes (\d{1,18})-(\d{1,18})/(\d{1,18})")


class Unsatisfiable(ValueError):
    """A valid ``Range`` none of whose bytes exist (416, ``Content-Range: bytes */size``)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The ``[start, end)`` a ``Range`` header asks of a ``size``-byte blob, or None to
    send it whole.

    One range is served: ``bytes=a-b``, ``bytes=a-`` (to the end) and ``bytes=-n``
    (the last ``n`` bytes), ``b`` clamped to the last byte. A header that is not
    one of these (another unit, several ranges, ``a > b``, garbage) is ignored and
    the whole blob sent, as RFC 9110 allows. Raises Unsatisfiable when ``a`` is at or
    past the end, for ``bytes=-0``, and for any range of an empty blob."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # a suffix: the last n bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable(header)
        return max(0, size - suffix), size
    start = int(first)
    if last and int(last) < start:
        return None  # invalid: ignored
    if start >= size:
        raise Unsatisfiable(header)
    end = size if not last else min(size, int(last) + 1)
    return start, end


class ChunkRange(tuple[int, int, int]):
    """``Content-Range: bytes a-b/total`` of one chunk: ``start`` (a), ``end`` (b + 1), ``total``."""

    __slots__ = ()

    @property
    def start(self) -> int:
        return self[0]

    @property
    def end(self) -> int:
        return self[1]

    @property
    def total(self) -> int:
        return self[2]


def parse_chunk_range(header: str) -> ChunkRange:
    """A chunk's ``Content-Range``; ValueError unless it is ``bytes a-b/total``, a <= b < total."""
    match = _CHUNK.fullmatch(header.strip())
    if match is None:
        raise ValueError("Content-Range must be `bytes <first>-<last>/<total>`")
    first, last, total = (int(g) for g in match.groups())
    if not first <= last < total:
        raise ValueError(f"Content-Range bytes {first}-{last}/{total}: need first <= last < total")
    return ChunkRange((first, last + 1, total))
