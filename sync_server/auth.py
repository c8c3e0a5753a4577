"""Bearer-token authentication and role guards."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from .errors import Forbidden, Unauthorized
from .identity import hash_token
from .principal import Principal
from .stores import Store

__all__ = ["TokenAuthMiddleware", "admins_only", "supervisors_only"]

_MAX_TOKEN = 256


class TokenAuthMiddleware(AbstractAuthenticationMiddleware):
    """Resolves ``Authorization: Bearer <token>`` to a :class:`Principal` on every request.

    Unknown and revoked tokens take the same path (one lookup by hash), so their
    refusal costs the same time; revocation is seen on the very next request."""

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > _MAX_TOKEN:
            raise Unauthorized()
        store: Store = connection.app.state.store
        principal = await store.principal(hash_token(token))
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
