"""Hostile input: each a clear 4xx problem document (or, for one bad change inside a
good change set, that change rejected alone), and nothing stored.

Envelope-level faults fail the whole request (PROTOCOL.md section 4); a bad value in
one change is rejected per change with a code (no poison pills): both store nothing.
"""

from __future__ import annotations

import functools
import gzip
import zlib
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
import pytest

from ..helpers import World, edit, new_id, stamp

MiB = 1024 * 1024
PROBLEM = "application/problem+json"


def good_change(record_id: str | None = None, **fields: Any) -> dict[str, Any]:
    ts = stamp("lamson-h01")
    values = {"ward_id": "lam-son", "name": "Nhà trọ", "kind": "boarding_house", **fields}
    return {"collection": "premises", "id": record_id or new_id(), "fields": {k: edit(v, ts) for k, v in values.items()}}


def push_body(*changes: dict[str, Any], device: str = "lamson-h01", changeset: str | None = None) -> dict[str, Any]:
    return {"device_id": device, "changeset_id": changeset or new_id(), "changes": list(changes)}


def nested_json(depth: int) -> bytes:
    """A push whose one value is a list nested ``depth`` deep."""
    prefix = msgspec.json.encode(push_body(good_change(name="x"))).decode()
    return prefix.replace('"x"', "[" * depth + "]" * depth, 1).encode()


def nested_msgpack(depth: int) -> bytes:
    body = msgspec.msgpack.encode(push_body(good_change(name="XXXXXXXX")))
    return body.replace(msgspec.msgpack.encode("XXXXXXXX"), b"\x91" * depth + b"\x90", 1)


@functools.cache
def bomb(size: int) -> bytes:
    """``size`` bytes of JSON whitespace gzipped to a few hundred KiB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b" " * MiB
    return compressor.compress(b"{") + b"".join(compressor.compress(chunk) for _ in range(size // MiB)) + compressor.flush()


JSON = {"Content-Type": "application/json"}
MSGPACK = {"Content-Type": "application/msgpack"}

#: (name, headers, body maker, expected status)
ENVELOPE_CASES: list[tuple[str, dict[str, str], Callable[[], bytes], int]] = [
    ("body over 8 MiB", JSON, lambda: b'{"device_id": "' + b"a" * (9 * MiB) + b'"}', 413),
    ("gzip bomb: 256 MiB after inflating", {**JSON, "Content-Encoding": "gzip"}, lambda: bomb(256 * MiB), 413),
    ("corrupt gzip", {**JSON, "Content-Encoding": "gzip"}, lambda: gzip.compress(b"{}")[:-6] + b"garbage!", 400),
    ("unknown Content-Encoding", {**JSON, "Content-Encoding": "br"}, lambda: b"{}", 415),
    ("unknown Content-Type", {"Content-Type": "text/plain"}, lambda: b"{}", 415),
    ("not JSON", JSON, lambda: b"{not json", 400),
    ("empty body", JSON, lambda: b"", 400),
    ("a JSON array", JSON, lambda: b"[1, 2, 3]", 422),
    ("JSON nested 100,000 deep", JSON, lambda: nested_json(100_000), 400),
    ("MessagePack nested 100,000 deep", MSGPACK, lambda: nested_msgpack(100_000), 400),
    ("invalid UTF-8 in JSON", JSON, lambda: msgspec.json.encode(push_body(good_change(name="ZZ"))).replace(b"ZZ", b"\xff\xfe"), 400),
    ("invalid UTF-8 in MessagePack", MSGPACK, lambda: msgspec.msgpack.encode(push_body(good_change(name="ZZ"))).replace(b"ZZ", b"\xed\xa0"), 400),
    ("a lone surrogate escape", JSON, lambda: msgspec.json.encode(push_body(good_change(name="ZZ"))).replace(b"ZZ", rb"\ud800"), 400),
    ("device id of 100,000 characters", JSON, lambda: msgspec.json.encode(push_body(good_change(), device="d" * 100_000)), 422),
    ("change set id with a path", JSON, lambda: msgspec.json.encode(push_body(good_change(), changeset="../../etc/passwd")), 422),
    ("another device's id", JSON, lambda: msgspec.json.encode(push_body(good_change(), device="phuson-h01")), 403),
    ("5,001 changes", JSON, lambda: msgspec.json.encode(push_body(*[good_change() for _ in range(5001)])), 413),
    ("unknown envelope field", JSON, lambda: msgspec.json.encode({**push_body(good_change()), "admin": True}), 422),
]

#: one bad change among good ones: (name, the bad change, expected error code)
CHANGE_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("a 1 MB name", good_change(name="n" * MiB), "invalid"),
    ("a 100 KiB address (past 64 KiB of UTF-8)", good_change(address="ệ" * 40_000), "invalid"),
    ("negative rooms", good_change(rooms=-1), "invalid"),
    ("rooms past 2**53", good_change(rooms=2**53), "invalid"),
    ("rooms of 10**30", good_change(rooms=10**30), "invalid"),
    ("a latitude of 1e308", good_change(lat=1e308), "invalid"),
    ("a stamp that is not a stamp", {**good_change(), "fields": {"name": {"value": "x", "ts": "yesterday"}}}, "invalid"),
    ("a stamp of 14 digits", {**good_change(), "fields": {"name": {"value": "x", "ts": "16862000000000-0000-lamson-h01"}}}, "invalid"),
    ("a record id with a path", good_change(record_id="../../etc/passwd"), "invalid"),
    ("a record id of 65 characters", good_change(record_id="r" * 65), "invalid"),
    ("a record id with a NUL", good_change(record_id="a\x00b"), "invalid"),
    ("an unknown collection", {**good_change(), "collection": "../users"}, "unknown_collection"),
    ("an unknown field", good_change(password="x"), "invalid"),
    ("an object where a string goes", good_change(name={"$gt": ""}), "invalid"),
    ("a nested value 50 deep", good_change(name=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]), "invalid"),
]

#: other endpoints: (name, method, path, expected status)
OTHER_CASES: list[tuple[str, str, str, int]] = [
    ("pull limit -1", "GET", "/v1/sync/pull?limit=-1", 422),
    ("pull limit 10**30", "GET", "/v1/sync/pull?limit=1000000000000000000000000000000", 400),
    ("pull limit not a number", "GET", "/v1/sync/pull?limit=abc", 400),
    ("pull cursor garbage", "GET", "/v1/sync/pull?cursor=%00%ff..%2F", 400),
    ("pull cursor of another epoch", "GET", "/v1/sync/pull?cursor=ZGVhZGJlZWY6MTA", 410),
    ("pull cursor with a negative seq", "GET", "/v1/sync/pull?cursor=eDotNQ", 400),
    ("pull cursor of 10,000 characters", "GET", "/v1/sync/pull?cursor=" + "A" * 10_000, 400),
    ("pull collections with a path", "GET", "/v1/sync/pull?collections=../../etc", 400),
    ("report with a date of month 13", "GET", "/v1/reports/summary?from=2023-13-45", 400),
    ("report with a year of 10**20", "GET", "/v1/reports/summary?from=100000000000000000000-01-01", 400),
    ("targets with a period that is not one", "GET", "/v1/reports/targets?period=../../x", 400),
    ("history of a path", "GET", "/v1/records/premises/..%2F..%2Fetc%2Fpasswd/history", 404),
    ("history of an unknown collection", "GET", "/v1/records/..%2Fusers/x/history", 404),
    ("resolve a conflict id with a path", "POST", "/v1/conflicts/..%2F..%2Fx/resolve", 404),
    ("search with a 10,000-character query", "GET", "/v1/search/premises?q=" + "a" * 10_000, 400),
    # a blob id is sha256: and 64 hex digits; anything else is 404 before any file is touched
    ("blob id with an encoded traversal", "GET", "/v1/blobs/..%2F..%2Fetc%2Fpasswd", 404),
    ("blob id with a raw traversal", "GET", "/v1/blobs/sha256:../../../etc/passwd", 404),
    ("blob upload over a traversal", "PUT", "/v1/blobs/..%2F..%2Fpatrol-sync.db", 404),
    ("blob id with a NUL", "GET", "/v1/blobs/sha256:%00", 404),
]


async def stored(world: World) -> list[dict[str, Any]]:
    return await world.admin.pull_all()


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["status"] == status and problem["title"] and "Traceback" not in response.text


@pytest.mark.parametrize(("name", "headers", "make", "status"), ENVELOPE_CASES, ids=[c[0] for c in ENVELOPE_CASES])
async def test_a_hostile_push_body_is_a_clear_4xx_and_stores_nothing(
    world: World, name: str, headers: dict[str, str], make: Callable[[], bytes], status: int
) -> None:
    before = await stored(world)
    response = await world.officer_a.http.post("/v1/sync/push", content=make(), headers=headers)
    assert_problem(response, status)
    assert await stored(world) == before


@pytest.mark.parametrize(("name", "change", "code"), CHANGE_CASES, ids=[c[0] for c in CHANGE_CASES])
async def test_a_hostile_change_is_rejected_alone_and_stored_nowhere(world: World, name: str, change: dict[str, Any], code: str) -> None:
    good = good_change()
    answer = await world.officer_a.push_ok([good, change])
    assert [r["status"] for r in answer["results"]] == ["applied", "rejected"]
    assert answer["results"][1]["errors"][0]["code"] == code
    assert [r["id"] for r in await stored(world)] == [good["id"]]


@pytest.mark.parametrize(("name", "method", "path", "status"), OTHER_CASES, ids=[c[0] for c in OTHER_CASES])
async def test_hostile_parameters_and_paths_are_clear_4xx(world: World, name: str, method: str, path: str, status: int) -> None:
    before = await stored(world)
    response = await world.supervisor.http.request(method, path, json={"choice": "kept"} if method == "POST" else None)
    assert_problem(response, status)
    assert await stored(world) == before


async def test_a_nul_character_in_a_value_is_refused_alone_and_the_rest_stored_intact(world: World) -> None:
    """NUL is the one character text may not hold (no store keeps it: PostgreSQL refuses
    it), so it is refused, by field; every other odd character comes back byte for byte."""
    odd = "Nhà\x01trọ\x1f\x7f\u2028\ufeff\U0001f525 "  # controls, a line separator, a BOM, an emoji
    nul, intact = good_change(name="Nhà\x00trọ"), good_change(name=odd, address="\t\r\n")
    answer = await world.officer_a.push_ok([nul, intact])
    refused, applied = answer["results"]
    assert refused["status"] == "rejected" and [(e["field"], e["code"]) for e in refused["errors"]] == [("name", "invalid")]
    assert applied["status"] == "applied"
    (pulled,) = await world.officer_a.pull_all()
    assert pulled["id"] == intact["id"]
    assert (pulled["fields"]["name"], pulled["fields"]["address"]) == (odd, "\t\r\n")


@pytest.mark.parametrize("header", ["Bearer " + "x" * 7000, "Basic YWRtaW46YWRtaW4=", "Bearer", "bearer  x y", "Bearer \u00e9", "Bearer a\tb"])
async def test_malformed_authorization_headers_get_401(world: World, header: str) -> None:
    async with httpx.AsyncClient(base_url=world.base_url) as anonymous:
        response = await anonymous.get("/v1/sync/pull", headers={"Authorization": header.encode()})
    assert_problem(response, 401)


async def test_an_insane_request_id_is_replaced_and_a_sane_one_echoed(world: World) -> None:
    sane = await world.officer_a.http.get("/healthz", headers={"X-Request-ID": "abc-123.x:y"})
    assert sane.headers["x-request-id"] == "abc-123.x:y"
    for insane in ["a" * 65, "a b", "ü", "<script>"]:
        response = await world.officer_a.http.get("/healthz", headers={"X-Request-ID": insane.encode()})
        assert response.headers["x-request-id"] != insane and len(response.headers["x-request-id"]) == 32
