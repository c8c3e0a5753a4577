"""The app's files as the server hands them out (no browser needed)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from sync_server.http import webapp


@pytest.fixture
def static_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    copy = tmp_path / "static"
    shutil.copytree(webapp.STATIC_DIR, copy)
    monkeypatch.setattr(webapp, "STATIC_DIR", copy)
    webapp._service_worker.cache_clear()
    yield copy
    webapp._service_worker.cache_clear()


def _version() -> str:
    match = re.search(rb'const VERSION = "([0-9a-f]{16})"', webapp._service_worker())
    assert match is not None
    return match.group(1).decode()


def test_any_change_to_the_apps_files_names_a_new_service_worker_cache(static_copy: Path) -> None:
    before = _version()
    (static_copy / "js" / "labels.js").write_text((static_copy / "js" / "labels.js").read_text() + "\n// a new label\n")
    webapp._service_worker.cache_clear()
    assert _version() != before


def test_the_service_worker_caches_every_module_of_the_app() -> None:
    worker = (webapp.STATIC_DIR / "sw.js").read_text()
    modules = sorted(p.name for p in (webapp.STATIC_DIR / "js").glob("*.js"))
    assert modules and all(f'"/app/js/{name}"' in worker for name in modules)
