"""Console passwords (PROTOCOL.md section 9): argon2id hashes, never the password.

argon2-cffi's defaults (RFC 9106's second recommended profile: 64 MiB, 3 passes)
make a guess cost tens of milliseconds; a stored hash whose parameters are older
than these is upgraded at the next successful sign-in (``needs_rehash``).
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from schemas.text import nfc

__all__ = ["MIN_LENGTH", "PasswordRefused", "hash_password", "needs_rehash", "verify_password"]

#: shorter passwords are refused when set (NIST SP 800-63B asks at least 8; we ask 10)
MIN_LENGTH = 10
_MAX_LENGTH = 1024  # hashing a megabyte-long "password" is a cheap way to burn CPU

_hasher = PasswordHasher()
#: verified against when the user does not exist, so both refusals take the same time
_DUMMY = _hasher.hash("patrol-sync: no such user")


class PasswordRefused(ValueError):
    """A new password that does not meet the rules; the message says which."""


def _normal(password: str) -> str:
    return nfc(password)  # the same Vietnamese typed on two keyboards


def hash_password(password: str) -> str:
    password = _normal(password)
    if len(password) < MIN_LENGTH:
        raise PasswordRefused(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > _MAX_LENGTH:
        raise PasswordRefused(f"a password has at most {_MAX_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored``; a missing hash costs the same time and fails."""
    if len(password) > _MAX_LENGTH:
        return False
    try:
        return _hasher.verify(stored or _DUMMY, _normal(password)) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)
