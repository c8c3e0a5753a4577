"""Message catalogues: Vietnamese first, English switchable (``vi.json``, ``en.json``).

Keys are dotted: ``nav.*`` and other interface words, ``field.<collection>.<name>``
(falling back to ``field.<name>``), ``enum.<collection>.<field>.<value>``. A missing key shows
the Vietnamese text, then the key itself, never an error.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

__all__ = ["LANGUAGES", "Catalogue", "catalogue", "money"]

LANGUAGES = ("vi", "en")


@cache
def _load(lang: str) -> dict[str, str]:
    text = resources.files(__package__).joinpath(f"{lang}.json").read_text(encoding="utf-8")
    data: dict[str, str] = json.loads(text)
    return data


class Catalogue:
    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGUAGES else "vi"
        self._own = _load(self.lang)
        self._fallback = _load("vi")

    def __call__(self, key: str, **values: object) -> str:
        text = self._own.get(key) or self._fallback.get(key) or key
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in self._own or key in self._fallback

    def field(self, collection: str, name: str) -> str:
        key = f"field.{collection}.{name}"
        return self(key) if self.has(key) else self(f"field.{name}") if self.has(f"field.{name}") else name

    def value(self, collection: str, field: str, value: object) -> str:
        key = f"enum.{collection}.{field}.{str(value).lower() if isinstance(value, bool) else value}"
        return self(key) if self.has(key) else str(value)


@cache
def catalogue(lang: str) -> Catalogue:
    return Catalogue(lang)


def money(amount: int | float | None) -> str:
    """Vietnamese đồng as people write them: ``1.500.000 ₫``."""
    if amount is None:
        return ""
    return f"{int(amount):,}".replace(",", ".") + " ₫"
