"""Backpressure and fair use: a server under a burst, or under one hostile device,
answers "later" to the one at fault and never falls over, hangs or refuses the others.

Bounds, each refusing at once with a problem document and ``Retry-After``:

- requests being handled by this process (``Settings.max_inflight``): 503;
- per **device** (the device the bearer token names, looked up here, never the raw
  header text: ``"Bearer" + N spaces + token`` is the same device): requests in
  flight (``max_inflight_per_device``) and a rate (a token bucket of
  ``device_rate_per_s``, ``device_burst`` deep): 429. Only authenticated devices get
  an entry, so unknown tokens cannot grow the limiter's state; they are answered 401
  by authentication before their body is read;
- changes waiting for the push writer (``max_queued_changes``): 503, raised by the
  writer itself (``sync_server/services/writer.py``).

And deadlines: a request with no answer started after ``request_timeout_s`` is
cancelled and answered 503 (pushes are shielded: a change set already queued commits
whole or not at all, and its retry gets the stored answer). A request body must
arrive within ``body_timeout_s`` (else 408), so slow bodies cannot hold requests in
flight; a blob upload is held to progress instead (``blob_min_bytes_per_window``
every ``body_timeout_s``: a photo over 2G is slow, not hostile), and its answer
deadline starts when its last byte arrives.
``/healthz`` and ``/metrics`` are never refused, so a monitor sees the overload;
``/console/live`` (server-sent events, open up to a minute each) takes no request slot
and is bounded per console session instead (``services/pulse.py``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from schemas import Problem

from ..errors import ProblemError, RequestTimeout, TooManyRequests, Unavailable
from ..settings import Settings
from . import problems
from .auth import PRINCIPAL_KEY, PrincipalOf, bearer_token
from .observability import Metrics

__all__ = ["Limiter"]

log = logging.getLogger("patrol_sync.limits")
#: never refused here: the monitors, and the console's live streams (each held open up to a
#: minute; ``services/pulse.py`` gives each session a few and the worker a bound of its own)
_EXEMPT = frozenset({"/healthz", "/metrics", "/console/live"})
_BLOB_PATH = "/v1/blobs/"
#: devices with a bucket, past which idle ones are forgotten (one entry per authenticated device)
_MAX_DEVICES = 10_000


class _Bucket:
    """A device's token bucket and requests in flight."""

    __slots__ = ("tokens", "at", "in_flight")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at
        self.in_flight = 0


class Limiter:
    """ASGI layer in front of routing (see the module docstring)."""

    def __init__(self, app: ASGIApp, settings: Settings, metrics: Metrics, principal_of: PrincipalOf | None = None) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.principal_of = principal_of
        self.in_flight = 0
        self._devices: dict[str, _Bucket] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["path"] in _EXEMPT:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.settings.max_inflight:
            await self._refuse(send, "in_flight", Unavailable(f"the server is handling {self.in_flight} requests; try again shortly"))
            return
        self.in_flight += 1
        try:
            device = await self._device(scope)
            bucket = self._admit(device) if device is not None else None
            if isinstance(bucket, tuple):
                await self._refuse(send, *bucket)
                return
            try:
                await self._within_deadline(scope, receive, send)
            finally:
                if bucket is not None:
                    bucket.in_flight -= 1
        finally:
            self.in_flight -= 1

    async def _device(self, scope: Scope) -> str | None:
        """The device the request's token names (None: no token, or not a valid one);
        the principal is left in the scope for authentication, so one lookup serves both."""
        if self.principal_of is None:
            return None
        header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        token = bearer_token(header.decode("latin-1"))
        if token is None:
            return None
        try:
            principal = await self.principal_of(token)
        except Exception:  # the store is down: authentication answers for it
            log.debug("token lookup for the limiter failed", exc_info=True)
            return None
        scope.setdefault("state", {})[PRINCIPAL_KEY] = principal
        return principal.device_id if principal is not None else None

    def _admit(self, device: str) -> _Bucket | tuple[str, ProblemError, float]:
        """The device's bucket, one request taken from it; or why it is refused, and when to come back."""
        settings = self.settings
        now = time.monotonic()
        bucket = self._devices.get(device)
        if bucket is None:
            if len(self._devices) >= _MAX_DEVICES:
                self._forget_idle(now)
            bucket = self._devices[device] = _Bucket(float(settings.device_burst), now)
        rate = settings.device_rate_per_s
        bucket.tokens = min(float(settings.device_burst), bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.in_flight >= settings.max_inflight_per_device:
            return "per_device", TooManyRequests(f"{bucket.in_flight} requests of this device are in progress; wait for them"), settings.retry_after_s
        if bucket.tokens < 1:
            wait = (1 - bucket.tokens) / rate if rate > 0 else 60.0
            return "rate", TooManyRequests(f"this device makes requests faster than {rate:g} a second; slow down"), wait
        bucket.tokens -= 1
        bucket.in_flight += 1
        return bucket

    def _forget_idle(self, now: float) -> None:
        """Drop devices with nothing in flight and a full bucket: they are as if new."""
        settings = self.settings
        for device, bucket in list(self._devices.items()):
            if not bucket.in_flight and bucket.tokens + (now - bucket.at) * settings.device_rate_per_s >= settings.device_burst:
                del self._devices[device]

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
                body = _BodyClock(receive, self.settings, _is_upload(scope), deadline)
                await self.app(scope, body, watch)
        except TimeoutError:
            if started:
                raise
            log.warning("no answer within %s s; answered 503", self.settings.request_timeout_s)
            await self._refuse(send, "deadline", Unavailable("the server could not answer in time; try again shortly"))

    async def _refuse(self, send: Send, reason: str, error: ProblemError, retry_after: float | None = None) -> None:
        self.metrics.shed.labels(reason).inc()
        problem: Problem = error.problem()
        body = problems.encode(problem)
        wait = self.settings.retry_after_s if retry_after is None else max(1, math.ceil(retry_after))
        headers = [
            (b"content-type", problems.MEDIA_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(wait).encode()),
        ]
        await send({"type": "http.response.start", "status": problem.status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _is_upload(scope: Scope) -> bool:
    return scope.get("method") in ("PUT", "PATCH", "POST") and scope["path"].startswith(_BLOB_PATH)


class _BodyClock:
    """``receive`` with a deadline on the request body (see the module docstring).

    Raises :class:`RequestTimeout` (408) into whoever reads the body; once the body is
    whole, ``receive`` is passed through untouched (a wait for the disconnect)."""

    __slots__ = ("receive", "settings", "upload", "deadline", "done", "window_end", "window_bytes")

    def __init__(self, receive: Receive, settings: Settings, upload: bool, deadline: asyncio.Timeout) -> None:
        self.receive = receive
        self.settings = settings
        self.upload = upload
        self.deadline = deadline
        self.done = False
        self.window_end = asyncio.get_running_loop().time() + settings.body_timeout_s
        self.window_bytes = 0
        if upload:
            deadline.reschedule(None)  # an upload's answer deadline starts with its last byte

    async def __call__(self) -> ReceiveMessage:
        if self.done:
            return await self.receive()
        loop = asyncio.get_running_loop()
        while True:
            remaining = self.window_end - loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                async with asyncio.timeout(remaining):
                    message = await self.receive()
                break
            except TimeoutError:
                if not self._next_window(loop.time()):
                    raise self._too_slow() from None
        if message["type"] == "http.request":
            self.window_bytes += len(message.get("body", b""))
            if not message.get("more_body", False):
                self.done = True
                if self.upload:
                    self.deadline.reschedule(loop.time() + self.settings.request_timeout_s)
            elif loop.time() >= self.window_end and not self._next_window(loop.time()):
                raise self._too_slow()
        else:
            self.done = True
        return message

    def _next_window(self, now: float) -> bool:
        """An upload that brought enough in this window gets another; anything else is late."""
        if not self.upload or self.window_bytes < self.settings.blob_min_bytes_per_window:
            return False
        self.window_end = now + self.settings.body_timeout_s
        self.window_bytes = 0
        return True

    def _too_slow(self) -> RequestTimeout:
        if self.upload:
            return RequestTimeout(
                f"the upload brought under {self.settings.blob_min_bytes_per_window} bytes in {self.settings.body_timeout_s:g} s; "
                "resume it where it stopped"
            )
        return RequestTimeout(f"the request body did not arrive within {self.settings.body_timeout_s:g} s")
