"""Requests to the server: auth header, retries with backoff, errors as the SDK's tree.

All I/O goes through an ``httpx.AsyncClient`` the caller may inject, so tests swap
in a transport that fails on purpose. What is retried:

- network errors and timeouts, for requests that are safe to send twice (every GET,
  and pushes: a change set id makes a resend harmless); other requests only when
  the connection was never made;
- 5xx and 429 answers, for the same requests, honouring ``Retry-After``.

Nothing else is retried: a 4xx says the request itself is wrong, and sending it
again would get the same answer.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx
import msgspec

from schemas import Problem

from .errors import ProtocolError, TransportError, error_for
from .types import RetryPolicy

__all__ = ["Http"]

T = TypeVar("T")
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_problem = msgspec.json.Decoder(Problem)
Sleep = Callable[[float], Awaitable[None]]


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
        self._auth = {"Authorization": f"Bearer {token}"}
        #: requests sent again since this client was made (reports read the difference)
        self.retries = 0

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        safe: bool = True,
    ) -> httpx.Response:
        """The response to a request, once it is a 2xx; raises the SDK's errors otherwise."""
        url = self.base_url + path
        all_headers = {**self._auth, **(headers or {})}
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        attempts = max(1, self.retry.attempts)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await self.http.request(method, url, params=query, content=content, headers=all_headers)
            except httpx.TransportError as exc:
                if last or not (safe or isinstance(exc, httpx.ConnectError)):
                    raise TransportError(f"{method} {path}: {type(exc).__name__}: {exc or 'no details'} (after {attempt + 1} attempts)") from exc
                await self._pause(attempt, None)
                continue
            if response.status_code < 400:
                return response
            if response.status_code in _RETRY_STATUS and safe and not last:
                await self._pause(attempt, _retry_after(response.headers.get("retry-after")))
                continue
            raise error_for(_read_problem(response), method, path)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _pause(self, attempt: int, retry_after: float | None) -> None:
        self.retries += 1
        await self.sleep(self.retry.delay(attempt, self.rng, retry_after))

    async def get(self, path: str, kind: type[T], params: Mapping[str, Any] | None = None) -> T:
        response = await self.send("GET", path, params=params)
        return decode(response, kind)

    async def post(self, path: str, body: Any, kind: type[T], *, safe: bool = False) -> T:
        content = msgspec.json.encode(body)
        response = await self.send("POST", path, content=content, headers={"Content-Type": "application/json"}, safe=safe)
        return decode(response, kind)


_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def decode(response: httpx.Response, kind: type[T]) -> T:
    """Decode a 2xx answer with a wire type (lenient: new fields are ignored)."""
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.json.Decoder(kind)
    try:
        return decoder.decode(response.content)  # type: ignore[no-any-return]
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        request = response.request
        raise ProtocolError(f"{request.method} {request.url.path}: unreadable answer: {exc}") from None


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _read_problem(response: httpx.Response) -> Problem:
    try:
        return _problem.decode(response.content)
    except (msgspec.DecodeError, msgspec.ValidationError):
        text = response.text.strip().replace("\n", " ")[:200] or response.reason_phrase
        return Problem(type="about:blank", title=response.reason_phrase or "Error", status=response.status_code, detail=text)


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
