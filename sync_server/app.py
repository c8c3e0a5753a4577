"""The Litestar application: ``create_app(settings)``."""

from __future__ import annotations

import contextlib
import http
import logging
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, Router, get
from litestar.config.compression import CompressionConfig
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.compression import CompressionMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.params import ParameterKwarg
from litestar.response import Redirect
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from schemas import ErrorItem, Problem

from . import docs, errors, openapi
from .auth import TokenAuthMiddleware
from .blobs import BlobService, blob_store_for
from .console import ConsoleAuth, Pulse, console_router
from .controllers import (
    AdminController,
    BlobsController,
    ConflictsController,
    DevicesController,
    EnrolController,
    RecordsController,
    ReportsController,
    SearchController,
    SyncController,
    health,
)
from .enrolment import EnrolmentService
from .limits import Limiter
from .listing import RecordLists
from .observability import Metrics, RequestContext, metrics_endpoint
from .service import SyncService
from .settings import Settings
from .stores import Store, StoreError, store_for
from .stores import errors as store_errors
from .supervision import SupervisionService
from .webapp import webapp_router

__all__ = ["create_app"]

log = logging.getLogger("patrol_sync")
_PROBLEM = "application/problem+json"
_json = msgspec.json.Encoder()
#: Paths the token middleware lets through (the OpenAPI document says so too).
_OPEN_PATHS = ["^/healthz$", "^/schema", "^/metrics$", "^/v1/enrol$", "^/app(/|$)", "^/console(/|$)", "^/$", f"^{docs.PATH}$", f"^{docs.STATIC}/"]

_STORE_ERRORS: dict[type[StoreError], type[errors.ProblemError]] = {
    store_errors.AlreadyExists: errors.AlreadyExists,
    store_errors.NotFound: errors.NotFound,
    store_errors.UnknownReference: errors.Unprocessable,
    store_errors.Refused: errors.Refused,
    store_errors.CursorInvalid: errors.BadRequest,
    store_errors.CursorExpired: errors.CursorExpired,
    store_errors.StoreUnavailable: errors.Unavailable,
}


def _render(problem: Problem, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(_json.encode(problem), status_code=problem.status, media_type=_PROBLEM, headers=headers)


def _on_problem(_: Request[Any, Any, Any], exc: errors.ProblemError) -> Response[bytes]:
    return _render(exc.problem(), exc.headers)


def _on_store_error(request: Request[Any, Any, Any], exc: StoreError) -> Response[bytes]:
    kind = next((v for k, v in _STORE_ERRORS.items() if isinstance(exc, k)), errors.ProblemError)
    if kind is errors.ProblemError:
        return _on_crash(request, exc)
    headers = None
    if kind is errors.Unavailable:  # the database restarts or is overloaded: come back shortly
        settings: Settings = request.app.state.settings
        headers = {"Retry-After": str(settings.retry_after_s)}
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


def _operation_id(handler: HTTPRouteHandler, method: str, path: Any) -> str:
    """``sync_push``, ``admin_create_ward``: what a generated client names its calls."""
    tags = handler.resolve_tags()
    return f"{tags[0]}_{handler.handler_name}" if tags else handler.handler_name


@get("/", include_in_schema=False, sync_to_thread=False)
def console_redirect() -> Redirect:
    """The addresses a person tries first lead to the console."""
    return Redirect("/console/", status_code=302)


def create_app(settings: Settings | None = None, store: Store | None = None) -> Litestar:
    """The server. ``store`` (not yet opened) overrides the one ``settings.db_url`` names."""
    settings = settings or Settings.from_env()
    the_store = store or store_for(settings.db_url)
    metrics = Metrics(token=settings.metrics_token)
    blob_service = BlobService(the_store, blob_store_for(settings), settings)
    document = openapi.Completed(settings.max_page, _OPEN_PATHS)
    enrolment_service = EnrolmentService(the_store, settings)
    pulse = Pulse(the_store)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await the_store.open()
        app.state.store = the_store
        app.state.settings = settings
        service = SyncService(the_store, settings)
        metrics.watch(service.writer)
        service.writer.listeners.append(pulse.on_group)
        await service.start()
        app.state.service = service
        app.state.supervision = SupervisionService(the_store, service.writer, service.hlc, service.fleet)
        app.state.lists = RecordLists(the_store, settings.default_timezone)
        await blob_service.start()
        try:
            yield
        finally:
            await pulse.stop()
            await blob_service.stop()
            await service.stop()
            await the_store.close()

    def service(request: Request[Any, Any, Any]) -> SyncService:
        return request.app.state.service  # type: ignore[no-any-return]

    def supervision(request: Request[Any, Any, Any]) -> SupervisionService:
        return request.app.state.supervision  # type: ignore[no-any-return]

    def blobs() -> BlobService:
        return blob_service

    def enrolment() -> EnrolmentService:
        return enrolment_service

    def lists(request: Request[Any, Any, Any]) -> RecordLists:
        return request.app.state.lists  # type: ignore[no-any-return]

    app = Litestar(
        route_handlers=[
            health,
            metrics_endpoint,
            SyncController,
            AdminController,
            ReportsController,
            ConflictsController,
            RecordsController,
            SearchController,
            DevicesController,
            EnrolController,
            # blob bodies have their own limit (streamed to the blob store, never held whole)
            Router(path="/", route_handlers=[BlobsController], request_max_body_size=settings.max_blob_bytes),
            docs.docs_router(document),
            webapp_router(),  # the officers' handheld app (no token: it must load before enrolment)
            console_router(the_store, ConsoleAuth(the_store), pulse),
            console_redirect,
        ],
        lifespan=[lifespan],
        # OPTIONS too (Litestar exempts it by default): the role guards need a caller, and
        # without one an OPTIONS on a guarded route was a 500. A browser's preflight (OPTIONS
        # with Origin) never gets here: Litestar's CORS layer answers it before routing.
        middleware=[DefineMiddleware(TokenAuthMiddleware, exclude=_OPEN_PATHS, exclude_http_methods=[])],
        dependencies={
            "service": Provide(service, sync_to_thread=False),
            "supervision": Provide(supervision, sync_to_thread=False),
            "blobs": Provide(blobs, sync_to_thread=False),
            "enrolment": Provide(enrolment, sync_to_thread=False),
            "lists": Provide(lists, sync_to_thread=False),
        },
        exception_handlers={
            errors.ProblemError: _on_problem,
            StoreError: _on_store_error,
            HTTPException: _on_http_error,
            Exception: _on_crash,
        },
        request_max_body_size=settings.max_body_bytes,
        cors_config=CORSConfig(allow_origins=settings.origins(), max_age=600) if settings.origins() else None,
        openapi_config=OpenAPIConfig(
            title="patrol-sync",
            version="1",
            description="Offline-first sync for ward security patrols and premises inspections (protocol v1).",
            path="/schema",
            render_plugins=[docs.WireDocument(document)],
            use_handler_docstrings=True,
            operation_id_creator=_operation_id,
        ),
        debug=False,
        logging_config=None,  # logging is configured by whoever runs the app (`serve`: observability.logging_config)
        state=State({"metrics": metrics}),
    )
    # Outside routing, so that unknown paths and refused requests are counted, logged
    # with a request id, and answered as problems too (app-level middleware runs only
    # once a route is found). ``asgi_handler`` is what ``Litestar.__call__`` calls.
    # Compression there too, so that every answer over 1 KiB is compressed when the client
    # offers an encoding (brotli, else gzip; PROTOCOL.md 1), problems and refusals included;
    # not blob bytes (photos do not shrink, and ranges must stay byte ranges).
    compression = CompressionConfig(
        backend="brotli", minimum_size=1025, brotli_quality=5, gzip_compress_level=6, gzip_fallback=True, exclude=["^/v1/blobs/sha256:"]
    )
    app.asgi_handler = RequestContext(CompressionMiddleware(Limiter(app.asgi_handler, settings, metrics, the_store), compression), metrics)
    if settings.proxies():  # outermost: the access line and the limiter see the real client
        app.asgi_handler = ProxyHeadersMiddleware(app.asgi_handler, trusted_hosts=settings.proxies())  # type: ignore[arg-type,assignment]
    return app
