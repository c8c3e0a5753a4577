"""The wire vocabulary: exported names, JSON Schema, policies declared once."""

from __future__ import annotations

import importlib
from pathlib import Path

import msgspec
import pytest

import schemas
from schemas import COLLECTIONS, HLC, Policy
from schemas.jsonschema import document


def _meaning(node: object) -> object:
    """The schema less what does not change its meaning: how a description's lines are indented
    (msgspec 0.23 dedents docstrings differently from 0.18)."""
    if isinstance(node, dict):
        return {k: " ".join(v.split()) if k == "description" and isinstance(v, str) else _meaning(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_meaning(v) for v in node]
    return node


def test_the_committed_json_schema_is_up_to_date() -> None:
    committed = msgspec.json.decode(Path(schemas.__file__).with_name("schema.json").read_bytes())
    current = msgspec.json.decode(msgspec.json.encode(document()))
    assert _meaning(committed) == _meaning(current), "run: python -m schemas.jsonschema > schemas/schema.json"


def test_descriptions_that_differ_only_in_indentation_mean_the_same() -> None:
    assert _meaning({"description": "one\n    two"}) == _meaning({"description": "one\ntwo"})
    assert _meaning({"description": "one"}) != _meaning({"description": "two"})


@pytest.mark.parametrize("module", ["schemas", "schemas.wire", "schemas.collections", "schemas.admin", "schemas.stamps"])
def test_every_public_module_exports_what_it_names(module: str) -> None:
    mod = importlib.import_module(module)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.__all__ names {name}, which does not exist"


@pytest.mark.parametrize(
    ("collection", "field", "policy"),
    [
        ("violations", "status", Policy.RANK),
        ("violations", "check_id", Policy.FIRST),
        ("violations", "photos", Policy.SET),
        ("violations", "fine_vnd", Policy.LWW),
        ("checks", "premises_id", Policy.FIRST),
        ("premises", "ward_id", Policy.FIRST),
        ("premises", "created_by", Policy.FIRST),
        ("tips", "status", Policy.RANK),
        ("premises", "tags", Policy.SET),
    ],
)
def test_merge_policies_follow_the_domain(collection: str, field: str, policy: Policy) -> None:
    assert COLLECTIONS[collection].fields[field].policy is policy


def test_required_fields_follow_the_domain() -> None:
    assert COLLECTIONS["checks"].required == ("ward_id", "premises_id", "kind", "started_at")
    assert COLLECTIONS["violations"].required == ("ward_id", "check_id", "premises_id", "category", "status")
    assert COLLECTIONS["targets"].required == ("ward_id", "metric", "period", "target")


def test_violation_statuses_rank_resolved_equal_to_dismissed() -> None:
    rank = COLLECTIONS["violations"].fields["status"].rank
    assert rank is not None
    assert rank["open"] < rank["notified"] < rank["fined"] < rank["resolved"] == rank["dismissed"]


def test_the_hlc_never_goes_back_even_when_the_wall_clock_does() -> None:
    wall = [1_700_000_000_000]
    clock = HLC("h1", wall=lambda: wall[0])
    first = clock.now()
    wall[0] -= 60_000
    second = clock.now()
    assert second > first
    clock.observe("1800000000000-0003-h2")
    assert clock.now() > "1800000000000-0003-h2"
    assert clock.now().endswith("-h1")


def test_stamps_have_the_protocol_shape() -> None:
    stamp = HLC("lamson-h03", wall=lambda: 1_686_200_000_123).now()
    assert stamp == "1686200000123-0000-lamson-h03"
