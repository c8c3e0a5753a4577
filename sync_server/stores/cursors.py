"""Pull cursors as text: a store's epoch and a position in its pull order.

Opaque to clients (PROTOCOL.md 5), and short, since a handheld sends one with every
pull (an idle sync on 2G is one small request): ``<epoch>.<position>``, the epoch's
bytes in base64url and the position in base 36 (``Fcb9bWwC46Y.3f``, 14 characters
where the first form took 27; on PostgreSQL, whose positions have 16 digits, 23
where it took 44). The first form, ``base64url("<epoch>:<position>")``, is still
read: devices hold such cursors. A ``.`` never occurs in base64url, which tells
them apart.
"""

from __future__ import annotations

import base64
import binascii
import string

from .errors import CursorExpired, CursorInvalid

__all__ = ["decode_cursor", "encode_cursor"]

_BASE36 = frozenset(string.digits + string.ascii_lowercase)


def encode_cursor(epoch: str, position: int) -> str:
    try:
        if not epoch or epoch != epoch.lower():
            raise ValueError(epoch)
        packed = base64.urlsafe_b64encode(bytes.fromhex(epoch)).decode().rstrip("=")
    except ValueError:  # an epoch that is not lowercase hex (none so far): the first form
        return base64.urlsafe_b64encode(f"{epoch}:{position}".encode()).decode().rstrip("=")
    return f"{packed}.{_base36(position)}"


def decode_cursor(epoch: str, cursor: str) -> int:
    """The position in a cursor of this epoch. Raises CursorInvalid for text that is
    no cursor, CursorExpired for a cursor of another epoch (the store was restored)."""
    try:
        if "." in cursor:
            packed, _, pos = cursor.partition(".")
            their_epoch = base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4)).hex()
            value = int(pos, 36) if pos and len(pos) <= 13 and _BASE36.issuperset(pos) else -1
        else:
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


def _base36(value: int) -> str:
    digits = []
    while True:
        value, digit = divmod(value, 36)
        digits.append(string.digits[digit] if digit < 10 else string.ascii_lowercase[digit - 10])
        if not value:
            return "".join(reversed(digits))
