"""A failure the server did not foresee is a 500 problem that says nothing of its cause,
and the cause is in the log: whether our code raised it or Litestar did (a dependency
that does not match its declared type, which is how a store refactoring once turned
every console admin page into a bare, unlogged 500)."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import pytest
from litestar import Litestar, get
from litestar.di import NamedDependency, Provide
from litestar.testing import TestClient

from sync_server.http import problems


class _Role(Protocol):
    def ping(self) -> bool: ...


def _app() -> Litestar:
    @get("/crash", sync_to_thread=False)
    def crash() -> str:
        raise RuntimeError("secret detail of the crash")

    @get("/wrong-dependency", sync_to_thread=False)
    def wrong(role: NamedDependency[_Role]) -> str:  # a plain Protocol cannot be checked: Litestar fails the request
        return "never"

    return Litestar(
        [crash, wrong],
        dependencies={"role": Provide(lambda: object(), sync_to_thread=False)},
        exception_handlers=problems.EXCEPTION_HANDLERS,
        logging_config=None,  # leave logging to pytest (caplog)
    )


@pytest.mark.parametrize("path", ["/crash", "/wrong-dependency"])
def test_an_unforeseen_failure_is_a_bare_500_problem_and_its_cause_is_logged(path: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="patrol_sync"), TestClient(_app()) as client:
        answer = client.get(path)
    assert answer.status_code == 500
    assert answer.headers["content-type"] == problems.MEDIA_TYPE
    body: dict[str, Any] = answer.json()
    assert body["status"] == 500
    assert "secret" not in answer.text and "Traceback" not in answer.text
    logged = [r for r in caplog.records if r.name == "patrol_sync" and path in r.getMessage()]
    assert logged and logged[0].exc_info is not None
