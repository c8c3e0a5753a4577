"""Shared by the benchmarks: a real server in its own process, and a fleet of devices.

The server runs as ``patrol-sync serve`` (uvicorn, loopback); the benchmark
process is the client, so client and server never share a core's event loop.
A ``postgresql://`` URL names a server: each run gets a fresh database on it
(created from the URL's database as maintenance database, dropped afterwards).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from sync_server.loopback import free_port

__all__ = ["Fleet", "running_server"]



def _cli(*args: str, db: str) -> str:
    out = subprocess.run([sys.executable, "-m", "sync_server", *args, "--db", db], capture_output=True, text=True, check=True)
    return out.stdout.strip()


class Fleet:
    """An admin token and devices (officers of one ward) of a running server."""

    def __init__(self, url: str, admin_token: str, pid: int = 0) -> None:
        self.url = url
        self.admin_token = admin_token
        self.pid = pid  # the server's process (the first worker's parent when --workers > 1)
        self.tokens: dict[str, str] = {}

    def setup(self, devices: int, wards: tuple[str, ...] = ("lam-son",)) -> None:
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=60) as http:
            for ward in wards:
                http.post("/v1/admin/wards", json={"id": ward, "name": f"Phường {ward}"}).raise_for_status()
                http.post("/v1/admin/teams", json={"id": f"{ward}-t1", "ward_id": ward, "name": "Tổ tuần tra 1"}).raise_for_status()
            for i in range(devices):
                ward = wards[i % len(wards)]
                user = f"u-{i:03d}"
                http.post("/v1/admin/users", json={"id": user, "name": f"Cán bộ {i}", "role": "officer", "team_ids": [f"{ward}-t1"]}).raise_for_status()
                answer = http.post("/v1/admin/devices", json={"device_id": f"h{i:03d}", "user_id": user})
                answer.raise_for_status()
                self.tokens[f"h{i:03d}"] = answer.json()["token"]
            http.post("/v1/admin/users", json={"id": "u-reader", "name": "Reader", "role": "supervisor", "ward_ids": list(wards)}).raise_for_status()
            answer = http.post("/v1/admin/devices", json={"device_id": "reader", "user_id": "u-reader"})
            answer.raise_for_status()
            self.tokens["reader"] = answer.json()["token"]


def _on_postgres(url: str, statement: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


@contextlib.contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL server of ``url``, dropped afterwards."""
    name = f"patrol_bench_{os.getpid()}_{time.monotonic_ns()}"
    _on_postgres(url, f"CREATE DATABASE {name}")
    parts = urlsplit(url)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    finally:
        _on_postgres(url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def running_server(db: str | None = None, workers: int = 1, extra_env: dict[str, str] | None = None) -> Iterator[Fleet]:
    with tempfile.TemporaryDirectory(prefix="patrol-bench-") as tmp, contextlib.ExitStack() as stack:
        if db is not None and db.startswith(("postgresql:", "postgres:")):
            db = stack.enter_context(fresh_database(db))
        db = db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        token = _cli("admin", "bootstrap", db=db)
        port = free_port()
        env = {**os.environ, **(extra_env or {})}
        proc = subprocess.Popen(
            [sys.executable, "-m", "sync_server", "serve", "--db", db, "--port", str(port), "--workers", str(workers), "--log-level", "warning"],
            env=env,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(url + "/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not start")
                time.sleep(0.1)
            yield Fleet(url, token, proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
