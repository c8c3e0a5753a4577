"""Requests to the server: auth header, retries with backoff, errors as the SDK's tree.

All I/O goes through an ``httpx.AsyncClient`` the caller may inject, so tests swap
in a transport that fails on purpose. What is retried:

- network errors and timeouts, for requests that are safe to send twice (every GET,
  and pushes: a change set id makes a resend harmless); other requests only when
  the connection was never made;
- 5xx, 429 and 408 answers, for the same requests, honouring ``Retry-After`` (408:
  the body came too slowly for the server, a slow link's hiccup, like a timeout).

Nothing else is retried: a 4xx says the request itself is wrong, and sending it
again would get the same answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx
import msgspec

from schemas import Problem

from .errors import ProtocolError, TransportError, error_for
from .types import RetryPolicy

__all__ = ["Http", "Reply"]

T = TypeVar("T")
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_problem = msgspec.json.Decoder(Problem)
Sleep = Callable[[float], Awaitable[None]]


@dataclasses.dataclass(frozen=True, slots=True)
class Reply:
    """A 2xx answer, read whole.

    Bodies are read from the stream into bytes the SDK owns: an ``httpx.Response``
    sits in a reference cycle with its stream, so a body kept on it lives until the
    cyclic garbage collector runs, and pages of a long pull would pile up meanwhile."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    method: str
    path: str

    @property
    def text(self) -> str:
        return self.content.decode("utf-8")


class Http:
    """One server, one token: sends requests, retries what may be retried."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        token: str,
        *,
        base_url: str = "",
        retry: RetryPolicy | None = None,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.sleep: Sleep = sleep or asyncio.sleep
        self.rng = rng or random.Random()
        self.set_token(token)
        #: requests sent again since this client was made (reports read the difference)
        self.retries = 0

    def set_token(self, token: str) -> None:
        """Send ``token`` from the next request on (empty: no ``Authorization`` header, for
        the calls that need none, such as exchanging an enrolment code)."""
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        safe: bool = True,
        expect: frozenset[int] = frozenset(),
        attempts: int | None = None,
    ) -> Reply:
        """The answer to a request, once it is a 2xx (or a status in ``expect``, which the
        caller handles itself); raises the SDK's errors otherwise. ``attempts`` overrides
        the retry policy's (1: the caller decides what to send again, as a resumable
        upload does after asking where the server's part ends)."""
        url = self.base_url + path
        all_headers = {**self._auth, **(headers or {})}
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        attempts = max(1, self.retry.attempts if attempts is None else attempts)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            request = self._build(method, url, query, content, all_headers)
            try:
                response = await self.http.send(request, stream=True)
                try:
                    body = b"".join([chunk async for chunk in response.aiter_bytes()])
                finally:
                    await response.aclose()
            except httpx.TransportError as exc:
                if last or not (safe or isinstance(exc, httpx.ConnectError)):
                    raise TransportError(f"{method} {path}: {type(exc).__name__}: {exc or 'no details'} (after {attempt + 1} attempts)") from exc
                await self._pause(attempt, None)
                continue
            status = response.status_code
            if status < 400 or status in expect:
                return Reply(status, response.headers, body, method, path)
            if status in _RETRY_STATUS and safe and not last:
                await self._pause(attempt, _retry_after(response.headers.get("retry-after")))
                continue
            raise error_for(_read_problem(status, response.reason_phrase, body), method, path)
        raise AssertionError("unreachable")  # pragma: no cover

    def _build(self, method: str, url: str, query: dict[str, str], content: bytes | None, headers: dict[str, str]) -> httpx.Request:
        """A request whose body, when large, goes out in pieces with its length declared:
        httpx's write timeout then bounds each piece, not the whole body, so a slow link
        that keeps moving is never cut while a stalled one still is (timeouts follow
        progress)."""
        if content is None or len(content) <= _PIECE:
            request = self.http.build_request(method, url, params=query, content=content, headers=headers)
        else:
            headers = {**headers, "Content-Length": str(len(content))}
            request = self.http.build_request(method, url, params=query, content=_pieces(content), headers=headers)
        # httpx's defaults that say nothing (HTTP/1.1 keeps connections alive anyway): an
        # idle sync on 2G is one small request, and these were a fifth of it
        for name in ("accept", "connection"):
            if request.headers.get(name) in ("*/*", "keep-alive"):
                del request.headers[name]
        if request.headers.get("user-agent", "").startswith("python-httpx/"):
            if "x-client" in request.headers:  # names the SDK already
                del request.headers["user-agent"]
            else:
                request.headers["user-agent"] = "patrol-sync-py"
        if request.headers.get("accept-encoding") == "gzip, deflate, br":
            request.headers["accept-encoding"] = "br, gzip"
        return request

    async def _pause(self, attempt: int, retry_after: float | None) -> None:
        self.retries += 1
        await self.sleep(self.retry.delay(attempt, self.rng, retry_after))

    async def get(self, path: str, kind: type[T], params: Mapping[str, Any] | None = None) -> T:
        response = await self.send("GET", path, params=params)
        return decode(response, kind)

    async def post(self, path: str, body: Any, kind: type[T], *, safe: bool = False) -> T:
        return await self.send_json("POST", path, body, kind, safe=safe)

    async def send_json(self, method: str, path: str, body: Any, kind: type[T], *, safe: bool = False) -> T:
        content = msgspec.json.encode(body)
        response = await self.send(method, path, content=content, headers={"Content-Type": "application/json"}, safe=safe)
        return decode(response, kind)


_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}
#: the piece a large body is written in (a few seconds of a 2G link)
_PIECE = 16 * 1024


async def _pieces(content: bytes) -> AsyncIterator[bytes]:
    view = memoryview(content)
    for start in range(0, len(content), _PIECE):
        yield bytes(view[start : start + _PIECE])


def decode(reply: Reply, kind: type[T]) -> T:
    """Decode a 2xx answer with a wire type (lenient: new fields are ignored)."""
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.json.Decoder(kind)
    try:
        return decoder.decode(reply.content)  # type: ignore[no-any-return]
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProtocolError(f"{reply.method} {reply.path}: unreadable answer: {exc}") from None


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _read_problem(status: int, reason: str, body: bytes) -> Problem:
    try:
        return _problem.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        text = body.decode("utf-8", "replace").strip().replace("\n", " ")[:200] or reason
        return Problem(type="about:blank", title=reason or "Error", status=status, detail=text)


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait, from ``Retry-After`` (seconds, or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
