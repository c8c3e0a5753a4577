"""The supervisors' console at ``/console/`` (PROTOCOL.md section 9): server-rendered
pages over the same services and scope rules as the API, signed in with a password
and a session cookie instead of a bearer token.

Where each page's data comes from: ``pages.py`` (overview, lists, record, search,
conflicts, fleet), ``forms.py`` (sign-in, resolve, live stream), ``admin.py``. Like the
API's controllers, the handlers hold services (sessions: ``services/console_sessions.py``,
live pages: ``services/pulse.py``, ``Administration``, ``SupervisionService``...) that
``create_app`` provides with the API's, never a store.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.static_files import create_static_files_router

from ..errors import ProblemError
from .admin import ConsoleAdmin
from .forms import ConsoleForms
from .pages import ConsolePages
from .web import NotSignedIn, on_not_signed_in, on_problem

__all__ = ["console_router"]


def console_router() -> Router:
    """The console's routes, static files included (served by us: no CDN, no internet).
    Their services (``auth``, ``pulse``, ``admin``...) come from ``create_app``'s dependencies."""
    static = create_static_files_router(
        path="/console/static", directories=[Path(__file__).parent / "static"], name="console-static", include_in_schema=False
    )
    return Router(
        path="/",
        route_handlers=[ConsolePages, ConsoleForms, ConsoleAdmin, static],
        exception_handlers={NotSignedIn: on_not_signed_in, ProblemError: on_problem},
        include_in_schema=False,
    )
