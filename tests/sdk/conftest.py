"""SDK fixtures: clients for the devices of the root ``world``, on files in tmp_path.

Every test here talks to a real server on loopback (the root ``server`` fixture);
the store behind it is whichever the root fixtures choose, so these tests never
look inside it, only at what the HTTP API answers.
"""

from __future__ import annotations

import dataclasses
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

from client_sdk import AsyncPatrolClient, RetryPolicy

from ..helpers import Api, World

USERS = {"lamson-h01": "u-ngoc", "lamson-h02": "u-hung", "phuson-h01": "u-lan", "sup-laptop": "u-minh", "admin-cli": "admin"}
#: retries without waiting: the delays are recorded, not slept
FAST = RetryPolicy(attempts=5, base_delay=0.001, max_delay=0.01)


class MakeClient(Protocol):
    def __call__(self, api: Api, *, name: str | None = None, **options: Any) -> AsyncPatrolClient: ...


@dataclasses.dataclass
class Sleeps:
    delays: list[float] = dataclasses.field(default_factory=list)

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def make_client(world: World, tmp_path: Path, sleeps: Sleeps) -> AsyncIterator[MakeClient]:
    """A factory of clients (not yet opened) for a world device; all closed at the end."""
    made: list[AsyncPatrolClient] = []

    def make(api: Api, *, name: str | None = None, **options: Any) -> AsyncPatrolClient:
        assert api.device_id is not None and api.token is not None
        options.setdefault("retry", FAST)
        options.setdefault("sleep", sleeps)
        client = AsyncPatrolClient(
            options.pop("base_url", world.base_url),
            token=api.token,
            device_id=api.device_id,
            user_id=USERS[api.device_id],
            path=tmp_path / f"{name or api.device_id}.db",
            **options,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture
async def h01(make_client: MakeClient, world: World) -> AsyncIterator[AsyncPatrolClient]:
    """Officer Ngọc's handheld (lam-son), opened."""
    async with make_client(world.officer_a) as client:
        yield client


@pytest.fixture
async def h02(make_client: MakeClient, world: World) -> AsyncIterator[AsyncPatrolClient]:
    """Officer Hùng's handheld (lam-son), opened."""
    async with make_client(world.officer_b) as client:
        yield client


Fault = Callable[[httpx.Request, int], Awaitable[str | None]]


class Forward(httpx.AsyncBaseTransport):
    """A real transport with a hook run before each request: ``fault(request, n)`` may
    return "before" (fail without sending: the network is down), "after" (send it, let
    the server answer, then lose the answer), a status code as text (answer that
    instead, without sending), or None (pass it through)."""

    def __init__(self, fault: Fault | None = None) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.fault = fault
        self.seen: list[httpx.Request] = []

    def paths(self, method: str = "POST") -> list[str]:
        return [r.url.path for r in self.seen if r.method == method]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        n = len(self.seen)
        seen = await _plain(request)
        self.seen.append(seen)
        what = await self.fault(seen, n) if self.fault is not None else None
        if what == "before":
            raise httpx.ConnectError("network down (injected)", request=request)
        if what is not None and what.isdigit():
            problem = {"type": "about:blank", "title": "injected", "status": int(what), "detail": "injected failure"}
            return httpx.Response(int(what), headers={"Retry-After": "0"}, json=problem)
        response = await self.inner.handle_async_request(request)
        if what == "after":
            await response.aread()
            await response.aclose()
            raise httpx.ReadError("connection lost after the request was sent (injected)", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
async def forward() -> AsyncIterator[Callable[[Fault | None], httpx.AsyncClient]]:
    """Makes ``httpx.AsyncClient``s over a :class:`Forward` transport (``.transport``)."""
    made: list[httpx.AsyncClient] = []

    def make(fault: Fault | None = None) -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=Forward(fault), timeout=30)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


async def _plain(request: httpx.Request) -> httpx.Request:
    """The request as tests read it: body read whole, and gunzipped when the SDK gzipped it."""
    body = await request.aread()
    if request.headers.get("content-encoding") != "gzip":
        return request
    return httpx.Request(request.method, request.url, headers=request.headers, content=gzip.decompress(body))


def transport_of(http: httpx.AsyncClient) -> Forward:
    transport = http._transport
    assert isinstance(transport, Forward)
    return transport
