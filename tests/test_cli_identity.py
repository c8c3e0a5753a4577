"""``patrol-sync admin`` for the identity lifecycle, run as a subprocess: re-issue,
enrolment codes, user update/disable/enable, ward rename, team update."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sync_server", *args], capture_output=True, text=True, timeout=60)


def ok(*args: str) -> str:
    result = run(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def rows(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with two wards, a team and an officer, made once (each command is a process)."""
    path = tmp_path_factory.mktemp("template") / "cli.db"
    url = f"sqlite:///{path}"
    ok("admin", "bootstrap", "--db", url)
    ok("admin", "ward", "add", "lam-son", "Phường Lam Sơn", "--db", url)
    ok("admin", "ward", "add", "phu-son", "Phường Phú Sơn", "--db", url)
    ok("admin", "team", "add", "ls-t1", "Tổ 1", "--ward", "lam-son", "--db", url)
    ok("admin", "user", "add", "u-ngoc", "Lê Văn Ngọc", "--role", "officer", "--team", "ls-t1", "--db", url)
    return path


@pytest.fixture
def db(template: Path, tmp_path: Path) -> str:
    copy = tmp_path / "cli.db"
    shutil.copyfile(template, copy)  # every process closed it: the log is checkpointed into the file
    return f"sqlite:///{copy}"


def devices(db: str) -> dict[str, dict[str, Any]]:
    return {d["device_id"]: d for d in rows(ok("admin", "device", "list", "--db", db))}


def test_device_token_prints_a_new_token_alone_and_brings_a_revoked_device_back(db: str) -> None:
    first = ok("admin", "device", "add", "lamson-h01", "--user", "u-ngoc", "--db", db).strip()
    ok("admin", "device", "revoke", "lamson-h01", "--db", db)
    assert devices(db)["lamson-h01"]["revoked_at"] is not None
    out = ok("admin", "device", "token", "lamson-h01", "--db", db)
    token = out.strip()
    assert out == token + "\n" and token.startswith("pst_") and token != first
    assert devices(db)["lamson-h01"]["revoked_at"] is None


def test_device_enrol_prints_the_code_its_url_and_its_expiry(db: str) -> None:
    ok("admin", "device", "add", "lamson-h01", "--user", "u-ngoc", "--db", db)
    [made] = rows(ok("admin", "device", "enrol", "lamson-h01", "--url", "https://patrol.example/", "--db", db))
    assert re.fullmatch(r"[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}", made["code"])
    assert made["url"] == f"https://patrol.example/app/#enrol={made['code']}"
    left = dt.datetime.fromisoformat(made["expires_at"]) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=9) < left <= dt.timedelta(minutes=10)


def test_device_enrol_registers_a_new_device_for_a_user(db: str) -> None:
    [made] = rows(ok("admin", "device", "enrol", "lamson-h02", "--user", "u-ngoc", "--db", db))
    assert made["url"].startswith("http://127.0.0.1:8000/app/#enrol=")
    assert devices(db)["lamson-h02"]["user_id"] == "u-ngoc"


def test_user_update_disable_and_enable(db: str) -> None:
    [user] = rows(ok("admin", "user", "update", "u-ngoc", "--name", "Lê Ngọc", "--role", "supervisor", "--teams", "", "--wards", "lam-son,phu-son", "--db", db))
    assert user == {"id": "u-ngoc", "name": "Lê Ngọc", "role": "supervisor", "team_ids": [], "ward_ids": ["lam-son", "phu-son"], "disabled": False}
    assert rows(ok("admin", "user", "disable", "u-ngoc", "--db", db))[0]["disabled"] is True
    assert rows(ok("admin", "user", "enable", "u-ngoc", "--db", db))[0]["disabled"] is False


def test_ward_rename_and_team_update(db: str) -> None:
    assert rows(ok("admin", "ward", "rename", "lam-son", "Phường Hạc Thành", "--db", db)) == [
        {"id": "lam-son", "name": "Phường Hạc Thành", "timezone": "Asia/Ho_Chi_Minh"}
    ]
    assert rows(ok("admin", "team", "update", "ls-t1", "--name", "Tổ một", "--ward", "phu-son", "--db", db)) == [
        {"id": "ls-t1", "ward_id": "phu-son", "name": "Tổ một"}
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["admin", "device", "token", "ghost"], "no device ghost"),
        (["admin", "device", "enrol", "ghost"], "give a user_id"),
        (["admin", "device", "enrol", "ghost", "--user", "nobody"], "no user nobody"),
        (["admin", "user", "disable", "admin"], "last enabled admin"),
        (["admin", "user", "update", "admin", "--role", "officer"], "last enabled admin"),
        (["admin", "user", "update", "u-ngoc", "--teams", "nope"], "no team nope"),
        (["admin", "user", "enable", "ghost"], "no user ghost"),
        (["admin", "ward", "rename", "ghost", "X"], "no ward ghost"),
        (["admin", "ward", "rename", "lam-son", ""], "Expected `str` of length >= 1"),
        (["admin", "team", "update", "ls-t1", "--ward", "nowhere"], "no ward nowhere"),
    ],
)
def test_identity_mistakes_are_one_plain_line(db: str, args: list[str], message: str) -> None:
    result = run(*args, "--db", db)
    assert result.returncode == 1, result.stdout
    assert message in result.stderr and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
