"""The engine's fast path for new records (``merge._create_fresh``, issue 16) against
the general path it shortcuts: for any creating change, ordinary or not, both give
the same outcome (state, diff, errors, stamps), the same stored encodings and move
the server's clock the same way."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import example, given, settings
from hypothesis import strategies as st

from schemas import HLC, AnyChange
from sync_server.engine import Context, apply_change
from sync_server.engine.state import encode_crdt, encode_doc
from sync_server.principal import Principal

T0 = 1_686_200_000_000
NOW = T0 + 10_000_000
DEVICE = "h01"
PHOTOS = ["sha256:" + c * 64 for c in "abc"]
OFFICERS = ["u-a", "u-b", "u-c"]
#: the record another ward holds, which a check of this ward may not name
HELD = {("premises", "p-other"): "ben-thanh", ("premises", "p-here"): "lam-son"}


def _stamp(ms: int, node: str) -> str:
    return f"{ms:013d}-0000-{node}"


#: mostly the device's own stamps within the window; sometimes another node's, one too
#: far ahead, one before the device's registration (the floor)
_own = st.builds(lambda ms, c: f"{NOW - 5_000 + ms:013d}-{c:04x}-{DEVICE}", st.integers(0, 9), st.integers(0, 2))
_ODD = (_stamp(NOW, "h02"), _stamp(NOW + 3_600_000, DEVICE), _stamp(T0 - 3_600_000, DEVICE))
stamps = st.integers(0, 29).flatmap(lambda n: st.sampled_from(_ODD) if n == 0 else _own)
REQUIRED = ("ward_id", "premises_id", "kind", "started_at")

def mostly(usual: st.SearchStrategy[Any], *odd: Any) -> st.SearchStrategy[Any]:
    """``usual`` nine times in ten, else one of ``odd``."""
    return st.integers(0, 9).flatmap(lambda n: st.sampled_from(odd) if n == 0 else usual)


_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "ward_id": mostly(st.just("lam-son"), "ben-thanh"),
    "created_by": mostly(st.just("u-ngoc"), "u-other"),
    "created_at": st.sampled_from(["2023-06-08T09:00:00+07:00", "2023-06-08T02:00:00.500Z"]),
    "premises_id": mostly(st.sampled_from(["p-1", "p-here"]), "p-other"),
    "kind": st.sampled_from(["residence", "fire_safety"]),
    "started_at": st.sampled_from(["2023-06-08T09:15:00+07:00", "2023-06-09T23:59:59-05:00"]),
    "team_id": st.sampled_from(["lam-son-t1", None]),
    "result": st.sampled_from(["ok", "violations_found", None]),
    "residents_present": st.integers(0, 3),
    # NFD text is stored as NFC; the long ones are past the test's 60-byte text limit
    "notes": mostly(st.sampled_from(["Kiểm tra nhà trọ", "Kie\u0302\u0309m tra", None]), "x" * 70, "ổ" * 25),
}


@st.composite
def creating_changes(draw: st.DrawFn) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    names = draw(st.sets(st.sampled_from([*_VALUES, "photos", "officers"])))
    if draw(st.integers(0, 4)):  # mostly a whole record, as devices make them
        names |= set(REQUIRED)
    for name in sorted(names):
        ts = draw(stamps)
        base = draw(mostly(st.sampled_from([None, _stamp(NOW - 5_000, DEVICE)]), _stamp(NOW + 1_000, DEVICE)))
        edit: dict[str, Any] = {"ts": ts, "base": base}
        if name in ("photos", "officers"):
            pool = PHOTOS if name == "photos" else OFFICERS
            edit["add"] = draw(st.lists(st.sampled_from(pool), max_size=draw(mostly(st.just(2), 4))))  # duplicates too
            edit["remove"] = draw(st.lists(st.sampled_from(pool), max_size=1)) if draw(st.integers(0, 3)) == 0 else []
        else:
            edit["value"] = draw(_VALUES[name])
        fields[name] = edit
    change: dict[str, Any] = {"collection": "checks", "id": "c-1", "fields": fields}
    if draw(st.integers(0, 19)) == 0:
        change["delete"] = {"ts": draw(stamps)}
    return change


def _outcome(raw: dict[str, Any], fast: bool, role: str = "officer") -> tuple[Any, ...]:
    change = msgspec.convert(raw, AnyChange)
    hlc = HLC("server", wall=lambda: NOW)
    principal = Principal(user_id="u-ngoc", device_id=DEVICE, role=role, wards=frozenset({"lam-son"}))
    ctx = Context(
        principal=principal, hlc=hlc, now_ms=NOW, max_text_bytes=60, max_set_elements=2, node=DEVICE, floor_ms=T0, ward_of=HELD.get
    )
    out = apply_change(None, change, ctx, fast=fast)
    encoded = (encode_doc(out.state), encode_crdt(out.state), list(out.state.fields), list(out.state.stamps)) if out.state else None
    return out, encoded, hlc.state


@settings(max_examples=600, deadline=None)
@given(creating_changes(), st.sampled_from(["officer", "admin"]))
@example(
    {
        "collection": "checks",
        "id": "c-1",
        "fields": {
            n: {"value": v, "ts": _stamp(NOW, DEVICE)}
            for n, v in [("ward_id", "lam-son"), ("premises_id", "p-1"), ("kind", "residence"), ("started_at", "2023-06-08T09:15:00+07:00")]
        },
    },
    "officer",
)
def test_a_new_record_takes_the_fast_path_to_the_same_outcome_as_the_general_one(raw: dict[str, Any], role: str) -> None:
    assert _outcome(raw, fast=True, role=role) == _outcome(raw, fast=False, role=role)


def test_an_ordinary_new_record_does_take_the_fast_path() -> None:
    from sync_server.engine import merge

    raw = {
        "collection": "checks",
        "id": "c-1",
        "fields": {
            "ward_id": {"value": "lam-son", "ts": _stamp(NOW, DEVICE)},
            "premises_id": {"value": "p-1", "ts": _stamp(NOW, DEVICE)},
            "kind": {"value": "residence", "ts": _stamp(NOW, DEVICE)},
            "started_at": {"value": "2023-06-08T09:15:00+07:00", "ts": _stamp(NOW, DEVICE)},
            "photos": {"add": PHOTOS[:2], "ts": _stamp(NOW, DEVICE)},
        },
    }
    change = msgspec.convert(raw, AnyChange)
    principal = Principal(user_id="u-ngoc", device_id=DEVICE, role="officer", wards=frozenset({"lam-son"}))
    ctx = Context(principal=principal, hlc=HLC("server", wall=lambda: NOW), now_ms=NOW, node=DEVICE)
    fresh = merge._create_fresh(merge.COLLECTIONS["checks"], change, ctx)
    assert fresh is not None and fresh.state is not None
    assert fresh.state.fields["photos"] == sorted(PHOTOS[:2])
    assert fresh.state.fields["created_by"] == "u-ngoc"


@settings(max_examples=600, deadline=None)
@given(creating_changes(), st.sampled_from(["officer", "admin"]))
def test_a_record_made_as_sent_is_one_the_rule_finds_the_device_computes_itself(raw: dict[str, Any], role: str) -> None:
    """``Outcome.as_sent`` (set by the fast path, so that a minimal answer need not apply
    the change again) only where the rule, ``own.computable`` over the change as plain
    JSON, says the device computes the record itself."""
    from sync_server.engine.own import computable

    out, _, _ = _outcome(raw, fast=True, role=role)
    if out.as_sent:
        assert computable(None, out.state, [msgspec.to_builtins(msgspec.convert(raw, AnyChange))], DEVICE)


def test_a_record_made_as_sent_says_so_and_one_the_server_added_to_or_cleaned_does_not() -> None:
    values = [
        ("ward_id", "lam-son"),
        ("premises_id", "p-1"),
        ("kind", "residence"),
        ("started_at", "2023-06-08T09:15:00+07:00"),
        ("created_by", "u-ngoc"),
        ("created_at", "2023-06-08T09:00:00+07:00"),
        ("notes", "Kiểm tra"),
    ]
    fields = {n: {"value": v, "ts": _stamp(NOW, DEVICE)} for n, v in values}
    raw = {"collection": "checks", "id": "c-1", "fields": {**fields, "officers": {"add": OFFICERS[:2], "ts": _stamp(NOW, DEVICE)}}}
    assert _outcome(raw, fast=True)[0].as_sent
    del raw["fields"]["created_by"]  # the server adds the author: the device cannot know its stamp
    assert not _outcome(raw, fast=True)[0].as_sent
    raw["fields"]["created_by"] = fields["created_by"]
    raw["fields"]["notes"] = {"value": "Kie\u0302\u0309m tra", "ts": _stamp(NOW, DEVICE)}  # stored as NFC: not as sent
    assert not _outcome(raw, fast=True)[0].as_sent
    raw["fields"]["notes"] = fields["notes"]
    raw["fields"]["officers"]["add"] = [OFFICERS[0], OFFICERS[0]]  # stored once
    assert not _outcome(raw, fast=True)[0].as_sent
