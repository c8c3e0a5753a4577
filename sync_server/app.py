"""The Litestar application: ``create_app(settings)``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, Request, Router, get
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.handlers import HTTPRouteHandler
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.response import Redirect
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from . import stagetimes
from .blobs import BlobService, blob_store_for
from .console import console_router
from .http import docs, openapi, problems
from .http.auth import TokenAuthMiddleware
from .http.compression import Compression
from .http.controllers import (
    AdminController,
    BlobsController,
    ConflictsController,
    DevicesController,
    EnrolController,
    MeController,
    RecordsController,
    ReportsController,
    SearchController,
    SyncController,
    health,
)
from .http.limits import Limiter
from .http.observability import Metrics, RequestContext, metrics_endpoint
from .http.webapp import webapp_router
from .services.console_sessions import ConsoleAuth
from .services.enrolment import EnrolmentService
from .services.identity import Administration
from .services.listing import RecordLists
from .services.pulse import Pulse
from .services.scope import ScopeService
from .services.supervision import SupervisionService
from .services.sync import SyncService
from .settings import Settings
from .stores import Store, store_for

__all__ = ["create_app"]

#: Paths the token middleware lets through (the OpenAPI document says so too).
_OPEN_PATHS = ["^/healthz$", "^/schema", "^/metrics$", "^/v1/enrol$", "^/app(/|$)", "^/console(/|$)", "^/$", f"^{docs.PATH}$", f"^{docs.STATIC}/"]

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
    the_store = store or store_for(settings.db_url, sqlite_writer=settings.sqlite_writer)
    metrics = Metrics(token=settings.metrics_token)
    blob_service = BlobService(the_store, blob_store_for(settings), settings)
    document = openapi.Completed(settings.max_page, _OPEN_PATHS)
    enrolment_service = EnrolmentService(the_store, settings)
    scope_service = ScopeService(the_store)
    administration = Administration(the_store)
    pulse = Pulse(the_store)
    console_auth = ConsoleAuth(the_store)

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
            stagetimes.report()

    def service(request: Request[Any, Any, Any]) -> SyncService:
        return request.app.state.service  # type: ignore[no-any-return]

    def supervision(request: Request[Any, Any, Any]) -> SupervisionService:
        return request.app.state.supervision  # type: ignore[no-any-return]

    def blobs() -> BlobService:
        return blob_service

    def enrolment() -> EnrolmentService:
        return enrolment_service

    def scopes() -> ScopeService:
        return scope_service

    def lists(request: Request[Any, Any, Any]) -> RecordLists:
        return request.app.state.lists  # type: ignore[no-any-return]

    def admin() -> Administration:
        return administration

    def the_metrics() -> Metrics:
        return metrics

    def sessions() -> ConsoleAuth:
        return console_auth

    def the_pulse() -> Pulse:
        return pulse

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
            MeController,
            # blob bodies have their own limit (streamed to the blob store, never held whole)
            Router(path="/", route_handlers=[BlobsController], request_max_body_size=settings.max_blob_bytes),
            docs.docs_router(document),
            webapp_router(),  # the officers' handheld app (no token: it must load before enrolment)
            console_router(),
            console_redirect,
        ],
        lifespan=[lifespan],
        # OPTIONS too (Litestar exempts it by default): the role guards need a caller, and
        # without one an OPTIONS on a guarded route was a 500. A browser's preflight (OPTIONS
        # with Origin) never gets here: Litestar's CORS layer answers it before routing.
        middleware=[DefineMiddleware(TokenAuthMiddleware, principal_of=administration.principal, exclude=_OPEN_PATHS, exclude_http_methods=[])],
        dependencies={
            "service": Provide(service, sync_to_thread=False),
            "supervision": Provide(supervision, sync_to_thread=False),
            "blobs": Provide(blobs, sync_to_thread=False),
            "enrolment": Provide(enrolment, sync_to_thread=False),
            "lists": Provide(lists, sync_to_thread=False),
            "scopes": Provide(scopes, sync_to_thread=False),
            "admin": Provide(admin, sync_to_thread=False),
            "metrics": Provide(the_metrics, sync_to_thread=False),
            "auth": Provide(sessions, sync_to_thread=False),  # the console's sessions
            "pulse": Provide(the_pulse, sync_to_thread=False),  # the console's live pages
        },
        exception_handlers=problems.EXCEPTION_HANDLERS,
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
    # (large push answers at a cheaper brotli quality: http/compression.py)
    app.asgi_handler = RequestContext(Compression(Limiter(app.asgi_handler, settings, metrics, administration.principal)), metrics)
    if settings.proxies():  # outermost: the access line and the limiter see the real client
        app.asgi_handler = ProxyHeadersMiddleware(app.asgi_handler, trusted_hosts=settings.proxies())  # type: ignore[arg-type,assignment]
    return app
