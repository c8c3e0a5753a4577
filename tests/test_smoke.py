from .helpers import World, premises


async def test_a_pushed_record_is_pulled_back(world: World) -> None:
    answer = await world.officer_a.push_ok([premises("p1", "lam-son", "lamson-h01")])
    assert answer["results"][0]["status"] == "applied", answer
    records = await world.officer_b.pull_all()
    assert [r["id"] for r in records] == ["p1"]
    assert records[0]["fields"]["name"] == "Nhà trọ Lê Lợi"
