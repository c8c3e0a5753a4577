"""Interactive API docs at ``/docs``: Swagger UI over the completed OpenAPI document.

Ward offices have no internet, so nothing comes from a CDN: Swagger UI is vendored
from the npm registry (``static/vendor/swagger-ui-dist-<version>/``, with its
licence) and served by this server under ``/static``. The page, the assets and the
document need no token; "Authorize" takes one for "Try it out".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.enums import MediaType
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

from .openapi import Completed

__all__ = ["PATH", "STATIC", "SWAGGER_UI", "DocsPage", "WireDocument", "docs_router"]

PATH = "/docs"
STATIC = "/static"
SWAGGER_UI = "swagger-ui-dist-5.35.0"
_FOLDER = Path(__file__).parent.parent / "static"


class WireDocument(JsonRenderPlugin):
    """Serves ``/schema/openapi.json``: the completed document (``sync_server/http/openapi.py``)."""

    def __init__(self, completed: Completed) -> None:
        super().__init__()
        self.completed = completed

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, self.completed.document(request.app, openapi_schema))


class DocsPage(SwaggerRenderPlugin):
    """Litestar's Swagger UI page, pointed at the vendored assets."""

    def __init__(self, completed: Completed) -> None:
        vendor = f"{STATIC}/vendor/{SWAGGER_UI}"
        super().__init__(
            js_url=f"{vendor}/swagger-ui-bundle.js",
            css_url=f"{vendor}/swagger-ui.css",
            standalone_preset_js_url=f"{vendor}/swagger-ui-standalone-preset.js",
            favicon=f'<link rel="icon" type="image/png" href="{vendor}/favicon-32x32.png">',
            path=PATH,
        )
        self.completed = completed

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, self.completed.document(request.app, openapi_schema))


def docs_router(completed: Completed) -> Router:
    """``/docs`` and the vendored assets under ``/static``."""
    page = DocsPage(completed)

    @get(PATH, media_type=MediaType.HTML, include_in_schema=False, sync_to_thread=False)
    def docs(request: Request[Any, Any, Any]) -> bytes:
        return page.render(request, page.completed.document(request.app))

    # the folder names the version: a browser may keep what it fetched
    static = create_static_files_router(path=STATIC, directories=[_FOLDER], include_in_schema=False, cache_control=CacheControlHeader(max_age=7 * 86400))
    return Router(path="/", route_handlers=[docs, static])
