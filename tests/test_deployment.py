"""Behind a proxy, beside a browser, under a scraper (docs/DEPLOY.md, PROTOCOL.md section 1):
CORS for the origins an operator allows, the metrics token, trusted proxy headers,
problem documents that name parameters as sent, exact content types."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST

from sync_server.loopback import LoopbackServer, free_port
from sync_server.services import identity
from sync_server.settings import Settings
from sync_server.stores import store_for

ALLOWED = "https://console.phuong.example"
OTHER = "https://evil.example"

Serve = Callable[..., Awaitable[tuple[LoopbackServer, str]]]


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    """Starts a server with the given settings on a fresh SQLite store; answers it and the admin token."""
    running: list[LoopbackServer] = []

    async def start(**values: str) -> tuple[LoopbackServer, str]:
        settings = Settings(db_url=f"sqlite:///{tmp_path / f'store-{len(running)}.db'}", **values)  # type: ignore[arg-type]
        store = store_for(settings.db_url)
        await store.open()
        try:
            token = await identity.bootstrap(store)
        finally:
            await store.close()
        running.append(LoopbackServer(settings))
        await running[-1].start()
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


# -- deploy/: the systemd units and the container image ---------------------------------

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
UNITS = ["patrol-sync.service", "patrol-sync-backup.service", "patrol-sync-backup.timer"]
INSTALLED = "/opt/patrol-sync/bin/patrol-sync"


def exec_starts(unit: str) -> list[list[str]]:
    return [shlex.split(line.split("=", 1)[1]) for line in (DEPLOY / unit).read_text().splitlines() if line.startswith("ExecStart=")]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed on this machine")
def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """The units as shipped, with the program where this checkout installed it (verify checks it is executable)."""
    for unit in UNITS:
        text = (DEPLOY / unit).read_text().replace(INSTALLED, str(Path(sys.executable).with_name("patrol-sync")))
        (tmp_path / unit).write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", *(str(tmp_path / unit) for unit in UNITS)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "ignoring" not in result.stderr and "Unknown" not in result.stderr, result.stderr


@pytest.mark.parametrize("unit", ["patrol-sync.service", "patrol-sync-backup.service"])
def test_the_units_run_commands_this_version_accepts(unit: str) -> None:
    (argv,) = exec_starts(unit)
    assert argv[0] == INSTALLED
    result = subprocess.run([sys.executable, "-m", "sync_server", *argv[1:], "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_image_copies_what_exists_and_the_build_context_sends_it() -> None:
    sources = [source for kind, args in dockerfile() if kind == "COPY" for source in args.split()[:-1]]
    assert sources and all((ROOT / source).exists() for source in sources), sources
    kept = {line[1:] for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")}
    assert {source.rstrip("/").removeprefix("./") for source in sources} <= kept


def test_the_image_installs_from_the_lock_with_hashes_and_runs_as_a_user_with_a_volume() -> None:
    steps = dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim")
    runs = [args for kind, args in steps if kind == "RUN"]
    assert any("pip install --require-hashes -r requirements.lock" in run for run in runs)
    assert [run for run in runs if "pip install" in run and "requirements.lock" not in run] == [next(r for r in runs if "--no-deps ." in r)]
    user = [args for kind, args in steps if kind == "USER"]
    assert user and user[-1] not in ("root", "0")
    assert any(kind == "VOLUME" and "/var/lib/patrol-sync" in args for kind, args in steps)
    env = " ".join(args for kind, args in steps if kind == "ENV")
    assert "PATROL_SYNC_DB_URL=sqlite:////var/lib/patrol-sync/" in env


def test_the_image_starts_a_command_this_version_accepts() -> None:
    (entry,) = [json.loads(args) for kind, args in dockerfile() if kind == "ENTRYPOINT"]
    (cmd,) = [json.loads(args) for kind, args in dockerfile() if kind == "CMD"]
    assert entry == ["patrol-sync"]
    result = subprocess.run([sys.executable, "-m", "sync_server", *cmd, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


async def test_the_image_healthcheck_passes_against_a_running_server(serve: Serve) -> None:
    server, _ = await serve()
    (check,) = [args for kind, args in dockerfile() if kind == "HEALTHCHECK"]
    argv = json.loads(check.split("CMD", 1)[1])
    argv = [arg.replace("127.0.0.1:8000", server.url.removeprefix("http://")) for arg in argv]
    assert argv[0] == "python"
    done = await asyncio.create_subprocess_exec(sys.executable, *argv[1:])
    assert await asyncio.wait_for(done.wait(), 30) == 0


def test_the_operator_guide_documents_every_setting() -> None:
    guide = (ROOT / "docs" / "DEPLOY.md").read_text()
    missing = [f"PATROL_SYNC_{name.upper()}" for name in Settings.__struct_fields__ if f"PATROL_SYNC_{name.upper()}" not in guide]
    assert not missing
