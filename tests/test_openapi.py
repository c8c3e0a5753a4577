"""The OpenAPI document generates a working client, and the docs work offline.

A third party's view: the served document passes a second validator
(openapi-spec-validator), openapi-python-client generates a client from it with no
warning (``--fail-on-warning``), and that client, imported from a temporary folder,
talks to a live server. ``/docs`` (Swagger UI) loads nothing from outside the server,
and renders in a headless Chromium that may reach loopback only.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest
from litestar.testing import TestClient
from openapi_spec_validator import validate

from schemas import COLLECTIONS, Problem, PulledRecord, PullResponse, PushRequest, PushResponse
from sync_server.app import create_app
from sync_server.http import _examples, docs
from sync_server.loopback import LoopbackServer
from sync_server.settings import Settings

from .helpers import World, edit, new_id, premises, stamp

PACKAGE = "patrol_sync_generated_client"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The document as served (it does not depend on the store)."""
    folder = tmp_path_factory.mktemp("document")
    with TestClient(create_app(Settings(db_url=f"sqlite:///{folder / 'doc.db'}"))) as http:
        response = http.get("/schema/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def generated(document: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModuleType, str]]:
    """The client openapi-python-client makes of the document, imported from a temp folder."""
    folder = tmp_path_factory.mktemp("generated")
    (folder / "openapi.json").write_text(json.dumps(document))
    (folder / "config.json").write_text(json.dumps({"post_hooks": []}))  # no formatter needed to prove it works
    done = subprocess.run(
        [str(GENERATOR), "generate", "--path", "openapi.json", "--config", "config.json", "--output-path", PACKAGE, "--meta", "none", "--fail-on-warning"],
        capture_output=True, text=True, cwd=folder, timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE), output
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def _schemas(document: dict[str, Any]) -> dict[str, Any]:
    return document["components"]["schemas"]  # type: ignore[no-any-return]


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    methods = ("get", "put", "post", "delete", "head", "patch")
    return [(path, m, op) for path, item in document["paths"].items() for m, op in item.items() if m in methods]


# -- the document --------------------------------------------------------------------


@pytest.mark.parametrize("store_kind", ["sqlite"])
async def test_the_served_document_passes_openapi_spec_validator(server: LoopbackServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get("/schema/openapi.json")
    assert response.status_code == 200
    validate(response.json())


def test_openapi_python_client_generates_a_client_without_a_warning(generated: tuple[ModuleType, str]) -> None:
    _, output = generated
    assert "Warning" not in output and "Error" not in output, output
    assert hasattr(_module("api.sync.sync_push"), "asyncio") and hasattr(_module("api.sync.sync_pull"), "asyncio")


def test_every_operation_has_a_summary_and_a_description(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        summary = operation.get("summary", "")
        assert " " in summary, (method, path, summary)  # a sentence, not Litestar's CamelCased handler name
        assert operation.get("description"), (method, path)


def test_filters_are_one_schema_with_null_beside_it_never_inside(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            schema = parameter["schema"]
            plain = [s for s in schema.get("anyOf", [schema]) if s != {"type": "null"}]
            assert len(plain) == 1 and "null" not in json.dumps(plain), (method, path, parameter)
            assert not parameter.get("required") or plain == [schema], (method, path, parameter)
    (status,) = [p for p in document["paths"]["/v1/conflicts"]["get"]["parameters"] if p["name"] == "status"]
    assert status == {**status, "required": False, "schema": {"anyOf": [{"type": "string", "enum": ["open", "resolved"]}, {"type": "null"}]}}


def test_collection_is_one_enum_wherever_it_names_a_known_collection(document: dict[str, Any]) -> None:
    schemas = _schemas(document)
    ref = {"$ref": "#/components/schemas/Collection"}
    assert schemas["Collection"]["enum"] == sorted(COLLECTIONS)
    assert schemas["Conflict"]["properties"]["collection"] == ref
    assert schemas["RecordHistory"]["properties"]["collection"] == ref
    history = document["paths"]["/v1/records/{collection}/{record_id}/history"]["get"]["parameters"]
    assert [p["schema"] for p in history if p["name"] == "collection"] == [ref]
    conflicts = document["paths"]["/v1/conflicts"]["get"]["parameters"]
    assert [p["schema"] for p in conflicts if p["name"] == "collection"] == [{"anyOf": [ref, {"type": "null"}]}]


def test_pulled_records_are_typed_by_collection(document: dict[str, Any]) -> None:
    schemas = _schemas(document)
    variants = schemas["PulledRecord"]["discriminator"]["mapping"]
    assert sorted(variants) == sorted(COLLECTIONS)
    premises_fields = schemas["PulledPremisesFields"]
    assert "boarding_house" in premises_fields["properties"]["kind"]["enum"]
    assert "required" not in premises_fields and "description" in premises_fields["additionalProperties"]
    assert schemas["PulledPremises"]["properties"]["collection"] == {"type": "string", "const": "premises"}


def test_times_and_days_carry_their_formats(document: dict[str, Any]) -> None:
    schemas = _schemas(document)
    assert schemas["Conflict"]["properties"]["created_at"]["format"] == "date-time"
    assert schemas["HistoryEntry"]["properties"]["at"]["format"] == "date-time"
    assert schemas["Device"]["properties"]["revoked_at"]["anyOf"][0]["format"] == "date-time"
    assert schemas["PulledChecksFields"]["properties"]["started_at"]["format"] == "date-time"
    assert schemas["SummaryReport"]["properties"]["from"]["anyOf"][0]["format"] == "date"


def test_only_the_operations_that_take_no_token_go_without_bearer_auth(document: dict[str, Any]) -> None:
    without = [(method, path) for path, method, operation in _operations(document) if "security" not in operation]
    assert sorted(without) == [("get", "/healthz"), ("post", "/v1/enrol")]
    assert document["paths"]["/v1/sync/push"]["post"]["security"] == [{"bearer": []}]


def test_no_tuple_schema_closes_with_items_false(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    assert '"prefixItems"' in text and '"items": false' not in text


def test_the_csv_answer_is_described(document: dict[str, Any]) -> None:
    ok = document["paths"]["/v1/reports/checks"]["get"]["responses"]["200"]
    assert set(ok["content"]) == {"application/json", "text/csv"}
    assert ok["content"]["text/csv"]["example"].startswith("key,key_name,checks,premises,violations\r\n")


@pytest.mark.parametrize(
    ("example", "wire_type"),
    [
        (_examples.PUSH_REQUEST, PushRequest),
        (_examples.PUSH_ANSWER, PushResponse[PulledRecord]),
        (_examples.PULL_ANSWER, PullResponse[PulledRecord]),
        *[(problem, Problem) for problem in _examples.PROBLEMS.values()],
    ],
)
def test_the_examples_decode_with_their_wire_types(example: dict[str, Any], wire_type: Any) -> None:
    msgspec.convert(example, wire_type)


def test_push_pull_and_problems_carry_examples(document: dict[str, Any]) -> None:
    push = document["paths"]["/v1/sync/push"]["post"]
    assert push["requestBody"]["content"]["application/json"]["example"] == _examples.PUSH_REQUEST
    assert push["responses"]["200"]["content"]["application/json"]["example"] == _examples.PUSH_ANSWER
    pull = document["paths"]["/v1/sync/pull"]["get"]
    assert pull["responses"]["200"]["content"]["application/json"]["example"] == _examples.PULL_ANSWER
    assert pull["responses"]["400"]["content"]["application/problem+json"]["example"]["status"] == 400


# -- the generated client, against a live server ---------------------------------------


async def test_the_generated_client_checks_health_pushes_and_pulls(world: World, generated: tuple[ModuleType, str]) -> None:
    package, _ = generated
    models = _module("models")
    async with package.Client(base_url=world.base_url) as anyone:
        health = await _module("api.default.health").asyncio(client=anyone)
    assert health.status == "ok"
    record_id, ts = new_id(), stamp("lamson-h01")
    change = premises(record_id, "lam-son", "lamson-h01", name="Nhà trọ Hoa Sen")
    change["fields"]["rooms"] = edit(12, ts)
    body = models.PushRequest.from_dict({"device_id": "lamson-h01", "changeset_id": new_id(), "changes": [change]})
    async with package.AuthenticatedClient(base_url=world.base_url, token=world.officer_a.token) as officer:
        pushed = await _module("api.sync.sync_push").asyncio(client=officer, body=body)
        pulled = await _module("api.sync.sync_pull").asyncio(client=officer, collections="premises")
    assert isinstance(pushed, models.PushResponse), pushed
    assert [r.status.value for r in pushed.results] == ["applied"]
    assert isinstance(pulled, models.PullResponse), pulled
    (record,) = pulled.records
    assert isinstance(record, models.PulledPremises)
    assert (record.id, record.fields.name, record.fields.kind.value, record.fields.rooms) == (record_id, "Nhà trọ Hoa Sen", "boarding_house", 12)


async def test_the_generated_client_reads_problems_and_filters(world: World, generated: tuple[ModuleType, str]) -> None:
    package, _ = generated
    models = _module("models")
    status = _module("models.conflicts_list_conflicts_status_type_0").ConflictsListConflictsStatusType0.OPEN
    async with package.AuthenticatedClient(base_url=world.base_url, token=world.supervisor.token) as supervisor:
        conflicts = await _module("api.conflicts.conflicts_list_conflicts").asyncio(client=supervisor, status=status, collection=models.Collection.PREMISES)
    assert isinstance(conflicts, models.ConflictList) and conflicts.conflicts == []
    async with package.AuthenticatedClient(base_url=world.base_url, token="not-a-token") as stranger:
        refused = await _module("api.sync.sync_pull").asyncio(client=stranger)
    assert isinstance(refused, models.Problem) and refused.status == 401


# -- /docs -----------------------------------------------------------------------------


@pytest.mark.parametrize("store_kind", ["sqlite"])
async def test_docs_load_every_script_and_style_from_the_server_itself(server: LoopbackServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        page = await http.get(docs.PATH)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        urls = re.findall(r'<(?:script|link)\b[^>]*?\b(?:src|href)=["\']([^"\']+)["\']', page.text)
        assert len(urls) >= 4, urls  # the bundle, the preset, the style, the icon
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), url
            asset = await http.get(url)
            assert asset.status_code == 200, url
        assert "/v1/sync/push" in page.text


@pytest.mark.parametrize("store_kind", ["sqlite"])
async def test_docs_render_the_operations_in_a_browser_offline(server: LoopbackServer, document: dict[str, Any]) -> None:
    from playwright.async_api import Route, async_playwright

    outside: list[str] = []

    async def loopback_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.route("**/*", loopback_only)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"{server.url}{docs.PATH}")
            push = page.locator(".opblock-summary-path", has_text="/v1/sync/push")
            await push.first.wait_for(state="visible", timeout=15_000)
            # every operation rendered (one with two tags shows under each)
            shown = {(await b.get_attribute("id") or "").split("-", 2)[-1] for b in await page.locator(".opblock").all()}  # operations-<tag>-<operationId>
            assert len(shown) == len(_operations(document)), shown
        finally:
            await browser.close()
    assert outside == [] and errors == []

