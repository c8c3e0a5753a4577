"""The patrol-sync client SDK: work offline on a handheld, sync with the server later.

A client is one device. Its records live in a SQLite file on the device: the
records as last pulled, the device's pending edits (the outbox), its hybrid
logical clock and its pull cursor. Every record call (``create``, ``update``,
``add``/``remove``, ``delete``, ``get``, ``find``) works with no network at all
and reads the device's own pending edits; ``sync()`` pushes the outbox in change
sets and pulls what changed, and can be cut short at any point without losing
anything.

Two twin clients over one implementation, as httpx does it: :class:`AsyncPatrolClient`
for apps and services, :class:`PatrolClient` for scripts. Records are the typed
Structs of ``schemas`` (``Premises``, ``Check``, ``Violation``, ...); errors are the
tree of :mod:`client_sdk.errors`.
"""

from ._async_client import AsyncPatrolClient
from ._client import PatrolClient
from ._version import __version__
from .errors import (
    APIError,
    AuthError,
    ConflictError,
    ForbiddenError,
    InvalidEdit,
    InvalidRequestError,
    LocalError,
    NotFoundError,
    PatrolSyncError,
    ProtocolError,
    RecordNotFound,
    ServerResetError,
    StoreMismatch,
    SyncError,
    TransportError,
    UnavailableError,
)
from .ids import new_id, uuid7
from .types import DeadLetter, RetryPolicy, SyncProgress, SyncReport, WireOptions

__all__ = [
    "APIError",
    "AsyncPatrolClient",
    "AuthError",
    "ConflictError",
    "DeadLetter",
    "ForbiddenError",
    "InvalidEdit",
    "InvalidRequestError",
    "LocalError",
    "NotFoundError",
    "PatrolClient",
    "PatrolSyncError",
    "ProtocolError",
    "RecordNotFound",
    "RetryPolicy",
    "ServerResetError",
    "StoreMismatch",
    "SyncError",
    "SyncProgress",
    "SyncReport",
    "TransportError",
    "UnavailableError",
    "WireOptions",
    "__version__",
    "new_id",
    "uuid7",
]
