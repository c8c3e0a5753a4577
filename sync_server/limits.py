"""Backpressure: a server under a burst answers "later", never falls over or hangs.

Three bounds, each refusing at once with a problem document and ``Retry-After``:

- requests being handled by this process (``Settings.max_inflight``): 503;
- of them, requests carrying one token (``max_inflight_per_device``): 429, so one
  runaway client cannot take the whole process;
- changes waiting for the push writer (``max_queued_changes``): 503, raised by the
  writer itself (``sync_server/writer.py``).

And one deadline: a request with no answer started after ``request_timeout_s``
is cancelled and answered 503 (pushes are shielded: a change set already queued
commits whole or not at all, and its retry gets the stored answer).
``/healthz`` and ``/metrics`` are never refused, so a monitor sees the overload.
"""

from __future__ import annotations

import asyncio
import collections
import logging

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from schemas import Problem

from .errors import ProblemError, TooManyRequests, Unavailable
from .observability import Metrics
from .settings import Settings

__all__ = ["Limiter"]

log = logging.getLogger("patrol_sync.limits")
_EXEMPT = frozenset({"/healthz", "/metrics"})
_json = msgspec.json.Encoder()


class Limiter:
    """ASGI layer in front of routing (see the module docstring)."""

    def __init__(self, app: ASGIApp, settings: Settings, metrics: Metrics) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.in_flight = 0
        self._per_token: collections.Counter[bytes] = collections.Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["path"] in _EXEMPT:
            await self.app(scope, receive, send)
            return
        settings = self.settings
        key = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        if self.in_flight >= settings.max_inflight:
            await self._refuse(send, "in_flight", Unavailable(f"the server is handling {self.in_flight} requests; try again shortly"))
            return
        if key and self._per_token[key] >= settings.max_inflight_per_device:
            await self._refuse(send, "per_device", TooManyRequests(f"{self._per_token[key]} requests of this device are in progress; wait for them"))
            return
        self.in_flight += 1
        self._per_token[key] += 1
        try:
            await self._within_deadline(scope, receive, send)
        finally:
            self.in_flight -= 1
            self._per_token[key] -= 1
            if not self._per_token[key]:
                del self._per_token[key]

    async def _within_deadline(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                deadline.reschedule(None)  # answering now: let it finish
            await send(message)

        try:
            async with asyncio.timeout(self.settings.request_timeout_s) as deadline:
                await self.app(scope, receive, watch)
        except TimeoutError:
            if started:
                raise
            log.warning("no answer within %s s; answered 503", self.settings.request_timeout_s)
            await self._refuse(send, "deadline", Unavailable("the server could not answer in time; try again shortly"))

    async def _refuse(self, send: Send, reason: str, error: ProblemError) -> None:
        self.metrics.shed.labels(reason).inc()
        problem: Problem = error.problem()
        body = _json.encode(problem)
        headers = [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(self.settings.retry_after_s).encode()),
        ]
        await send({"type": "http.response.start", "status": problem.status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
