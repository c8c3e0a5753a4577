"""Record ids: UUIDv7 (RFC 9562, section 5.7).

Time-ordered ids keep a device's new records in creation order, both in its own
store's primary-key index and in the server's, and carry no device information.
Within one process ids are strictly increasing, even within a millisecond
(``rand_a`` used as a counter seeded at random: RFC 9562 section 6.2, method 1).
"""

from __future__ import annotations

import os
import threading
import uuid

from schemas.stamps import wall_ms

__all__ = ["new_id", "uuid7"]

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    """A new UUIDv7, higher than every one made before by this process."""
    global _last_ms, _counter
    rand = int.from_bytes(os.urandom(10), "big")
    with _lock:
        now = wall_ms()
        if now > _last_ms:
            _last_ms, _counter = now, (rand >> 64) & 0x7FF  # leave headroom for the counter
        else:
            now = _last_ms
            _counter += 1
            if _counter > 0xFFF:  # 2,048+ ids in one millisecond: borrow the next one
                _last_ms = now = now + 1
                _counter = 0
        counter = _counter
    value = (now & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


def new_id() -> str:
    """A new record id: a UUIDv7 in its usual text form (36 characters)."""
    return str(uuid7())
