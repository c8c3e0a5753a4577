"""``patrol-sync demo --serve``: the README's first command ends with a console a person
can open. The demo's own figures (DOMAIN.md: 84 premises checked, 47 violations, targets
at 320 % and 460 %) read in Chromium, signed in as the supervisor it prints."""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[str, str, str]]:
    env = {**os.environ, "COLUMNS": "200", "PYTHONWARNINGS": "error"}
    process = subprocess.Popen([sys.executable, "-m", "sync_server", "demo", "--serve", "--port", "0"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    seen, deadline = [], time.monotonic() + 150
    try:
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            found = re.search(r"Open (http://127\.0\.0\.1:\d+)/console/ and sign in as (\S+), password (\S+)", line)
            if found:
                yield found.group(1), found.group(2), found.group(3)
                break
        else:
            pytest.fail("the demo did not print the console's address in time")
        if not found:
            pytest.fail("the demo ended without serving:\n" + "".join(seen))
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        finally:
            process.kill()
            process.stdout.close()


def test_the_demo_serves_its_figures_to_the_supervisor_it_prints(demo: tuple[str, str, str], chromium: Any) -> None:
    url, user, password = demo
    assert user == "u-minh"
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    try:
        page = context.new_page()
        page.goto(url + "/")
        page.fill("input[name=user]", user)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_selector("[data-figure=premises_checked]")
        assert page.inner_text("[data-figure=premises_checked]") == "84"
        assert page.inner_text("[data-figure=violations_recorded]") == "47"
        percents = {li.get_attribute("data-target"): li.inner_text() for li in page.locator("[data-target]").all()}
        assert "320 %" in percents["fire_safety_groups"] and "460 %" in percents["public_fire_points"]
        page.goto(url + "/console/records/violations")
        with page.expect_download() as download:
            page.click("text=Tải CSV")
        rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_bytes().decode("utf-8-sig"))))
        assert len(rows) == 1 + 47 and all(r[-1] == "Phường Lam Sơn" for r in rows[1:])
        assert sum(1 for r in rows[1:] if r[3] == "Đăng ký cư trú") == 24  # the demo's residence-registration cases
    finally:
        context.close()
