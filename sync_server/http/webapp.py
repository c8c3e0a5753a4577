"""The officers' handheld app (PROTOCOL.md section 10), served at ``/app/``.

The app is plain ES modules, a stylesheet, a service worker and a manifest in
``webapp/static``: no build step, so the files the browser tests run are the files
served. Its one dynamic file is ``/app/schema.json``: the JSON Schema export of the
wire vocabulary (the same types the server validates pushes with), completed with
each ranked field's order, so the app builds its forms and checks its values from
what the server will accept, never from a copy that could drift.

None of it needs a token (the auth middleware leaves ``/app`` out): the shell must
load on a phone that has not enrolled yet, and it holds no data.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import msgspec
from litestar import Response, Router, get
from litestar.static_files import create_static_files_router

from schemas import COLLECTIONS
from schemas.jsonschema import document

__all__ = ["STATIC_DIR", "webapp_router"]

STATIC_DIR = Path(__file__).parent.parent / "webapp" / "static"


@functools.cache
def _schema() -> bytes:
    doc: dict[str, Any] = document()
    doc["x-ranks"] = {
        name: {f.name: dict(f.rank) for f in spec.fields.values() if f.rank} for name, spec in COLLECTIONS.items()
    }
    return msgspec.json.encode(doc)


@get("/app/schema.json", include_in_schema=False)
async def app_schema() -> Response[bytes]:
    """The schema the server validates with, for the app's forms (no-cache: a new server
    version's rules reach the phone on its next load; the service worker keeps a copy)."""
    return Response(_schema(), media_type="application/json", headers={"Cache-Control": "no-cache"})


@functools.cache
def _service_worker() -> bytes:
    """``sw.js`` with its cache named after a hash of every file of the app, so that
    any change to them reaches the phones as a new service worker with a fresh cache."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(STATIC_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    digest.update(_schema())
    return (STATIC_DIR / "sw.js").read_bytes().replace(b"__VERSION__", digest.hexdigest()[:16].encode())


@get("/app/sw.js", include_in_schema=False)
async def service_worker() -> Response[bytes]:
    return Response(_service_worker(), media_type="text/javascript", headers={"Cache-Control": "no-cache"})


def webapp_router() -> Router:
    """``/app/`` (the shell, its modules and assets) and ``/app/schema.json``."""
    files = create_static_files_router(
        path="/app",
        directories=[STATIC_DIR],
        html_mode=True,
        include_in_schema=False,
        name="webapp",
        # revalidated on every load; the service worker serves them offline
        cache_control=None,
    )
    return Router(path="/", route_handlers=[app_schema, service_worker, files], include_in_schema=False)
