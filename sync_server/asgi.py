"""Entry point for ASGI servers: ``uvicorn --factory sync_server.asgi:app_factory``.

Settings come from ``PATROL_SYNC_*`` variables, so every worker process builds
the same app."""

from __future__ import annotations

from litestar import Litestar

from .app import create_app
from .gcpolicy import tune_for_serving
from .settings import Settings

__all__ = ["app_factory"]


def app_factory() -> Litestar:
    app = create_app(Settings.from_env())
    tune_for_serving()
    return app
