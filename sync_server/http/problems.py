"""Every error an API request ends in, as ``application/problem+json`` (RFC 9457).

The domain's errors (``sync_server/errors.py``) carry their status and problem type;
the stores' own errors become domain errors here (the one mapping); Litestar's errors
(no route, wrong method, a parameter that does not parse) get the same shape, each
field named as the client sent it; anything else is a 500 that is logged, never shown.
``create_app`` installs :data:`EXCEPTION_HANDLERS`; the limiter, which answers before
routing, renders with :func:`encode` and :data:`MEDIA_TYPE`.
"""

from __future__ import annotations

import http
import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.params import ParameterKwarg
from litestar.types import ExceptionHandlersMap

import sync_server.stores.errors as store_errors
from schemas import ErrorItem, Problem

from .. import errors

__all__ = ["EXCEPTION_HANDLERS", "MEDIA_TYPE", "encode"]

log = logging.getLogger("patrol_sync")
MEDIA_TYPE = "application/problem+json"
_json = msgspec.json.Encoder()

_STORE_ERRORS: dict[type[store_errors.StoreError], type[errors.ProblemError]] = {
    store_errors.AlreadyExists: errors.AlreadyExists,
    store_errors.NotFound: errors.NotFound,
    store_errors.UnknownReference: errors.Unprocessable,
    store_errors.Refused: errors.Refused,
    store_errors.CursorInvalid: errors.BadRequest,
    store_errors.CursorExpired: errors.CursorExpired,
    store_errors.StoreUnavailable: errors.Unavailable,
}


def encode(problem: Problem) -> bytes:
    return _json.encode(problem)


def _render(problem: Problem, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(encode(problem), status_code=problem.status, media_type=MEDIA_TYPE, headers=headers)


def _on_problem(_: Request[Any, Any, Any], exc: errors.ProblemError) -> Response[bytes]:
    return _render(exc.problem(), exc.headers)


def _on_store_error(request: Request[Any, Any, Any], exc: store_errors.StoreError) -> Response[bytes]:
    kind = next((v for k, v in _STORE_ERRORS.items() if isinstance(exc, k)), errors.ProblemError)
    if kind is errors.ProblemError:
        return _on_crash(request, exc)
    headers = None
    if kind is errors.Unavailable:  # the database restarts or is overloaded: come back shortly
        headers = {"Retry-After": str(request.app.state.settings.retry_after_s)}
    return _on_problem(request, kind(str(exc), headers=headers))


def _wire_name(request: Request[Any, Any, Any], key: str) -> str:
    """The name a client sent a parameter under (``from``), not the handler's (``from_``)."""
    try:
        field = request.route_handler.parsed_fn_signature.parameters.get(key)
    except (KeyError, AttributeError):  # no route was found
        return key
    kwarg = getattr(field, "kwarg_definition", None)
    if isinstance(kwarg, ParameterKwarg):
        return kwarg.name or kwarg.query or kwarg.header or kwarg.cookie or key
    return key


def _on_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    """Litestar's own errors (no route, wrong method, body too large, bad parameter)."""
    status = exc.status_code
    if status >= 500:  # Litestar's own failure (a dependency it cannot build, say): ours to fix
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    phrase = http.HTTPStatus(status).phrase if status in http.HTTPStatus._value2member_map_ else "Error"
    items: list[ErrorItem] = []
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        for entry in exc.extra:
            if isinstance(entry, dict):
                key = entry.get("key")
                field = _wire_name(request, key) if isinstance(key, str) else key
                items.append(ErrorItem(code="invalid", detail=str(entry.get("message", "")), field=field))
    slug = phrase.lower().replace(" ", "-")
    problem = Problem(type=errors.problem_type(slug), title=phrase, status=status, detail=str(exc.detail), errors=items)
    headers = {k: v for k, v in (exc.headers or {}).items()}
    return _render(problem, headers)


def _on_crash(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    problem = errors.ProblemError("the server failed to handle this request; it has been logged").problem()
    return _render(problem)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    errors.ProblemError: _on_problem,
    store_errors.StoreError: _on_store_error,
    HTTPException: _on_http_error,
    Exception: _on_crash,
}
