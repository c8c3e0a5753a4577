"""The ``patrol-sync`` command: plain errors, bootstrap once, admin, serve."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sync_server.loopback import free_port


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync_server", *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_bootstrap_prints_the_token_alone_and_only_once(db: str) -> None:
    first = run("admin", "bootstrap", "--db", db)
    assert first.returncode == 0, first.stderr
    token = first.stdout.strip()
    assert first.stdout == token + "\n" and token.startswith("pst_")
    second = run("admin", "bootstrap", "--db", db)
    assert second.returncode == 1
    assert second.stdout == ""
    assert "bootstrapped already" in second.stderr and "Traceback" not in second.stderr


def test_admin_commands_mirror_the_api(db: str) -> None:
    assert run("admin", "bootstrap", "--db", db).returncode == 0
    assert run("admin", "ward", "add", "lam-son", "Phường Lam Sơn", "--db", db).returncode == 0
    assert run("admin", "team", "add", "ls-t1", "Tổ 1", "--ward", "lam-son", "--db", db).returncode == 0
    user = run("admin", "user", "add", "u-ngoc", "Lê Văn Ngọc", "--role", "officer", "--team", "ls-t1", "--db", db)
    assert user.returncode == 0, user.stderr
    device = run("admin", "device", "add", "lamson-h01", "--user", "u-ngoc", "--db", db)
    assert device.returncode == 0 and device.stdout.strip().startswith("pst_")
    listing = run("admin", "device", "list", "--db", db)
    assert "lamson-h01" in listing.stdout and "pst_" not in listing.stdout
    assert "Phường Lam Sơn" in run("admin", "ward", "list", "--db", db).stdout
    assert '"team_ids":["ls-t1"]' in run("admin", "user", "list", "--db", db).stdout
    assert run("admin", "device", "revoke", "lamson-h01", "--db", db).returncode == 0
    assert '"revoked_at":null' not in run("admin", "device", "list", "--db", db).stdout.split("lamson-h01")[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["admin", "team", "add", "t", "T", "--ward", "nowhere"], "no ward nowhere"),
        (["admin", "ward", "add", "bad id", "X"], "Expected `str` matching regex"),
        (["admin", "device", "revoke", "ghost"], "no device ghost"),
        (["admin", "ward", "add", "w", "W", "--timezone", "Mars/Base"], "unknown time zone"),
    ],
)
def test_admin_errors_are_one_plain_line(db: str, args: list[str], message: str) -> None:
    assert run("admin", "bootstrap", "--db", db).returncode == 0
    result = run(*args, "--db", db)
    assert result.returncode == 1
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_bad_database_url_is_a_plain_error() -> None:
    result = run("admin", "ward", "list", "--db", "mysql://nope")
    assert result.returncode == 1 and "unsupported database URL" in result.stderr


def test_a_relative_sqlite_url_is_relative_to_the_working_directory(tmp_path: Path) -> None:
    assert run("admin", "bootstrap", "--db", "sqlite:///here.db", cwd=tmp_path).returncode == 0
    assert (tmp_path / "here.db").exists()



@pytest.mark.parametrize("workers", [1, 2])
def test_serve_runs_the_server_on_the_given_store(db: str, workers: int) -> None:
    token = run("admin", "bootstrap", "--db", db).stdout.strip()
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sync_server", "serve", "--db", db, "--port", str(port), "--workers", str(workers), "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, proc.stderr.read1().decode() if proc.stderr else ""
            time.sleep(0.1)
        wards = httpx.get(f"http://127.0.0.1:{port}/v1/admin/wards", headers={"Authorization": f"Bearer {token}"})
        assert wards.status_code == 200 and wards.json() == []
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
