"""Operations: structured logs with request ids and never a token; Prometheus metrics;
no timing oracle on token lookup."""

from __future__ import annotations

import hashlib
import inspect
import json
import statistics
import time
from typing import Any

import httpx
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from sync_server.loopback import LoopbackServer

from ..helpers import World, edit, new_id, premises, stamp
from ._process import ServerProcess, cli


async def test_server_logs_are_json_lines_with_request_ids_and_never_a_token(sqlite_url: str, make_server: type[ServerProcess]) -> None:
    admin_token = cli("admin", "bootstrap", "--db", sqlite_url)
    server = make_server(sqlite_url)
    await server.start()
    secrets = [admin_token]
    seen_ids = []
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {admin_token}"}) as admin:
        await admin.post("/v1/admin/wards", json={"id": "lam-son", "name": "Lam Sơn"})
        await admin.post("/v1/admin/teams", json={"id": "t", "ward_id": "lam-son", "name": "Tổ"})
        await admin.post("/v1/admin/users", json={"id": "u", "name": "U", "role": "officer", "team_ids": ["t"]})
        device_token = (await admin.post("/v1/admin/devices", json={"device_id": "h1", "user_id": "u"})).json()["token"]
        secrets.append(device_token)
        async with httpx.AsyncClient(base_url=server.url) as anyone:
            for headers, path in [
                ({"Authorization": f"Bearer {device_token}", "X-Request-ID": "trace-1"}, "/v1/sync/pull"),
                ({"Authorization": f"Bearer {device_token}"}, f"/v1/sync/pull?access_token={device_token}&cursor=abc"),
                ({"Authorization": f"Bearer {device_token}x"}, "/v1/sync/pull"),  # unknown token
                ({"Authorization": f"Basic {device_token}"}, "/v1/admin/users"),
                ({"Authorization": f"Bearer {device_token}"}, f"/v1/records/premises/{device_token}/history"),
                ({}, f"/nowhere/{device_token[:10]}?token={device_token}"),
            ]:
                response = await anyone.get(path, headers=headers)
                seen_ids.append(response.headers["x-request-id"])
            body = {"device_id": "h1", "changeset_id": new_id(), "changes": [premises(new_id(), "lam-son", "h1")]}
            response = await anyone.post("/v1/sync/push", json=body, headers={"Authorization": f"Bearer {device_token}"})
            assert response.status_code == 200
            seen_ids.append(response.headers["x-request-id"])
        await admin.delete("/v1/admin/devices/h1")
    server.stop()
    text = server.log()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    for secret in secrets:
        assert secret not in text and secret[:16] not in text
    access = [line for line in lines if line["logger"] == "patrol_sync.access"]
    assert seen_ids[0] == "trace-1"
    assert set(seen_ids) <= {line["request_id"] for line in access}
    assert all({"method", "path", "status", "ms"} <= line.keys() for line in access)
    assert any(line["path"].startswith("/v1/sync/pull?access_token=***") for line in access)
    assert not [line for line in lines if line["level"] in ("error", "critical")]


def families(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def test_metrics_count_requests_latencies_changes_conflicts_and_rejections(world: World) -> None:
    record = new_id()
    await world.officer_a.push_ok([premises(record, "lam-son", "lamson-h01")])
    answer = await world.officer_b.push_ok(
        [
            {"collection": "premises", "id": record, "fields": {"name": edit("Tên khác", stamp("lamson-h02"))}},  # a conflict
            premises(new_id(), "phu-son", "lamson-h02"),  # out of scope: rejected
            {"collection": "nowhere", "id": "x", "fields": {}},  # unknown collection: rejected
        ]
    )
    assert len(answer["conflicts"]) == 1
    await world.officer_a.pull_all()
    async with httpx.AsyncClient(base_url=world.base_url) as anyone:  # no auth needed
        response = await anyone.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"] == CONTENT_TYPE_LATEST
    m = families(response.text)
    assert m["patrol_sync_changes_applied_total"][()] == 2
    assert m["patrol_sync_changes_rejected_total"][()] == 2
    assert m["patrol_sync_conflicts_total"][()] == 1
    assert m["patrol_sync_changesets_total"][(("outcome", "applied"),)] == 2
    assert m["patrol_sync_writer_queue_changes"][()] == 0
    assert m["patrol_sync_http_requests_total"][(("method", "POST"), ("route", "/v1/sync/push"), ("status", "200"))] == 2
    assert m["patrol_sync_http_requests_total"][(("method", "GET"), ("route", "/v1/sync/pull"), ("status", "200"))] >= 1
    assert m["patrol_sync_http_request_duration_seconds_count"][(("method", "POST"), ("route", "/v1/sync/push"))] == 2
    assert m["patrol_sync_writer_commit_seconds_count"][()] >= 1
    # routes are templates, never ids
    assert not [labels for labels in m["patrol_sync_http_requests_total"] if record in str(labels)]


async def test_unknown_and_revoked_tokens_are_refused_by_the_very_same_store_calls(world: World, server: LoopbackServer) -> None:
    """Equal cost by construction: both refusals make one call, ``principal(hash)``, with
    the same query, and nothing else (no lookup of the revoked device, no verification
    of a hash). A timing test alone cannot see a 200 µs difference on a loaded machine;
    this sees any extra step, whatever it costs."""
    answer = (await world.admin.http.post("/v1/admin/devices", json={"device_id": "lost-h2", "user_id": "u-ngoc"})).json()
    revoked = answer["token"]
    assert (await world.admin.http.delete("/v1/admin/devices/lost-h2")).status_code == 204
    unknown = revoked[:-4] + ("AAAA" if not revoked.endswith("AAAA") else "BBBB")
    store = server.app.state.store
    calls: list[tuple[str, tuple[Any, ...]]] = []

    def recorded(name: str, method: Any) -> Any:
        async def call(*args: Any, **kwargs: Any) -> Any:
            calls.append((name, args))
            return await method(*args, **kwargs)

        return call

    statements: list[str] = []
    for conn in getattr(store, "_readers", []):  # SQLite: every statement the store runs, too
        await conn.set_trace_callback(statements.append)
    names = [n for n in dir(type(store)) if not n.startswith("_") and inspect.iscoroutinefunction(getattr(type(store), n))]
    originals = {n: getattr(store, n) for n in names}
    for name, method in originals.items():
        setattr(store, name, recorded(name, method))
    traces = {}
    try:
        async with httpx.AsyncClient(base_url=world.base_url) as http:
            for label, token in [("unknown", unknown), ("revoked", revoked)]:
                calls.clear()
                statements.clear()
                response = await http.get("/v1/sync/pull", headers={"Authorization": f"Bearer {token}"})
                assert response.status_code == 401
                hashed = hashlib.sha256(token.encode()).hexdigest()
                sql = [" ".join(q.replace(hashed, "?").split()) for q in statements]
                traces[label] = ([(name, [hashed == a or type(a).__name__ for a in args]) for name, args in calls], sql)
    finally:
        for name in originals:
            delattr(store, name)
        for conn in getattr(store, "_readers", []):
            await conn.set_trace_callback(None)
    assert traces["unknown"] == traces["revoked"]
    assert traces["unknown"][0] == [("principal", [True])]
    assert len(traces["unknown"][1]) == (1 if hasattr(store, "_readers") else 0)


async def test_unknown_and_revoked_tokens_cost_the_same_time_to_refuse(world: World) -> None:
    """Both take one indexed lookup by hash; measured over HTTP, interleaved in pairs
    so that load on the machine hits both alike. This catches a gross difference (a slow
    hash verified for one of them); the call trace above proves the paths identical."""
    answer = (await world.admin.http.post("/v1/admin/devices", json={"device_id": "lost-h1", "user_id": "u-ngoc"})).json()
    revoked = answer["token"]
    assert (await world.admin.http.delete("/v1/admin/devices/lost-h1")).status_code == 204
    unknown = revoked[:-4] + ("AAAA" if not revoked.endswith("AAAA") else "BBBB")
    async with httpx.AsyncClient(base_url=world.base_url) as http:

        async def refuse(token: str) -> float:
            started = time.perf_counter()
            response = await http.get("/v1/sync/pull", headers={"Authorization": f"Bearer {token}"})
            elapsed = time.perf_counter() - started
            assert response.status_code == 401
            return elapsed

        for _ in range(50):  # warm up connections and caches
            await refuse(unknown)
            await refuse(revoked)
        times: dict[str, list[float]] = {"unknown": [], "revoked": []}
        differences = []
        for n in range(600):
            order = [("unknown", unknown), ("revoked", revoked)] if n % 2 else [("revoked", revoked), ("unknown", unknown)]
            pair = {name: await refuse(token) for name, token in order}
            for name, elapsed in pair.items():
                times[name].append(elapsed)
            differences.append(pair["revoked"] - pair["unknown"])
    medians = {name: statistics.median(values) for name, values in times.items()}
    gap = statistics.median(differences)
    print(f"\ntoken refusal, median of 600: unknown {medians['unknown'] * 1e3:.3f} ms, revoked {medians['revoked'] * 1e3:.3f} ms, paired gap {gap * 1e6:+.0f} µs")
    # a slow hash (argon2: tens of milliseconds) on one path is far past these; a busy
    # machine (the suite's other worker, other jobs) moves unpaired medians more than pairs
    fastest = min(medians.values())
    assert abs(gap) < max(0.3e-3, 0.15 * fastest)  # paired: 15 %, or 300 µs on a fast run
    assert abs(medians["unknown"] - medians["revoked"]) < max(2e-3, 0.5 * fastest)  # a busy run: 3.4 against 2.4 ms
