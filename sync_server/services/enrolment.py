"""One-time enrolment codes (PROTOCOL.md sections 7 and 10).

An admin asks for a code for a device; the handheld app opens ``/app/#enrol=<code>``
(or the officer types the code) and exchanges it, without any token, for the device's
new token. Why each choice:

- **Typeable, yet not guessable.** 15 characters of Crockford's base32 (75 random
  bits) in three groups of five, e.g. ``7KQ2M-XW4PD-9HT3R``; case, spaces and hyphens
  do not matter, and ``I``/``L``/``O`` read as ``1``/``1``/``0``, as Crockford intends.
- **Stored only as a hash** (SHA-256: the code is random, there is no dictionary to
  try), valid for ``Settings.enrolment_ttl_s`` (10 minutes), used at most once: the
  store marks it used in one conditional update, so of two exchanges at once exactly
  one gets the token and the other 404.
- **Guessing is limited.** A malformed code is 422 before the store is asked; each
  failed exchange (malformed, unknown, used or expired) counts against the client's
  address, and past ``enrol_max_failures`` in ``enrol_failure_window_s`` that address
  gets 429 with ``Retry-After`` until its oldest failure leaves the window. The count
  is per server process (each worker keeps its own), which is enough: with 75 bits
  and ten minutes, even unlimited guessing would not find a code.
- **A device that does not exist yet** is registered when the code is made, for the
  ``user_id`` of the request, under a token nobody was shown: it works only once its
  code is exchanged. Exchanging a code always issues a new token, so the device's
  old one (if any) stops at once, as with a re-issue; a revoked device is revoked no
  more, and its outbox syncs. Revoking a device drops its unused code.
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import math
import secrets
import time
from collections.abc import Callable

import msgspec

from schemas import SERVER_NODE, DeviceId, EnrolledDevice, Enrolment, EnrolmentRequest

from ..errors import NotFound, TooManyRequests, Unprocessable
from ..settings import Settings
from ..stores import IdentityStore
from ..stores.base import EnrolmentRow
from .identity import hash_token, new_token
from .scope import ScopeService

__all__ = ["ALPHABET", "EnrolmentService", "FailureLimiter", "code_hash", "new_code", "normalise"]

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O, U
_GROUP, _GROUPS = 5, 3
_LENGTH = _GROUP * _GROUPS
_READS_AS = str.maketrans({"I": "1", "L": "1", "O": "0"})


def new_code() -> str:
    """A fresh code: 15 random Crockford base32 characters (75 bits), grouped by five."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(_LENGTH))
    return "-".join(raw[i : i + _GROUP] for i in range(0, _LENGTH, _GROUP))


def normalise(code: str) -> str:
    """The 15 characters a code stands for, whatever its case, spaces and hyphens.
    Raises Unprocessable for anything that cannot be a code."""
    if len(code) > 64:
        raise Unprocessable("an enrolment code has 15 characters, like 7KQ2M-XW4PD-9HT3R")
    bare = code.upper().replace("-", "").replace(" ", "").translate(_READS_AS)
    if len(bare) != _LENGTH or any(c not in ALPHABET for c in bare):
        raise Unprocessable("an enrolment code has 15 characters of 0-9 and A-Z (no U), like 7KQ2M-XW4PD-9HT3R")
    return bare


def code_hash(code: str) -> str:
    return hashlib.sha256(normalise(code).encode("ascii")).hexdigest()


def _utc_text(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FailureLimiter:
    """Failed attempts per client address within a sliding window (see the module docstring)."""

    def __init__(self, max_failures: int, window_s: float, clock: Callable[[], float] = time.monotonic, max_clients: int = 10_000) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self.max_clients = max_clients
        self._failures: dict[str, collections.deque[float]] = {}

    def _recent(self, client: str, now: float) -> collections.deque[float] | None:
        times = self._failures.get(client)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[client]
            return None
        return times

    def retry_after(self, client: str) -> int | None:
        """Seconds until this client may try again, or None if it may now."""
        now = self.clock()
        times = self._recent(client, now)
        if times is None or len(times) < self.max_failures:
            return None
        return max(1, math.ceil(times[0] + self.window_s - now))

    def failed(self, client: str) -> None:
        now = self.clock()
        if client not in self._failures and len(self._failures) >= self.max_clients:
            for other in list(self._failures):  # forget the addresses whose failures are all old
                self._recent(other, now)
            if len(self._failures) >= self.max_clients:  # still full: forget the oldest address
                del self._failures[next(iter(self._failures))]
        self._failures.setdefault(client, collections.deque(maxlen=self.max_failures)).append(now)


class EnrolmentService:
    """Makes codes (admin API and CLI) and exchanges them (``POST /v1/enrol``, no token)."""

    def __init__(self, store: IdentityStore, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.limiter = FailureLimiter(settings.enrol_max_failures, settings.enrol_failure_window_s)

    async def create(self, device_id: str, request: EnrolmentRequest, base_url: str) -> Enrolment:
        """A code for ``device_id`` (registered for ``request.user_id`` if it does not exist).

        ``base_url``: the server's address as the handheld reaches it; ``Settings.public_url``
        wins when set (behind a proxy, the address a request came to may be an inner one)."""
        if device_id == SERVER_NODE:
            raise Unprocessable(f"device id {SERVER_NODE!r} is reserved for the server's own stamps")
        try:
            msgspec.convert(device_id, DeviceId)
        except msgspec.ValidationError:
            raise Unprocessable("a device id is 1-64 of [A-Za-z0-9_-]") from None
        code = new_code()
        now = self.clock()
        expires_at = _utc_text(now + self.settings.enrolment_ttl_s)
        row = EnrolmentRow(
            device_id=device_id,
            user_id=request.user_id,
            code_hash=code_hash(code),
            placeholder_hash=hash_token(new_token()),
            created_at=_utc_text(now),
            expires_at=expires_at,
        )
        await self.store.add_enrolment(row)
        base = (self.settings.public_url or base_url).rstrip("/")
        return Enrolment(code=code, url=f"{base}/app/#enrol={code}", expires_at=expires_at)

    async def redeem(self, code: str, client: str) -> EnrolledDevice:
        """The device's new token for a valid code, once, with its scope (the app sets its
        ward from it). Raises TooManyRequests (429),
        Unprocessable (422, malformed) or NotFound (404: unknown, used or expired)."""
        wait = self.limiter.retry_after(client)
        if wait is not None:
            raise TooManyRequests(
                f"too many failed enrolment attempts from this address; try again in {wait} s", headers={"Retry-After": str(wait)}
            )
        try:
            hashed = code_hash(code)
        except Unprocessable:
            self.limiter.failed(client)
            raise
        token = new_token()
        found = await self.store.redeem_enrolment(hashed, hash_token(token), _utc_text(self.clock()))
        if found is None:
            self.limiter.failed(client)
            raise NotFound("this enrolment code is unknown, used or expired: ask an admin for a new one")
        device_id, user_id = found
        scope = await ScopeService(self.store).of_token(token)
        return EnrolledDevice(device_id=device_id, user_id=user_id, token=token, scope=scope)
