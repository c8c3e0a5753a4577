"""The device on its own: every record call works with no server at all."""

from __future__ import annotations

import datetime as dt
import gzip
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from client_sdk import (
    AsyncPatrolClient,
    InvalidEdit,
    RecordNotFound,
    RetryPolicy,
    StoreMismatch,
    TransportError,
    UnavailableError,
    new_id,
    uuid7,
)
from schemas import Check, Premises, SafetyGroup, Violation

VN = dt.timezone(dt.timedelta(hours=7))
DAY_MS = 86_400_000


class Captured:
    """A transport that never reaches a server: it keeps each push body and answers 503."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/sync/push":
            body = request.read()
            self.bodies.append(msgspec.json.decode(gzip.decompress(body) if request.headers.get("content-encoding") == "gzip" else body))
        return httpx.Response(503, json={"type": "x", "title": "Service unavailable", "status": 503, "detail": "offline"})

    def changes(self) -> list[dict[str, Any]]:
        return [c for body in self.bodies for c in body["changes"]]


async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture
def captured() -> Captured:
    return Captured()


@pytest.fixture
def offline(tmp_path: Path, captured: Captured) -> Callable[..., AsyncPatrolClient]:
    def make(clock: Callable[[], int] | None = None, device_id: str = "dev-1", user_id: str = "u-1") -> AsyncPatrolClient:
        return AsyncPatrolClient(
            "http://patrol.invalid",
            token="pst_x",
            device_id=device_id,
            user_id=user_id,
            path=tmp_path / "device.db",
            http=httpx.AsyncClient(transport=httpx.MockTransport(captured)),
            retry=RetryPolicy(attempts=1),
            sleep=_no_sleep,
            clock=clock,
        )

    return make


@pytest.fixture
async def device(offline: Callable[..., AsyncPatrolClient]) -> AsyncIterator[AsyncPatrolClient]:
    client = offline()
    async with client:
        yield client
    await client._httpx.aclose()


def premises(**extra: Any) -> Premises:
    return Premises(id=new_id(), ward_id="lam-son", name="Nhà trọ Lê Lợi", kind="boarding_house", **extra)


async def test_a_created_record_reads_back_with_its_authorship_filled_in(device: AsyncPatrolClient) -> None:
    made = await device.create(premises(rooms=12))
    got = await device.get(Premises, made.id)
    assert got == made
    assert got is not None and got.created_by == "u-1" and got.created_at is not None
    assert got.rooms == 12


async def test_every_record_call_works_with_no_server(device: AsyncPatrolClient) -> None:
    p = await device.create(premises())
    c = await device.create(Check(id=new_id(), ward_id="lam-son", premises_id=p.id, kind="residence", started_at=dt.datetime(2023, 6, 1, 8, tzinfo=VN)))
    await device.update(Check, c.id, result="ok", residents_present=4)
    await device.add(Check, c.id, "officers", "u-1", "u-2")
    await device.remove(Check, c.id, "officers", "u-2")
    await device.delete(Premises, p.id)
    check = await device.get(Check, c.id)
    assert check is not None and check.result == "ok" and check.officers == ["u-1"]
    assert await device.get(Premises, p.id) is None
    assert [x.id for x in await device.find(Check, ward="lam-son")] == [c.id]
    assert await device.pending_count() == 2
    with pytest.raises(UnavailableError) as failure:
        await device.sync()
    assert failure.value.report is not None and failure.value.report.pushed == 0
    assert await device.pending_count() == 2  # nothing lost


async def test_sync_without_a_network_raises_a_transport_error_and_keeps_the_edits(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no signal", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        async with AsyncPatrolClient(
            "http://patrol.invalid", token="t", device_id="d", user_id="u", path=tmp_path / "d.db", http=http,
            retry=RetryPolicy(attempts=3), sleep=_no_sleep,
        ) as device:
            await device.create(premises())
            with pytest.raises(TransportError, match="after 3 attempts"):
                await device.sync()
            assert await device.pending_count() == 1


async def test_edits_of_one_field_before_a_sync_coalesce_into_one_change(device: AsyncPatrolClient, captured: Captured) -> None:
    p = await device.create(premises())
    for rooms in (3, 4, 5):
        await device.update(Premises, p.id, rooms=rooms)
    await device.add(Premises, p.id, "tags", "karaoke", "rented")
    await device.remove(Premises, p.id, "tags", "karaoke")
    with pytest.raises(UnavailableError):
        await device.sync()
    [change] = captured.changes()
    fields = change["fields"]
    assert fields["rooms"]["value"] == 5
    assert fields["tags"]["add"] == ["rented"] and fields["tags"]["remove"] == ["karaoke"]
    assert fields["name"]["value"] == "Nhà trọ Lê Lợi"  # the creation travels in the same change


@pytest.mark.parametrize(
    ("kind", "record_id_of", "values", "message"),
    [
        (Premises, "p", {"kind": "castle"}, "Invalid enum value"),
        (Premises, "p", {"rooms": -1}, ">= 0"),
        (Premises, "p", {"colour": "red"}, "no field 'colour'"),
        (Premises, "p", {"ward_id": "phu-son"}, "write-once"),
        (Premises, "p", {"name": None}, "Expected `str`"),
        (Check, "c", {"started_at": dt.datetime(2023, 6, 1, 8)}, "timezone"),
        (Check, "c", {"premises_id": "other"}, "write-once"),
    ],
)
async def test_invalid_edits_are_refused_before_anything_is_queued(
    device: AsyncPatrolClient, kind: Any, record_id_of: str, values: dict[str, Any], message: str
) -> None:
    p = await device.create(premises())
    c = await device.create(Check(id=new_id(), ward_id="lam-son", premises_id=p.id, kind="residence", started_at=dt.datetime(2023, 6, 1, tzinfo=VN)))
    before = await device.get(kind, p.id if record_id_of == "p" else c.id)
    with pytest.raises(InvalidEdit, match=message):
        await device.update(kind, p.id if record_id_of == "p" else c.id, **values)
    assert await device.get(kind, p.id if record_id_of == "p" else c.id) == before


async def test_an_invalid_new_record_is_refused(device: AsyncPatrolClient) -> None:
    with pytest.raises(InvalidEdit, match="fine_vnd"):
        await device.create(Violation(id=new_id(), ward_id="lam-son", check_id="c", premises_id="p", category="fire_safety", status="open", fine_vnd=-5))
    assert await device.pending_count() == 0


async def test_creating_an_existing_id_is_refused(device: AsyncPatrolClient) -> None:
    p = await device.create(premises())
    with pytest.raises(InvalidEdit, match="exists already"):
        await device.create(Premises(id=p.id, ward_id="lam-son", name="Khác", kind="shop"))


async def test_text_is_stored_in_nfc(device: AsyncPatrolClient) -> None:
    decomposed = unicodedata.normalize("NFD", "Nhà trọ Đường Trường Thi")
    p = await device.create(Premises(id=new_id(), ward_id="lam-son", name=decomposed, kind="lodging"))
    got = await device.get(Premises, p.id)
    assert got is not None and got.name == unicodedata.normalize("NFC", decomposed) != decomposed


async def test_a_deleted_record_is_hidden_and_cannot_be_edited(device: AsyncPatrolClient) -> None:
    p = await device.create(premises())
    await device.delete(Premises, p.id)
    assert await device.get(Premises, p.id) is None
    assert await device.find(Premises) == []
    with pytest.raises(RecordNotFound, match="deleted"):
        await device.update(Premises, p.id, rooms=1)
    with pytest.raises(RecordNotFound, match="not on this device"):
        await device.update(Premises, new_id(), rooms=1)


async def test_a_set_field_given_whole_becomes_adds_and_removes(device: AsyncPatrolClient) -> None:
    p = await device.create(premises(tags=["a", "b"]))
    got = await device.update(Premises, p.id, tags=["b", "c"])
    assert got.tags == ["b", "c"]


async def test_find_filters_by_ward_field_equality_and_time_range(device: AsyncPatrolClient) -> None:
    p = await device.create(premises())
    when = [dt.datetime(2023, 6, d, 9, tzinfo=VN) for d in (1, 2, 3)]
    checks = [
        await device.create(Check(id=new_id(), ward_id=w, premises_id=p.id, kind=k, started_at=t))
        for w, k, t in [("lam-son", "residence", when[0]), ("lam-son", "fire_safety", when[1]), ("phu-son", "residence", when[2])]
    ]
    ids = lambda found: [x.id for x in found]  # noqa: E731
    assert ids(await device.find(Check, ward="lam-son")) == [c.id for c in checks[:2]]
    assert ids(await device.find(Check, kind="residence")) == [checks[0].id, checks[2].id]
    assert ids(await device.find(Check, kind="residence", ward="phu-son")) == [checks[2].id]
    # 2023-06-02 09:00+07:00 is 02:00Z: the range compares instants, not text
    start = dt.datetime(2023, 6, 2, 2, tzinfo=dt.UTC)
    assert ids(await device.find(Check, since=start)) == [c.id for c in checks[1:]]
    assert ids(await device.find(Check, since=start, until=when[2])) == [checks[1].id]
    assert await device.count(Check, since=start) == 2
    assert ids(await device.find(Check, limit=1)) == [checks[0].id]
    assert await device.find(Check, result=None, kind="fire_safety") == [checks[1]]
    g = await device.create(SafetyGroup(id=new_id(), ward_id="lam-son", kind="fire_safety", name="Tổ liên gia 1", established_on=dt.date(2023, 3, 1)))
    assert ids(await device.find(SafetyGroup, since=dt.date(2023, 1, 1), until=dt.date(2024, 1, 1))) == [g.id]
    with pytest.raises(InvalidEdit, match="time zone"):
        await device.find(Check, since=dt.datetime(2023, 1, 1))


async def test_a_batch_keeps_all_its_edits_or_none(device: AsyncPatrolClient) -> None:
    async with device.batch():
        kept = [await device.create(premises()) for _ in range(3)]
    with pytest.raises(ZeroDivisionError):
        async with device.batch():
            await device.create(premises())
            raise ZeroDivisionError
    assert {p.id for p in await device.find(Premises)} == {p.id for p in kept}


async def test_a_restart_keeps_the_edits_and_its_clock_never_goes_back(
    offline: Callable[..., AsyncPatrolClient], captured: Captured
) -> None:
    now = 1_700_000_000_000
    first = offline(clock=lambda: now)
    async with first:
        p = await first.create(premises())
        await first.update(Premises, p.id, rooms=1)
    await first._httpx.aclose()
    # the handheld restarts with its clock set back by a day
    second = offline(clock=lambda: now - DAY_MS)
    async with second:
        assert (await second.get(Premises, p.id)) is not None
        q = await second.create(premises())
        with pytest.raises(UnavailableError):
            await second.sync()
    await second._httpx.aclose()
    stamps = {c["id"]: max(e["ts"] for e in c["fields"].values()) for c in captured.changes()}
    assert stamps[q.id] > stamps[p.id]


async def test_a_store_file_made_for_another_device_is_refused(offline: Callable[..., AsyncPatrolClient]) -> None:
    first = offline()
    async with first:
        await first.create(premises())
    await first._httpx.aclose()
    other = offline(device_id="dev-2")
    with pytest.raises(StoreMismatch, match="belongs to device dev-1"):
        await other.open()
    await other._httpx.aclose()


def test_ids_are_time_ordered_uuid7() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in ids)
    assert ids == sorted(ids, key=lambda u: u.int) and len(set(ids)) == len(ids)
    before = time.time_ns() // 1_000_000
    assert before - 1000 <= uuid7().int >> 80 <= before + 1000
    assert len(new_id()) == 36
