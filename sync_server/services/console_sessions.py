"""Console sign-in (PROTOCOL.md section 9): passwords, sessions, CSRF, and the limit
on guessing.

- A session is 256 random bits in an ``HttpOnly``, ``SameSite=Lax`` cookie (``Secure``
  when the request came over https); the store keeps only its SHA-256, with the user
  and the session's CSRF token, so every worker sees every session. Idle for
  ``IDLE_S``: gone. A new password ends all of a user's sessions.
- CSRF: every form carries the session's token (``csrf`` field), compared in constant
  time; the sign-in form, before any session, uses a double-submit cookie.
- Guessing: failed sign-ins are counted per user id and per client address in the
  store; each failure waits a little longer (up to ``_MAX_DELAY_S``) before answering,
  and past ``MAX_FAILURES`` in ``WINDOW_S`` the next try is refused (429) without
  checking the password.
- Officers never sign in here (their work is the handheld app, section 10).

A session resolves to the same :class:`Principal` a device token would, so the console
goes through the same services and the same scope rules as the API. A service over the
store's session role: the console's handlers hold this, never the store.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import secrets
import time

from ..principal import Principal
from ..stores import SessionStore
from .passwords import hash_password, needs_rehash, verify_password

__all__ = ["CONSOLE_DEVICE", "IDLE_S", "MAX_FAILURES", "WINDOW_S", "ConsoleAuth", "SignInRefused", "same_token"]

IDLE_S = 30 * 60
_clock = time.time  # replaced in tests of idle expiry
_BASE_DELAY_S = 0.25  # the first failure's wait; each further one doubles it
MAX_FAILURES = 5
WINDOW_S = 15 * 60
_MAX_DELAY_S = 2.0
#: the device a console session's edits (conflict resolutions) are logged under
CONSOLE_DEVICE = "console"


class SignInRefused(Exception):
    """Why a sign-in failed: ``failed`` (wrong id or password), ``officer``, ``limited``."""

    def __init__(self, reason: str, retry_after_s: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


@dataclasses.dataclass(frozen=True, slots=True)
class SignedIn:
    """A live session: the caller as the services see him, and the session's CSRF token."""

    principal: Principal
    csrf: str


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


def same_token(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


class ConsoleAuth:
    def __init__(self, store: SessionStore, idle_s: float = IDLE_S) -> None:
        self.store = store
        self.idle_s = idle_s

    async def sign_in(self, user_id: str, password: str, address: str) -> str:
        """A new session id for the cookie; raises SignInRefused."""
        keys = [f"user:{user_id[:64]}", f"addr:{address}"]
        now = _clock()
        failures = await self.store.sign_in_failures(keys, now - WINDOW_S)
        if failures >= MAX_FAILURES:
            raise SignInRefused("limited", retry_after_s=WINDOW_S)
        found = await self.store.password_of(user_id[:64])
        stored = found[1] if found else None
        # hashing off the event loop: argon2id takes tens of milliseconds of CPU by design
        ok = await asyncio.to_thread(verify_password, stored, password)
        if not ok or found is None:
            await self.store.note_sign_in(keys, failed=True, now=now)
            await asyncio.sleep(min(_MAX_DELAY_S, _BASE_DELAY_S * 2**failures))
            raise SignInRefused("failed")
        role = found[0]
        if role not in ("supervisor", "admin"):
            raise SignInRefused("officer")
        await self.store.note_sign_in(keys, failed=False, now=now)
        if stored is not None and needs_rehash(stored):
            await self.store.set_password(user_id, await asyncio.to_thread(hash_password, password))
        session_id = secrets.token_urlsafe(32)
        await self.store.create_session(_hash(session_id), user_id, secrets.token_urlsafe(24), now)
        return session_id

    async def resolve(self, session_id: str | None) -> SignedIn | None:
        """The signed-in caller behind a cookie, or None (unknown, idle too long, officer now)."""
        if not session_id or len(session_id) > 128:
            return None
        session = await self.store.session(_hash(session_id), self.idle_s, _clock())
        if session is None:
            return None
        principal = await self.store.user_principal(session.user_id, CONSOLE_DEVICE)
        if principal is None or not principal.is_supervisor:  # demoted since: no console
            await self.store.end_session(_hash(session_id))
            return None
        return SignedIn(principal, session.csrf)

    async def sign_out(self, session_id: str | None) -> None:
        if session_id:
            await self.store.end_session(_hash(session_id))

    async def set_password(self, user_id: str, password: str) -> None:
        """Raises PasswordRefused (too short) or the store's NotFound."""
        await self.store.set_password(user_id, await asyncio.to_thread(hash_password, password))
