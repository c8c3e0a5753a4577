"""The supervisors' console at ``/console/`` (PROTOCOL.md section 9): server-rendered
pages over the same services and scope rules as the API, signed in with a password
and a session cookie instead of a bearer token.

Where each page's data comes from: ``pages.py`` (overview, lists, record, search,
conflicts, fleet), ``forms.py`` (sign-in, resolve, live stream), ``admin.py``.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.di import Provide
from litestar.static_files import create_static_files_router

from ..errors import ProblemError
from ..stores import Store
from .admin import ConsoleAdmin
from .auth import ConsoleAuth
from .forms import ConsoleForms
from .live import Pulse
from .pages import ConsolePages
from .web import NotSignedIn, on_not_signed_in, on_problem

__all__ = ["ConsoleAuth", "Pulse", "console_router"]


def console_router(store: Store, auth: ConsoleAuth, pulse: Pulse) -> Router:
    """The console's routes, static files included (served by us: no CDN, no internet)."""
    static = create_static_files_router(
        path="/console/static", directories=[Path(__file__).parent / "static"], name="console-static", include_in_schema=False
    )
    return Router(
        path="/",
        route_handlers=[ConsolePages, ConsoleForms, ConsoleAdmin, static],
        dependencies={
            "auth": Provide(lambda: auth, sync_to_thread=False),
            "pulse": Provide(lambda: pulse, sync_to_thread=False),
            "store": Provide(lambda: store, sync_to_thread=False),
        },
        exception_handlers={NotSignedIn: on_not_signed_in, ProblemError: on_problem},
        include_in_schema=False,
    )
