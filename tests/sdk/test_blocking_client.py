"""``PatrolClient``, the blocking twin, as a script uses it: no event loop in sight.

The server runs on a thread of its own here, since the test itself blocks."""

from __future__ import annotations

import datetime as dt
import inspect
from pathlib import Path

import pytest

from client_sdk import AsyncPatrolClient, InvalidEdit, PatrolClient, SyncProgress, new_id
from schemas import Check, NewTeam, NewUser, NewWard, Premises

VN = dt.timezone(dt.timedelta(hours=7))



def test_the_blocking_client_works_offline_and_syncs(threaded_server: str, admin_token: str, tmp_path: Path) -> None:
    with PatrolClient(threaded_server, token=admin_token, device_id="admin-cli", user_id="admin", path=tmp_path / "admin.db") as admin:
        admin.create_ward(NewWard(id="lam-son", name="Phường Lam Sơn"))
        admin.create_team(NewTeam(id="ls-t1", ward_id="lam-son", name="Tổ tuần tra 1"))
        admin.create_user(NewUser(id="u-ngoc", name="Lê Văn Ngọc", role="officer", team_ids=["ls-t1"]))
        admin.create_user(NewUser(id="u-minh", name="Phạm Minh", role="supervisor", ward_ids=["lam-son"]))
        token = admin.register_device("lamson-h01", "u-ngoc").token
        sup_token = admin.register_device("sup-laptop", "u-minh").token
    progress: list[SyncProgress] = []
    with PatrolClient(threaded_server, token=token, device_id="lamson-h01", user_id="u-ngoc", path=tmp_path / "h01.db") as h01:
        with h01.batch():
            p = h01.create(Premises(id=new_id(), ward_id="lam-son", name="Nhà trọ Cửa Hữu", kind="boarding_house"))
            c = h01.create(Check(id=new_id(), ward_id="lam-son", premises_id=p.id, kind="fire_safety", started_at=dt.datetime(2023, 6, 2, 14, tzinfo=VN)))
        h01.update(Check, c.id, result="ok")
        h01.add(Check, c.id, "officers", "u-ngoc")
        (tmp_path / "camera.jpg").write_bytes(b"\xff\xd8 a fire extinguisher past its date")
        photo = h01.put_blob_file(tmp_path / "camera.jpg")
        h01.add(Check, c.id, "photos", photo)
        with pytest.raises(InvalidEdit):
            h01.update(Check, c.id, result="maybe")
        assert [x.id for x in h01.find(Check, kind="fire_safety")] == [c.id]
        assert h01.count(Premises) == 1 and h01.pending_count() == 2
        report = h01.sync(progress=progress.append)
        assert (report.pushed, report.pulled, report.blobs) == (2, 2, 1)
        assert {r.id for r in h01.pulled_records(page=1)} == {p.id, c.id}
        assert h01.dead_letters() == [] and h01.reported_conflicts() == []
    assert progress[-1].pulled == 2
    with PatrolClient(threaded_server, token=sup_token, device_id="sup-laptop", user_id="u-minh", path=tmp_path / "sup.db") as sup:
        sup.sync()
        assert sup.get(Check, c.id) == h01_check(tmp_path, threaded_server, token, c.id)
        assert sup.summary_report(ward="lam-son").checks == 1
        assert sup.get_blob(photo) == (tmp_path / "camera.jpg").read_bytes()
        assert sup.missing_blobs() == [] and sup.unsent_blobs() == []


def h01_check(tmp_path: Path, url: str, token: str, check_id: str) -> Check | None:
    """Reopen the handheld's store: what it wrote is still there."""
    with PatrolClient(url, token=token, device_id="lamson-h01", user_id="u-ngoc", path=tmp_path / "h01.db") as again:
        return again.get(Check, check_id)


async def test_the_blocking_client_refuses_to_run_inside_its_own_loop(tmp_path: Path) -> None:
    client = PatrolClient("http://patrol.invalid", token="t", device_id="d", user_id="u", path=tmp_path / "d.db")
    try:
        async def inside() -> None:
            client.pending_count()

        with pytest.raises(RuntimeError, match="own loop"):
            client._portal.call(_wrap(client, inside()))
    finally:
        client.close()


async def _wrap(client: PatrolClient, coro: object) -> None:
    await coro  # type: ignore[misc]


def test_both_clients_offer_the_same_methods() -> None:
    public = lambda cls: {n for n in dir(cls) if not n.startswith("_")} - {"open", "close", "aclose", "device_id", "user_id"}  # noqa: E731
    assert public(PatrolClient) == public(AsyncPatrolClient)


def _blocking(annotation: str) -> str:
    """What a blocking method returns for an async one's return annotation."""
    return annotation.replace("AsyncIterator[", "Iterator[")


@pytest.mark.parametrize("name", sorted(n for n in dir(PatrolClient) if not n.startswith("_") and callable(getattr(PatrolClient, n))))
def test_each_blocking_method_takes_and_returns_what_its_async_twin_does(name: str) -> None:
    blocking = inspect.signature(getattr(PatrolClient, name))
    twin = inspect.signature(getattr(AsyncPatrolClient, {"close": "aclose"}.get(name, name)))
    mine, theirs = dict(blocking.parameters), dict(twin.parameters)
    if name == "enrol":  # like the constructors: a transport for the blocking one's own HTTP client
        assert mine.pop("transport").default is None and theirs.pop("http").default is None
    assert list(mine.values()) == list(theirs.values())
    assert blocking.return_annotation == _blocking(twin.return_annotation)


def test_the_blocking_constructor_takes_the_async_ones_options_but_a_transport_for_the_http_client() -> None:
    blocking = dict(inspect.signature(PatrolClient.__init__).parameters)
    twin = dict(inspect.signature(AsyncPatrolClient.__init__).parameters)
    assert blocking.pop("transport").default is None and twin.pop("http").default is None
    twin.pop("sleep")  # the blocking client sleeps for real
    assert list(blocking.values()) == list(twin.values())
