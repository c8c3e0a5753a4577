"""``Prefer: return=minimal`` never costs the device a fact (PROTOCOL.md 4): whatever two
devices do to the same records, the device's state after a minimal answer is what a full
answer would have given it, the server's record, and its pulls (``own=skip``) leave it
holding exactly what the server holds."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client_sdk import AsyncPatrolClient, RetryPolicy, WireOptions, new_id
from schemas import Premises

from ..helpers import Api, make_world
from .conftest import USERS

Step = tuple[str, int, str]
_steps = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 1), st.sampled_from(["name", "rooms", "tag+", "tag-"])),
        st.tuples(st.sampled_from(["a push", "a sync", "b sync"]), st.just(0), st.just("")),
    ),
    max_size=10,
)
_n = itertools.count()


async def _edit(client: AsyncPatrolClient, record_id: str, what: str) -> bool:
    """One edit; False when there was nothing to do (no tag to remove)."""
    n = next(_n)
    if what == "name":
        await client.update(Premises, record_id, name=f"Nhà trọ số {n}")
    elif what == "rooms":
        await client.update(Premises, record_id, rooms=n)
    elif what == "tag+":
        await client.add(Premises, record_id, "tags", f"t{n % 4}")
    else:
        held = await client.get(Premises, record_id)
        if held is None or not held.tags:
            return False
        await client.remove(Premises, record_id, "tags", held.tags[0])
    return True


async def _server(supervisor: Api, ids: list[str]) -> dict[str, tuple[int, dict[str, Any], dict[str, str]]]:
    return {r["id"]: (r["seq"], r["fields"], r["stamps"]) for r in await supervisor.pull_all() if r["id"] in ids}


async def _device(client: AsyncPatrolClient, ids: list[str]) -> dict[str, tuple[int, dict[str, Any], dict[str, str]]]:
    return {r.id: (r.seq, r.fields, r.stamps) async for r in client.pulled_records() if r.id in ids}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_steps)
def test_after_a_minimal_answer_the_device_holds_what_a_full_answer_would_give(threaded_server: str, admin_token: str, tmp_path: Path, steps: list[Step]) -> None:
    asyncio.run(_example(threaded_server, admin_token, tmp_path, steps))


_tokens: dict[str, dict[str, str]] = {}


async def _example(url: str, admin_token: str, tmp_path: Path, steps: list[Step]) -> None:
    if url not in _tokens:  # the world once per server; each example has records of its own
        world = await make_world(url, admin_token)
        _tokens[url] = {api.device_id: api.token for api in world.all() if api.device_id and api.token}
        for api in world.all():
            await api.aclose()
    tokens = _tokens[url]
    supervisor = Api(url, tokens["sup-laptop"], "sup-laptop")
    retry = RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.01)
    run = new_id()

    def client(device: str) -> AsyncPatrolClient:
        return AsyncPatrolClient(url, token=tokens[device], device_id=device, user_id=USERS[device], path=tmp_path / f"{run}-{device}.db", retry=retry, wire=WireOptions())

    try:
        async with client("lamson-h01") as a, client("lamson-h02") as b:
            await a.sync()
            ids = [(await a.create(Premises(id=new_id(), ward_id="lam-son", name=f"Cơ sở {n}", kind="shop", tags=["karaoke"]))).id for n in range(2)]
            await a.sync()
            await b.sync()
            pushed: set[str] = set()  # what the device's next push answers
            for who, index, what in steps:
                if who in ("a", "b"):
                    if await _edit(a if who == "a" else b, ids[index], what) and who == "a":
                        pushed.add(ids[index])
                elif who == "b sync":
                    await b.sync()
                elif who == "a push":  # no pull: what the device holds of these comes from the answer alone
                    await a.sync(pull=False)
                    on_server = await _server(supervisor, ids)
                    held = await _device(a, ids)
                    for record_id in pushed:
                        assert held[record_id] == on_server[record_id], (record_id, steps)
                    pushed.clear()
                else:
                    await a.sync()
                    pushed.clear()
                    assert await _device(a, ids) == await _server(supervisor, ids), steps
            await a.sync()
            assert await _device(a, ids) == await _server(supervisor, ids), steps
    finally:
        await supervisor.aclose()
