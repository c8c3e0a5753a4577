"""What the SDK raises.

Everything derives from :class:`PatrolSyncError`, in two branches: what went wrong
on the device (no network involved) and what went wrong talking to the server::

    PatrolSyncError
    ├── LocalError                    the device's own data or a call's arguments
    │   ├── InvalidEdit (ValueError)  a value of the wrong type or out of range, an unknown
    │   │                             field, a write-once field edited, a bad query
    │   ├── RecordNotFound (KeyError) no such record on the device (or it is deleted)
    │   └── StoreMismatch             the local store file belongs to another device
    └── SyncError                     talking to the server failed; nothing local is lost
        ├── TransportError            network failure or timeout, still failing after retries
        ├── ProtocolError             an answer the SDK cannot make sense of
        └── APIError                  the server answered with a problem document (``.problem``)
            ├── AuthError             401: token unknown or revoked (lost handheld), or its user
            │                         disabled: an admin re-issues the token, then ``set_token``
            ├── ForbiddenError        403: the role or the device may not do this
            ├── NotFoundError         404
            ├── ConflictError         409: the id exists already
            ├── ServerResetError      410: the server was restored from a backup; ``sync()``
            │                         handles it (re-pull, outbox kept) and raises it only
            │                         if the server keeps answering 410
            ├── InvalidRequestError   400, 413, 415, 422: the whole request was refused
            └── UnavailableError      429 or 5xx, still failing after retries

A change the server rejects on its own (invalid value, out of scope) is *not* an
error: ``sync()`` moves it to the dead letters and carries on. A ``SyncError``
raised by ``sync()`` carries the partial :class:`~client_sdk.types.SyncReport` of
what was done before it (``.report``); every completed step is on disk, and the
next ``sync()`` resumes where this one stopped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas import ErrorItem, Problem

if TYPE_CHECKING:
    from .types import SyncReport

__all__ = [
    "APIError",
    "AuthError",
    "ConflictError",
    "ForbiddenError",
    "InvalidEdit",
    "InvalidRequestError",
    "LocalError",
    "NotFoundError",
    "PatrolSyncError",
    "ProtocolError",
    "RecordNotFound",
    "ServerResetError",
    "StoreMismatch",
    "SyncError",
    "TransportError",
    "UnavailableError",
]


class PatrolSyncError(Exception):
    """The root of every error the SDK raises."""


class LocalError(PatrolSyncError):
    """A problem with the device's own data or with a call's arguments."""


class InvalidEdit(LocalError, ValueError):
    """An edit or query the schema does not allow; nothing was written."""


class RecordNotFound(LocalError, KeyError):
    """No such record on the device, or it is deleted."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "record not found"


class StoreMismatch(LocalError):
    """The local store file was made for another device or user."""


class SyncError(PatrolSyncError):
    """Talking to the server failed. ``report``: what ``sync()`` did before it failed."""

    report: SyncReport | None = None


class TransportError(SyncError):
    """The server could not be reached (or did not answer in time), after the retries."""


class ProtocolError(SyncError):
    """An answer that breaks the protocol (not decodable, results not matching the request)."""


class APIError(SyncError):
    """The server answered with an error; ``problem`` is its RFC 9457 document,
    ``errors`` the details it listed (each with a ``code``, a ``detail`` and, where one
    is to blame, the ``field``)."""

    #: what to do about it, added to the message
    hint = ""

    def __init__(self, problem: Problem, method: str = "", path: str = "") -> None:
        where = f" ({method} {path})" if method else ""
        super().__init__(f"{problem.status} {problem.title}: {problem.detail}{where}{self.hint}{_listed(problem.errors)}")
        self.problem = problem
        self.status = problem.status
        self.errors: list[ErrorItem] = list(problem.errors)


def _listed(errors: list[ErrorItem]) -> str:
    """The details the message does not say already, so a log line shows the culprit."""
    named = [f"{e.field}: {e.code}" for e in errors[:5] if e.field]
    return f" [{'; '.join(named)}]" if named else ""


class AuthError(APIError):
    """401: the token is unknown or revoked, or its user is disabled."""

    hint = (
        ". This device's token is no longer valid (revoked, re-issued, or its user disabled): ask an admin to re-issue it "
        "(`patrol-sync admin device token ID`, or an enrolment code) and give it to the client with set_token(); "
        "its unsynced edits stay on the device and sync as its own."
    )


class ForbiddenError(APIError):
    """403: authenticated, but not allowed (role, scope, or another device's id)."""


class NotFoundError(APIError):
    """404."""


class ConflictError(APIError):
    """409: an entity with that id exists already."""


class ServerResetError(APIError):
    """410: the server's store was restored from a backup (its epoch changed)."""

    hint = ". The server was restored from a backup and keeps refusing this device's cursor."


class InvalidRequestError(APIError):
    """400, 413, 415 or 422: the request as a whole was refused; ``errors`` says why,
    item by item, when the server listed the culprits (a malformed push envelope)."""


class UnavailableError(APIError):
    """429 or 5xx, still answered after the retries."""


_BY_STATUS: dict[int, type[APIError]] = {
    401: AuthError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    410: ServerResetError,
}


def error_for(problem: Problem, method: str = "", path: str = "") -> APIError:
    """The exception for a problem document, by its status."""
    status = problem.status
    if status in _BY_STATUS:
        kind = _BY_STATUS[status]
    elif status == 429 or status >= 500:
        kind = UnavailableError
    elif 400 <= status < 500:
        kind = InvalidRequestError
    else:
        kind = APIError
    return kind(problem, method, path)
