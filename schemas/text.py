"""Vietnamese text rules shared by both ends: NFC on the wire, folded for search."""

from __future__ import annotations

import unicodedata

__all__ = ["fold", "nfc"]

_EXTRA = str.maketrans({"đ": "d", "Đ": "d"})  # a letter of its own, not a d with a mark


def nfc(text: str) -> str:
    """The NFC form of ``text``, as stored and compared byte for byte (ASCII is NFC already)."""
    return text if text.isascii() or unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def fold(text: str) -> str:
    """Lower case without diacritics: "Nhà trọ Lê Lợi, Đường" -> "nha tro le loi, duong"."""
    decomposed = unicodedata.normalize("NFD", text.translate(_EXTRA))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
