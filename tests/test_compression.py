"""Answer compression (PROTOCOL.md 1; ``sync_server/http/compression.py``): a whole push
answer above 64 KiB is brotli at quality 4, cheaper for the server; every smaller answer,
and every pull page, is brotli at quality 5 as before, byte for byte."""

from __future__ import annotations

from typing import Any

import brotli  # type: ignore[import-untyped]
import httpx
import pytest

from .helpers import World, premises

pytestmark = pytest.mark.filterwarnings("error")


def _brotli(data: bytes, quality: int) -> bytes:
    """As Litestar's facade compresses a one-chunk answer: process, flush, finish."""
    compressor = brotli.Compressor(quality=quality, mode=brotli.MODE_TEXT, lgwin=22, lgblock=0)
    out: bytes = compressor.process(data) + compressor.flush() + compressor.finish()
    return out


async def _raw(http: httpx.AsyncClient, method: str, path: str, **kw: Any) -> tuple[bytes, bytes]:
    """The answer's bytes as sent (compressed) and as decoded."""
    async with http.stream(method, path, headers={"Accept-Encoding": "br"}, **kw) as response:
        assert response.status_code == 200
        assert response.headers["content-encoding"] == "br"
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    return raw, brotli.decompress(raw)


def _changes(prefix: str, count: int) -> list[dict[str, Any]]:
    return [premises(f"{prefix}{n}", "lam-son", "lamson-h01", name=f"Nhà trọ Lê Lợi số {n} " * 3) for n in range(count)]


async def test_a_whole_push_answer_over_64_kib_is_brotli_at_quality_4(world: World) -> None:
    body = {"device_id": "lamson-h01", "changeset_id": "big", "changes": _changes("big", 250)}
    raw, answer = await _raw(world.officer_a.http, "POST", "/v1/sync/push", json=body)
    assert len(answer) > 64 * 1024
    assert raw == _brotli(answer, 4) and raw != _brotli(answer, 5)


async def test_a_push_answer_under_64_kib_is_brotli_at_quality_5_as_before(world: World) -> None:
    body = {"device_id": "lamson-h01", "changeset_id": "small", "changes": _changes("small", 20)}
    raw, answer = await _raw(world.officer_a.http, "POST", "/v1/sync/push", json=body)
    assert 1024 < len(answer) < 64 * 1024
    assert raw == _brotli(answer, 5) and raw != _brotli(answer, 4)


async def test_a_pull_page_over_64_kib_stays_at_quality_5(world: World) -> None:
    body = {"device_id": "lamson-h01", "changeset_id": "page", "changes": _changes("page", 250)}
    assert (await world.officer_a.http.post("/v1/sync/push", json=body, headers={"Prefer": "return=minimal"})).status_code == 200
    raw, page = await _raw(world.officer_b.http, "GET", "/v1/sync/pull")
    assert len(page) > 64 * 1024
    assert raw == _brotli(page, 5)
