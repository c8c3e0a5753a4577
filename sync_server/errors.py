"""The server's error tree; each class is one problem ``type`` of RFC 9457.

    ProblemError (500 internal)
    ├── BadRequest (400)            malformed body, unreadable cursor or parameter
    ├── Unauthorized (401)          missing, unknown, expired or revoked token
    ├── Forbidden (403)             authenticated, not allowed (role, scope, device)
    ├── NotFound (404)
    ├── RequestTimeout (408)        a request body that did not arrive in time
    ├── AlreadyExists (409)         an entity with that id exists
    ├── ChangesetReused (409)       a change set id sent again with another body
    ├── Refused (409)               forbidden by the data's rules (the last admin, a team with records)
    ├── UploadOffsetMismatch (409)  a blob chunk not starting where the staged part ends
    ├── CursorExpired (410)         a cursor from an older epoch of the store
    ├── PayloadTooLarge (413)       body, change set or blob over its limit
    ├── UnsupportedMediaType (415)
    ├── RangeNotSatisfiable (416)   a Range none of whose bytes exist
    ├── Unprocessable (422)         well-formed but invalid, or a limit exceeded
    │   └── HashMismatch (422)      a blob's bytes do not hash to its id
    ├── TooManyRequests (429)
    └── Unavailable (503)           the store cannot be reached

The HTTP layer renders each as ``application/problem+json``; nothing here knows
about Litestar, so the sync service and the codec raise them too.
"""

from __future__ import annotations

from typing import ClassVar

from schemas import ErrorItem, Problem

__all__ = [
    "AlreadyExists",
    "BadRequest",
    "ChangesetReused",
    "CursorExpired",
    "Forbidden",
    "HashMismatch",
    "NotFound",
    "PayloadTooLarge",
    "ProblemError",
    "RangeNotSatisfiable",
    "Refused",
    "RequestTimeout",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "Unprocessable",
    "UnsupportedMediaType",
    "UploadOffsetMismatch",
    "problem_type",
]


def problem_type(slug: str) -> str:
    return f"urn:patrol-sync:problem:{slug}"


class ProblemError(Exception):
    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal server error"

    def __init__(self, detail: str, errors: list[ErrorItem] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}

    def problem(self) -> Problem:
        return Problem(type=problem_type(self.slug), title=self.title, status=self.status, detail=self.detail, errors=self.errors)


class BadRequest(ProblemError):
    status, slug, title = 400, "bad-request", "Malformed request"


class Unauthorized(ProblemError):
    status, slug, title = 401, "unauthorized", "Not authenticated"

    def __init__(self, detail: str = "a valid bearer token is required") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="patrol-sync"'})


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class RequestTimeout(ProblemError):
    status, slug, title = 408, "request-timeout", "Request body too slow"


class AlreadyExists(ProblemError):
    status, slug, title = 409, "already-exists", "Already exists"


class ChangesetReused(ProblemError):
    status, slug, title = 409, "changeset-reused", "Change set id reused with another body"


class Refused(ProblemError):
    status, slug, title = 409, "refused", "Refused by a rule of the data"


class UploadOffsetMismatch(ProblemError):
    status, slug, title = 409, "upload-offset", "Upload offset mismatch"


class CursorExpired(ProblemError):
    status, slug, title = 410, "cursor-expired", "Cursor from an older server epoch"


class PayloadTooLarge(ProblemError):
    status, slug, title = 413, "too-large", "Request too large"


class UnsupportedMediaType(ProblemError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class RangeNotSatisfiable(ProblemError):
    status, slug, title = 416, "range-not-satisfiable", "Range not satisfiable"


class Unprocessable(ProblemError):
    status, slug, title = 422, "invalid", "Invalid request"


class HashMismatch(Unprocessable):
    slug, title = "hash-mismatch", "Blob does not match its id"


class TooManyRequests(ProblemError):
    status, slug, title = 429, "too-many-requests", "Too many requests"


class Unavailable(ProblemError):
    status, slug, title = 503, "unavailable", "Service unavailable"
