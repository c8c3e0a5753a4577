"""The server on loopback, in this process: one way for the tests, the demo and the benchmarks.

uvicorn serves :func:`sync_server.app.create_app` on ``127.0.0.1`` (a secure context
for the browser, unreachable from outside), either as a task of the running event
loop (``async with LoopbackServer(settings)``) or on a thread of its own for callers
that block (``with LoopbackServer(settings)``: the blocking SDK client, Playwright's
blocking API). Port 0 picks a free port; once started, the server keeps that port, so
``stop()`` then ``start()`` comes back at the same address (a phone that lost its
server finds it again). The start-up hooks run, and an error in them is raised here.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType

import uvicorn
from litestar import Litestar

from .app import create_app
from .settings import Settings

__all__ = ["LoopbackServer", "free_port"]

HOST = "127.0.0.1"
_START_TIMEOUT_S = 30.0


def free_port() -> int:
    """A TCP port free on loopback now (for a server started in another process)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class LoopbackServer:
    """One app served on loopback; ``url`` is its address once started.

    ``graceful_shutdown_s`` bounds how long a stop waits for open streams (the
    console's live stream would otherwise hold it for its minute)."""

    def __init__(self, settings: Settings, port: int = 0, *, graceful_shutdown_s: int | None = None) -> None:
        self.settings = settings
        self.port = port
        self.graceful_shutdown_s = graceful_shutdown_s
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def app(self) -> Litestar:
        """The app being served (tests reach its state to count store calls)."""
        assert self.server is not None, "the server is not started"
        app = self.server.config.app
        assert isinstance(app, Litestar)
        return app

    def _new_server(self) -> uvicorn.Server:
        config = uvicorn.Config(
            create_app(self.settings), host=HOST, port=self.port, log_level="warning", lifespan="on",
            timeout_graceful_shutdown=self.graceful_shutdown_s,
        )
        self.server = uvicorn.Server(config)
        return self.server

    def _bound(self, server: uvicorn.Server) -> None:
        self.port = int(server.servers[0].sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Serve as a task of the running event loop; returns once it accepts connections."""
        server = self._new_server()
        self.task = asyncio.create_task(server.serve())
        while not server.started:
            if self.task.done():
                self.task.result()
                raise RuntimeError("the server stopped before it started")
            await asyncio.sleep(0.005)
        self._bound(server)

    async def stop(self) -> None:
        assert self.server is not None and self.task is not None, "the server is not started"
        self.server.should_exit = True
        await self.task

    async def wait(self) -> None:
        """Until the server stops of itself (Ctrl-C or SIGTERM under ``patrol-sync demo --serve``)."""
        assert self.task is not None, "the server is not started"
        await self.task

    def start_thread(self) -> None:
        """Serve on a thread of its own; returns once it accepts connections."""
        server = self._new_server()
        self._thread = threading.Thread(target=server.run, name="loopback-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        self._bound(server)

    def stop_thread(self) -> None:
        assert self.server is not None and self._thread is not None, "the server is not started"
        self.server.should_exit = True
        self._thread.join(_START_TIMEOUT_S)

    async def __aenter__(self) -> LoopbackServer:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    def __enter__(self) -> LoopbackServer:
        self.start_thread()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop_thread()
