"""A record as the server keeps it, and its two stored encodings."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec

from schemas import PulledRecord, order
from schemas.stamps import stamp_node

__all__ = ["RecordState", "decode_state", "encode_crdt", "encode_doc", "made_by", "state_made_by"]

#: element -> [stamp, present] of one ``set`` field (an LWW-element set)
Elements = dict[str, list[Any]]


class _Crdt(msgspec.Struct, omit_defaults=True):
    """What merging needs beyond the pulled record: the tombstone and set elements."""

    tomb: str | None = None
    sets: dict[str, Elements] = {}


@dataclasses.dataclass(slots=True)
class RecordState:
    collection: str
    id: str
    ward_id: str
    fields: dict[str, Any]
    stamps: dict[str, str]
    sets: dict[str, Elements] = dataclasses.field(default_factory=dict)
    tomb: str | None = None
    seq: int = 0  # 0: not stored yet
    #: the encoded size as pulled, or an upper bound of it (-1: not known); see ``guards.size_error``
    size: int = -1

    @property
    def top_stamp(self) -> str:
        return max(self.stamps.values(), default="")

    @property
    def deleted(self) -> bool:
        """Deleted while the tombstone's stamp is higher than every field stamp."""
        return order.deleted(self.tomb, self.stamps.values())

    def copy(self) -> RecordState:
        return RecordState(
            self.collection,
            self.id,
            self.ward_id,
            dict(self.fields),
            dict(self.stamps),
            {name: {e: list(v) for e, v in elems.items()} for name, elems in self.sets.items()},
            self.tomb,
            self.seq,
            self.size,
        )

    def pulled(self) -> PulledRecord:
        return PulledRecord(
            collection=self.collection,
            id=self.id,
            ward_id=self.ward_id,
            seq=self.seq,
            deleted=self.deleted,
            fields=self.fields,
            stamps=self.stamps,
        )


_doc_encoder = msgspec.json.Encoder()
_crdt_encoder = msgspec.json.Encoder(order="sorted")  # canonical: equal states, equal bytes
_doc_decoder = msgspec.json.Decoder(PulledRecord)
_crdt_decoder = msgspec.json.Decoder(_Crdt)


def encode_doc(state: RecordState) -> bytes:
    """The record as pulled: stored ready-made, spliced into answers as is."""
    return _doc_encoder.encode(state.pulled())


def encode_crdt(state: RecordState) -> bytes:
    return _crdt_encoder.encode(_Crdt(tomb=state.tomb, sets=state.sets))


def decode_state(doc: bytes, crdt: bytes) -> RecordState:
    pulled = _doc_decoder.decode(doc)
    extra = _crdt_decoder.decode(crdt)
    return RecordState(
        pulled.collection,
        pulled.id,
        pulled.ward_id,
        pulled.fields,
        pulled.stamps,
        extra.sets,
        extra.tomb,
        pulled.seq,
        len(doc),
    )


class _Stamps(msgspec.Struct):
    stamps: dict[str, str]


_stamps_decoder = msgspec.json.Decoder(_Stamps)


def made_by(doc: bytes, crdt: bytes, node: str) -> bool:
    """Whether every stamp a stored record holds names ``node``: each field's, each set
    element's (removed ones too) and the tombstone's.

    Such a record stands wholly as that device's edits made it: no other device's edit,
    no server re-stamp (``clock_skew``) and no conflict resolution (stamped by the
    server) left a trace in it, and an edit of another device that lost left nothing to
    learn. The device learned every merge outcome of its own pushes from their answers
    (whole, or ``seq`` alone only when it could compute the state itself), so it holds
    this state already: a pull may leave it out (``own=skip``, PROTOCOL notes in
    ``docs/WIRE.md``). Checking the set elements and the tombstone matters: another
    device's removal of an element, stamped below this device's later add, leaves the
    field's stamp this device's while the set changed."""
    if any(stamp_node(ts) != node for ts in _stamps_decoder.decode(doc).stamps.values()):
        return False
    extra = _crdt_decoder.decode(crdt)
    return _merge_state_by(extra.tomb, extra.sets, node)


def state_made_by(state: RecordState, node: str) -> bool:
    """:func:`made_by` of a record in memory."""
    return all(stamp_node(ts) == node for ts in state.stamps.values()) and _merge_state_by(state.tomb, state.sets, node)


def _merge_state_by(tomb: str | None, sets: dict[str, Elements], node: str) -> bool:
    if tomb is not None and stamp_node(tomb) != node:
        return False
    return all(stamp_node(ts) == node for elements in sets.values() for ts, _ in elements.values())
