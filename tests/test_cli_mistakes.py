"""Command-line and start-up mistakes (PROTOCOL.md section 8), each run as a subprocess:
one plain line on standard error naming the culprit, a non-zero exit, no traceback,
no hang, nothing created."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sync_server.loopback import free_port
from sync_server.settings import Settings

from . import storedb


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync_server", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def assert_one_line(result: subprocess.CompletedProcess[str], code: int, *culprits: str) -> None:
    assert result.returncode == code, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for culprit in culprits:
        assert culprit in result.stderr


def closed_port() -> int:
    return free_port()  # nothing listens there once the socket is closed


def newer_store(db_url: str) -> None:
    """Make the store look migrated by a later version of patrol-sync."""
    if db_url.startswith("sqlite:"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            conn.execute("PRAGMA user_version = 999")
    else:
        storedb.run_async(lambda: storedb.execute(db_url, "INSERT INTO schema_migrations (version) VALUES (999)"))


# -- usage ----------------------------------------------------------------------


@pytest.mark.parametrize("port", ["99999", "65536", "-1", "http", ""])
def test_an_invalid_port_is_one_line_and_exit_2_without_hanging(port: str, tmp_path: Path) -> None:
    result = run("serve", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--port", port, timeout=30)
    assert_one_line(result, 2, "--port", "not a TCP port")
    assert list(tmp_path.iterdir()) == []


def test_a_worker_count_below_one_is_refused(tmp_path: Path) -> None:
    assert_one_line(run("serve", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--workers", "0", timeout=30), 2, "--workers")


def test_a_host_that_does_not_resolve_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    result = run("serve", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--host", "no-such-host.invalid", timeout=30)
    assert_one_line(result, 1, "--host no-such-host.invalid")
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_command_is_one_line() -> None:
    assert_one_line(run("srve"), 2, "srve")


def test_version_is_the_installed_package_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout == f"patrol-sync {importlib.metadata.version('patrol-sync')} (protocol 1)\n"


# -- settings from the environment ------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PATROL_SYNC_MAX_PAGE", "abc", "a whole number"),
        ("PATROL_SYNC_PUSH_TIMEOUT_S", "soon", "a number"),
        ("PATROL_SYNC_LOG_FORMAT", "xml", "one of json, text"),
    ],
)
def test_a_bad_environment_value_names_the_variable_and_what_it_expects(tmp_path: Path, variable: str, value: str, expected: str) -> None:
    result = run("serve", "--db", f"sqlite:///{tmp_path / 'x.db'}", env={variable: value}, timeout=30)
    assert_one_line(result, 1, f"{variable}='{value}'", expected)
    assert list(tmp_path.iterdir()) == []


def test_numbers_and_choices_are_read_from_the_environment() -> None:
    settings = Settings.from_env({"PATROL_SYNC_MAX_PAGE": "5", "PATROL_SYNC_PUSH_TIMEOUT_S": "2.5", "PATROL_SYNC_LOG_FORMAT": "text"})
    assert (settings.max_page, settings.push_timeout_s, settings.log_format) == (5, 2.5, "text")
    assert Settings.from_env(settings.to_env()) == settings  # what a worker process rebuilds


# -- no store created by a typo ------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["admin", "ward", "list"],
        ["admin", "bootstrap"],
        ["admin", "device", "revoke", "h01"],
        ["admin", "restore", "--from", "backup.db"],
        ["migrate"],
        ["serve"],
    ],
)
def test_a_store_in_a_missing_folder_is_refused_and_nothing_is_created(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "backup.db").write_bytes(b"")
    result = run(*args, "--db", "sqlite:///nonexistent/dir/x.db", cwd=tmp_path, timeout=30)
    assert_one_line(result, 1, "no folder nonexistent/dir")
    assert [p.name for p in tmp_path.iterdir()] == ["backup.db"]


@pytest.mark.parametrize(
    "args",
    [["admin", "ward", "list"], ["admin", "user", "add", "u-a", "A", "--role", "admin"], ["admin", "backup", "--to", "b.db"], ["migrate"], ["migrate", "--check"]],
)
def test_commands_other_than_bootstrap_refuse_a_store_that_does_not_exist(tmp_path: Path, args: list[str]) -> None:
    result = run(*args, "--db", "sqlite:///x.db", cwd=tmp_path)
    assert_one_line(result, 1, "no store", "x.db")
    assert list(tmp_path.iterdir()) == []


def test_a_backup_into_a_missing_folder_blames_the_target_folder(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    assert run("admin", "bootstrap", "--db", db).returncode == 0
    result = run("admin", "backup", "--db", db, "--to", "/nonexistent/b.db")
    assert_one_line(result, 1, "no folder /nonexistent for the backup b.db")
    assert not Path("/nonexistent").exists()


# -- the store's version -------------------------------------------------------------


@pytest.mark.parametrize("args", [["admin", "ward", "list"], ["migrate"], ["migrate", "--check"], ["serve", "--port", "0"]])
def test_a_store_written_by_a_newer_version_is_refused_clearly(new_db_url: Callable[[], str], args: list[str]) -> None:
    db = new_db_url()
    assert run("admin", "bootstrap", "--db", db).returncode == 0
    newer_store(db)
    result = run(*args, "--db", db, timeout=30)
    assert_one_line(result, 1, "newer patrol-sync", "schema 999")


def test_migrate_check_counts_what_is_pending_and_changes_nothing_then_migrate_applies_it(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if store_kind == "sqlite":
        db = f"sqlite:///{tmp_path / 'old.db'}"
        (tmp_path / "old.db").write_bytes(b"")  # a store at schema 0
    else:
        cluster: storedb.Cluster = request.getfixturevalue("postgres")
        db = cluster.new_database(migrated=False)
    checked = run("migrate", "--check", "--db", db)
    assert_one_line(checked, 1, "migrations pending", "run `patrol-sync migrate`")
    assert run("migrate", "--check", "--db", db).stderr == checked.stderr  # the check changed nothing
    migrated = run("migrate", "--db", db)
    assert migrated.returncode == 0 and migrated.stdout.startswith("migrated from schema 0 to "), migrated.stderr
    again = run("migrate", "--check", "--db", db)
    assert again.returncode == 0 and again.stdout.startswith("up to date"), again.stderr
    if store_kind == "postgresql":
        cluster.drop_database(db)


# -- the database is down ---------------------------------------------------------------


@pytest.mark.parametrize("args", [["admin", "ward", "list"], ["admin", "bootstrap"], ["migrate", "--check"], ["serve", "--port", "0"]])
def test_with_postgresql_down_commands_say_so_in_one_line(args: list[str]) -> None:
    result = run(*args, "--db", f"postgresql://patrol:secret@127.0.0.1:{closed_port()}/patrol", timeout=60)
    assert_one_line(result, 1, "unavailable")
    assert "secret" not in result.stderr


def test_a_worker_that_cannot_reach_postgresql_logs_one_line_without_a_traceback() -> None:
    """What each worker of ``serve`` logs if the database goes away after the first check."""
    script = (
        "import uvicorn\n"
        "from sync_server.http.observability import logging_config\n"
        "uvicorn.run('sync_server.asgi:app_factory', factory=True, port=0, log_config=logging_config())\n"
    )
    env = {**os.environ, "PATROL_SYNC_DB_URL": f"postgresql://patrol@127.0.0.1:{closed_port()}/patrol"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode != 0
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    failures = [line for line in lines if line["level"] == "error" and "unavailable" in line["msg"]]
    assert len(failures) == 1 and "\n" not in failures[0]["msg"], result.stderr
    assert "Traceback" not in result.stderr


def test_serve_creates_a_store_in_a_folder_that_exists(tmp_path: Path) -> None:
    """``serve`` opens (and migrates) the store before it listens: port taken, store made."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--db", "sqlite:///new.db", "--port", str(port), cwd=tmp_path, timeout=60)
    assert result.returncode != 0
    assert (tmp_path / "new.db").is_file()
    assert asyncio.run(_wards(f"sqlite:///{tmp_path / 'new.db'}")) == 0


async def _wards(db: str) -> int:
    return len(await storedb.rows(db, "SELECT * FROM wards"))
