"""Bearer-token authentication and role guards."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp

from ..errors import Forbidden, Unauthorized
from ..principal import Principal

__all__ = ["PRINCIPAL_KEY", "PrincipalOf", "TokenAuthMiddleware", "admins_only", "bearer_token", "supervisors_only"]

#: who holds a token (None: nobody): ``services.identity.Administration.principal``
PrincipalOf = Callable[[str], Awaitable[Principal | None]]

_MAX_TOKEN = 256
#: where the limiter (``limits.py``) leaves the principal it looked up for this request,
#: in ``scope["state"]``: one lookup per request, not two
PRINCIPAL_KEY = "patrol_sync.principal"


def bearer_token(header: str) -> str | None:
    """The token of an ``Authorization`` header, however spaced; None if it holds none.

    The one reading of the header: the limiter keys on the device this token names,
    so ``"Bearer" + N spaces + token`` is the same device as ``"Bearer token"``."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > _MAX_TOKEN:
        return None
    return token


class TokenAuthMiddleware(AbstractAuthenticationMiddleware):
    """Resolves ``Authorization: Bearer <token>`` to a :class:`Principal` on every request.

    Unknown and revoked tokens take the same path (one lookup by hash), so their
    refusal costs the same time; revocation is seen on the very next request."""

    def __init__(self, app: ASGIApp, principal_of: PrincipalOf, **options: Any) -> None:
        super().__init__(app, **options)
        self.principal_of = principal_of

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        token = bearer_token(connection.headers.get("authorization", ""))
        if token is None:
            raise Unauthorized()
        state = connection.scope.get("state") or {}
        if PRINCIPAL_KEY in state:
            principal = state[PRINCIPAL_KEY]
        else:
            principal = await self.principal_of(token)
        if principal is None:
            raise Unauthorized("unknown, expired or revoked token")
        return AuthenticationResult(user=principal, auth=None)


def _principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    user = connection.user
    assert isinstance(user, Principal)
    return user


def admins_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if not _principal(connection).is_admin:
        raise Forbidden("this needs the admin role")


def supervisors_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if not _principal(connection).is_supervisor:
        raise Forbidden("this needs the supervisor or admin role")
