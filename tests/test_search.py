"""Premises search (PROTOCOL.md section 6c): case and diacritics ignored, ranked, scoped."""

from __future__ import annotations

import pytest

from .helpers import Api, World, edit, stamp

PROBLEM = "application/problem+json"


def _premises(record_id: str, ward: str, node: str, name: str, kind: str = "boarding_house", address: str | None = None, owner: str | None = None) -> dict[str, object]:
    ts = stamp(node)
    fields = {"ward_id": edit(ward, ts), "name": edit(name, ts), "kind": edit(kind, ts)}
    if address:
        fields["address"] = edit(address, ts)
    if owner:
        fields["owner_name"] = edit(owner, ts)
    return {"collection": "premises", "id": record_id, "fields": fields}


@pytest.fixture
async def places(world: World) -> None:
    await world.officer_a.push_ok(
        [
            _premises("p1", "lam-son", "lamson-h01", "Nhà trọ Lê Lợi", address="12 Đường Trần Phú", owner="Nguyễn Văn Đức"),
            _premises("p2", "lam-son", "lamson-h01", "Karaoke Hoa Hồng", kind="karaoke", address="5 Lê Lợi"),
            _premises("p3", "lam-son", "lamson-h01", "Nhà nghỉ Sông Mã", kind="lodging", address="Đường Bà Triệu"),
            _premises("p4", "lam-son", "lamson-h01", "Nhà trọ Cũ", address="Lê Lợi"),
        ]
    )
    await world.officer_c.push_ok([_premises("p9", "phu-son", "phuson-h01", "Nhà trọ Lê Lợi Phú Sơn")])
    await world.officer_a.push_ok([{"collection": "premises", "id": "p4", "delete": {"ts": stamp("lamson-h01")}}])


async def _ids(api: Api, **params: object) -> list[str]:
    response = await api.http.get("/v1/search/premises", params=params)
    assert response.status_code == 200, response.text
    return [hit["id"] for hit in response.json()["results"]]


@pytest.mark.usefixtures("places")
@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("nha tro le loi", ["p1"]),
        ("Nhà trọ Lê Lợi", ["p1"]),
        ("NHA TRO", ["p1"]),
        ("duong", ["p1", "p3"]),
        ("đường bà", ["p3"]),
        ("duc", ["p1"]),
        ("hoa hong", ["p2"]),
        ("sông", ["p3"]),
        ("xyz", []),
    ],
)
async def test_search_ignores_case_and_diacritics(world: World, q: str, expected: list[str]) -> None:
    assert sorted(await _ids(world.supervisor, q=q, ward="lam-son")) == expected


@pytest.mark.usefixtures("places")
async def test_a_name_match_ranks_above_an_address_match(world: World) -> None:
    assert await _ids(world.officer_a, q="le loi") == ["p1", "p2"]


@pytest.mark.usefixtures("places")
async def test_search_is_scoped_like_pull(world: World) -> None:
    assert await _ids(world.officer_c, q="le loi") == ["p9"]
    assert sorted(await _ids(world.supervisor, q="le loi")) == ["p1", "p2", "p9"]
    assert (await world.officer_c.http.get("/v1/search/premises", params={"q": "le loi", "ward": "lam-son"})).status_code == 403


@pytest.mark.usefixtures("places")
async def test_search_filters_by_kind_and_limits(world: World) -> None:
    assert await _ids(world.supervisor, q="le loi", kind="karaoke") == ["p2"]
    assert len(await _ids(world.supervisor, q="le loi", limit=1)) == 1


@pytest.mark.usefixtures("places")
async def test_a_deleted_premises_is_not_found(world: World) -> None:
    assert "p4" not in await _ids(world.supervisor, q="nha tro")


@pytest.mark.usefixtures("places")
async def test_renamed_premises_are_found_by_their_new_name(world: World) -> None:
    await world.officer_a.push_ok([{"collection": "premises", "id": "p3", "fields": {"name": edit("Khách sạn Hạc Thành", stamp("lamson-h01"))}}])
    assert await _ids(world.supervisor, q="hac thanh") == ["p3"]
    assert await _ids(world.supervisor, q="song ma") == []


@pytest.mark.parametrize("params", [{}, {"q": ""}, {"q": "x" * 201}, {"q": "nha", "limit": 0}, {"q": "nha", "kind": "castle"}])
async def test_bad_search_parameters_are_400(world: World, params: dict[str, object]) -> None:
    response = await world.supervisor.http.get("/v1/search/premises", params=params)
    assert response.status_code == 400 and response.headers["content-type"].startswith(PROBLEM)


@pytest.mark.usefixtures("places")
@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ('"', []),  # no word at all
        ("nha OR tro", []),  # three words, "or" among them: not a union of nha and tro (p1, p3, p9)
        ("NEAR(nha tro)", []),  # "near" is a word like any other, not an operator
        ("nha*", ["p1", "p3", "p9"]),  # the word nha; * is no wildcard syntax
        ("-nha", ["p1", "p3", "p9"]),  # the word nha, not "without nha" (that would be p2)
        ("p1:", []),  # not a column filter: no premises holds the word p1
    ],
)
async def test_query_syntax_is_not_interpreted(world: World, q: str, expected: list[str]) -> None:
    assert sorted(await _ids(world.supervisor, q=q)) == expected
