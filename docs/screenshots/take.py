"""Screenshots of the console for the README, from a running ``patrol-sync demo --serve``.

    .venv/bin/patrol-sync demo --serve --port 8000 &
    .venv/bin/python docs/screenshots/take.py http://127.0.0.1:8000
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HERE = Path(__file__).parent


def main(url: str, user: str = "u-minh", password: str = "lamson-2023") -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for width, height in ((1280, 860), (360, 760)):
            context = browser.new_context(viewport={"width": width, "height": height}, locale="vi-VN", device_scale_factor=1)
            page = context.new_page()
            page.goto(url + "/console/")
            page.fill("input[name=user]", user)
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")
            page.wait_for_selector("[data-figure=checks]")
            page.wait_for_selector("body.live-on")
            page.screenshot(path=HERE / f"overview-{width}.png", full_page=width > 400)
            page.goto(url + "/console/records/violations")
            page.screenshot(path=HERE / f"violations-{width}.png")
            links = page.locator("table.records a.row-link").evaluate_all("links => links.map(a => a.href)")
            for link in links:  # a violation with its photos
                page.goto(link)
                if page.locator(".photos img").count():
                    break
            page.wait_for_load_state("networkidle")
            page.screenshot(path=HERE / f"record-{width}.png", full_page=width > 400)
            context.close()
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1])
