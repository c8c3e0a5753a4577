"""The layers of docs/ARCHITECTURE.md hold: read from the source with ``ast``, imports
inside functions included, so a layer that reaches across shows up here and not in review."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: (package, what none of its modules may import, why)
RULES = [
    ("sync_server.engine", ("litestar", "uvicorn", "httpx", "aiosqlite", "asyncpg", "sync_server.stores", "sync_server.http",
                            "sync_server.services", "sync_server.console", "sync_server.app"), "the engine is pure: no I/O, no framework"),
    ("sync_server.wire", ("litestar", "sync_server.stores", "sync_server.http", "sync_server.services", "sync_server.engine"),
     "bytes on the wire: below the services and the engine"),
    ("sync_server.services", ("litestar", "uvicorn", "sync_server.http", "sync_server.console", "sync_server.app"),
     "services know nothing of HTTP"),
    ("sync_server.http", ("sync_server.stores", "aiosqlite", "asyncpg"), "the HTTP layer reaches data through the services"),
    ("sync_server.console", ("sync_server.stores", "aiosqlite", "asyncpg"), "the console's handlers, like the API's, reach data through the services"),
    ("sync_server.stores", ("litestar", "sync_server.http", "sync_server.services", "sync_server.console"), "stores sit below the services"),
    ("sync_server", ("client_sdk", "patrol_demo"), "the server never imports its own client"),
    ("schemas", ("sync_server", "client_sdk", "litestar"), "the wire vocabulary depends on nothing of ours"),
    ("client_sdk", ("sync_server", "patrol_demo", "litestar"), "the SDK talks to the server over HTTP only"),
]

#: (module, import) allowed although a rule above forbids it, and why
EXCEPTIONS = {
    ("sync_server.cli", "patrol_demo"): "`patrol-sync demo` imports the demo when the command runs, never at import time",
    ("sync_server.http.problems", "sync_server.stores.errors"): "the one place the stores' errors become problem documents",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str, module: str, is_package: bool) -> Iterator[str]:
    """Every module an import in ``source`` names, relative ones resolved, ``from a import b``
    giving ``a.b`` as well as ``a`` (``b`` may be a module)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target
            yield from (f"{target}.{alias.name}" for alias in node.names)


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((ROOT / package.replace(".", "/")).rglob("*.py")):
        module = module_name(path)
        for name in set(imports(path.read_text(encoding="utf-8"), module, path.name == "__init__.py")):
            for banned in forbidden:
                if within(name, banned) and not within(module, banned) and not any(m == module and within(name, allowed) for m, allowed in EXCEPTIONS):
                    found.append(f"{module} imports {name}")
    return sorted(found)


@pytest.mark.parametrize(("package", "forbidden", "why"), RULES, ids=[rule[0] for rule in RULES])
def test_no_layer_imports_what_is_above_or_beside_it(package: str, forbidden: tuple[str, ...], why: str) -> None:
    assert violations(package, forbidden) == [], why


def test_the_check_sees_relative_and_function_level_imports() -> None:
    source = "from ..stores import Store\n\ndef f():\n    from litestar import get\n    import uvicorn\n"
    found = set(imports(source, "sync_server.engine.merge", False))
    assert {"sync_server.stores", "sync_server.stores.Store", "litestar", "uvicorn"} <= found


def test_no_controller_reads_the_apps_state() -> None:
    """Controllers, the API's and the console's, get their services as dependencies
    (``create_app`` decides them, once)."""
    readers = []
    for path in sorted([*(ROOT / "sync_server/http/controllers").glob("*.py"), *(ROOT / "sync_server/console").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "state":
                readers.append(f"{path.name}:{node.lineno}")
            if isinstance(node, ast.ImportFrom) and node.module == "litestar.datastructures" and any(a.name == "State" for a in node.names):
                readers.append(f"{path.name}:{node.lineno} imports State")
    assert readers == []


def test_only_create_app_provides_dependencies() -> None:
    """One way to provide: no router or controller of the API or the console declares
    ``dependencies`` or builds a ``Provide`` of its own."""
    found = []
    for path in sorted([*(ROOT / "sync_server/http").rglob("*.py"), *(ROOT / "sync_server/console").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.keyword) and node.arg == "dependencies":
                found.append(f"{path.name}:{node.value.lineno} dependencies=")
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "dependencies" for t in node.targets):
                found.append(f"{path.name}:{node.lineno} dependencies =")
            if isinstance(node, ast.Name) and node.id == "Provide":
                found.append(f"{path.name}:{node.lineno} Provide")
    assert found == []
