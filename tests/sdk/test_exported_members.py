"""The SDK's public surface: ``__all__`` is complete and true, and the error tree drawn
in ``client_sdk.errors`` is the class tree."""

from __future__ import annotations

import importlib
import inspect
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
