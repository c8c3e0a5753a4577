"""The SDK's public surface: ``__all__`` is complete and true, and the error tree drawn
in ``client_sdk.errors`` is the class tree."""

from __future__ import annotations

import importlib
import inspect
import pydoc
import re

import pytest

import client_sdk
from client_sdk import errors

PUBLIC_MODULES = ["client_sdk", "client_sdk.errors", "client_sdk.ids", "client_sdk.types"]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_name_in_all_exists_once(name: str) -> None:
    module = importlib.import_module(name)
    assert len(set(module.__all__)) == len(module.__all__)
    for member in module.__all__:
        assert hasattr(module, member), f"{name}.{member}"


@pytest.mark.parametrize("name", PUBLIC_MODULES[1:])
def test_every_public_definition_of_a_module_is_exported(name: str) -> None:
    module = importlib.import_module(name)
    defined = {
        n for n, v in vars(module).items()
        if not n.startswith("_") and (inspect.isclass(v) or inspect.isfunction(v)) and v.__module__ == name
    }
    assert defined - {"error_for"} <= set(module.__all__)


def test_the_package_exports_what_its_public_modules_export() -> None:
    for name in PUBLIC_MODULES[1:]:
        module = importlib.import_module(name)
        assert set(module.__all__) <= set(client_sdk.__all__), name


def test_the_error_tree_in_the_docstring_is_the_class_tree() -> None:
    doc = errors.__doc__ or ""
    tree = [line for line in doc.splitlines() if re.search(r"[├└]── |^    PatrolSyncError", line)]
    parents: dict[int, str] = {}
    seen = set()
    for line in tree:
        match = re.search(r"(?:[├└]── )?([A-Z][A-Za-z]+)", line.strip("│ "))
        assert match
        name = match.group(1)
        depth = (line.index(name) - 4) // 4
        parents[depth] = name
        cls = getattr(errors, name)
        if depth > 0:
            assert cls.__bases__[0] is getattr(errors, parents[depth - 1]), name
        seen.add(name)
    assert seen == {n for n in errors.__all__}


def _public_members(cls: type) -> list[str]:
    return [n for n, v in vars(cls).items() if not n.startswith("_") and (callable(v) or isinstance(v, property))]


def _documented(obj: object) -> bool:
    return bool((getattr(obj, "__doc__", None) or "").strip())


@pytest.mark.parametrize("name", client_sdk.__all__)
def test_every_public_name_has_a_docstring(name: str) -> None:
    value = getattr(client_sdk, name)
    if name == "__version__":
        return
    assert _documented(value), name
    if inspect.isclass(value):
        assert "__doc__" in vars(value) and vars(value)["__doc__"], f"{name} only inherits its docstring"
        for member in _public_members(value):
            assert _documented(inspect.getattr_static(value, member)), f"{name}.{member}"


@pytest.mark.parametrize("cls", [client_sdk.AsyncPatrolClient, client_sdk.PatrolClient], ids=lambda c: c.__name__)
def test_every_public_method_of_the_clients_is_documented_for_help_and_pdoc(cls: type) -> None:
    undocumented = [n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n)) and not _documented(getattr(cls, n))]
    assert undocumented == []
    assert "sync" in pydoc.render_doc(cls.sync) and "Upload blobs" in pydoc.render_doc(cls.sync)
