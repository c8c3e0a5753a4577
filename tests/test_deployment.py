"""Behind a proxy, beside a browser, under a scraper (docs/DEPLOY.md, PROTOCOL.md section 1):
CORS for the origins an operator allows, the metrics token, trusted proxy headers,
problem documents that name parameters as sent, exact content types."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST

from sync_server import identity
from sync_server.settings import Settings
from sync_server.stores import store_for

from .conftest import RunningServer, start_server
from .reliability._process import free_port

ALLOWED = "https://console.phuong.example"
OTHER = "https://evil.example"

Serve = Callable[..., Awaitable[tuple[RunningServer, str]]]


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    """Starts a server with the given settings on a fresh SQLite store; answers it and the admin token."""
    running: list[RunningServer] = []

    async def start(**values: str) -> tuple[RunningServer, str]:
        settings = Settings(db_url=f"sqlite:///{tmp_path / f'store-{len(running)}.db'}", **values)  # type: ignore[arg-type]
        store = store_for(settings.db_url)
        await store.open()
        try:
            token = await identity.bootstrap(store)
        finally:
            await store.close()
        running.append(await start_server(settings))
        return running[-1], token

    yield start
    for server in running:
        await server.stop()


# -- CORS ---------------------------------------------------------------------------


def preflight(origin: str) -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"}


async def test_a_preflight_from_an_allowed_origin_passes_without_a_token(serve: Serve) -> None:
    server, _ = await serve(cors_origins=f"{ALLOWED}, https://other.phuong.example")
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.options("/v1/sync/push", headers=preflight(ALLOWED))
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


async def test_a_preflight_from_another_origin_gets_no_cors_headers(serve: Serve) -> None:
    server, _ = await serve(cors_origins=ALLOWED)
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.options("/v1/sync/push", headers=preflight(OTHER))
    assert response.status_code >= 400
    assert "access-control-allow-origin" not in response.headers


async def test_calls_from_an_allowed_origin_carry_cors_headers_and_others_do_not(serve: Serve) -> None:
    server, token = await serve(cors_origins=ALLOWED)
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http:
        allowed = await http.get("/v1/admin/wards", headers={"Origin": ALLOWED})
        other = await http.get("/v1/admin/wards", headers={"Origin": OTHER})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ALLOWED
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers


async def test_an_allowed_origin_still_needs_a_token_for_everything_but_the_preflight(serve: Serve) -> None:
    server, _ = await serve(cors_origins=ALLOWED)
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get("/v1/admin/wards", headers={"Origin": ALLOWED})
        options = await http.options("/v1/admin/wards")  # no Origin: not a preflight
    assert response.status_code == 401 and response.headers["content-type"] == "application/problem+json"
    assert response.headers["access-control-allow-origin"] == ALLOWED  # so the page can read the 401
    assert options.status_code == 401


async def test_without_allowed_origins_there_are_no_cors_headers(serve: Serve) -> None:
    server, token = await serve()
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.options("/v1/sync/push", headers=preflight(ALLOWED))
        call = await http.get("/v1/admin/wards", headers={"Origin": ALLOWED, "Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and "access-control-allow-origin" not in response.headers
    assert call.status_code == 200 and "access-control-allow-origin" not in call.headers


# -- metrics --------------------------------------------------------------------------


async def test_with_a_metrics_token_the_metrics_need_it(serve: Serve) -> None:
    server, device_token = await serve(metrics_token="scrape-me-7f3a")
    async with httpx.AsyncClient(base_url=server.url) as http:
        without = await http.get("/metrics")
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        device = await http.get("/metrics", headers={"Authorization": f"Bearer {device_token}"})
        right = await http.get("/metrics", headers={"Authorization": "Bearer scrape-me-7f3a"})
    for refused in (without, wrong, device):
        assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"
    assert right.status_code == 200 and "patrol_sync_http_requests_total" in right.text
    assert right.headers["content-type"] == CONTENT_TYPE_LATEST


async def test_without_a_metrics_token_the_metrics_are_open_with_one_charset(serve: Serve) -> None:
    server, _ = await serve()
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST


# -- problem documents ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/reports/summary", "/v1/reports/checks?group_by=ward"])
async def test_a_bad_aliased_parameter_is_named_as_the_client_sent_it(serve: Serve, path: str) -> None:
    server, token = await serve()
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http:
        response = await http.get(path + ("&" if "?" in path else "?") + "from=2023-13-01")
    assert response.status_code == 400
    assert [item["field"] for item in response.json()["errors"]] == ["from"]


# -- trusted proxies --------------------------------------------------------------------


def access_clients(tmp_path: Path, *serve_args: str) -> list[str]:
    """Serve, send one request claiming to come through a proxy, answer the access lines' clients."""
    db = f"sqlite:///{tmp_path / 'proxy.db'}"
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sync_server", "serve", "--db", db, "--port", str(port), *serve_args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [line["client"] for line in lines if line["logger"] == "patrol_sync.access" and line["status"] == 200]


def test_behind_a_trusted_proxy_the_access_log_records_the_forwarded_client(tmp_path: Path) -> None:
    assert access_clients(tmp_path, "--forwarded-allow-ips", "127.0.0.1") == ["203.0.113.7"]


def test_without_trusted_proxies_a_forwarded_header_is_ignored(tmp_path: Path) -> None:
    assert access_clients(tmp_path) == ["127.0.0.1"]
