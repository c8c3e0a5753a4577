"""Push and pull answers read in whichever format the server chose.

The SDK may ask for MessagePack (``WireOptions.msgpack_answers``), but reads what the
``Content-Type`` says: a server that does not offer MessagePack answers JSON, and that
is read too. Records are kept as the JSON the device stores either way: a MessagePack
record's fields and stamps are encoded back to JSON here (msgspec writes the same
bytes the server stored, so both formats leave the same local state).
"""

from __future__ import annotations

import msgspec

from schemas import ChangeResult, CompactRecord, PullResponse, PushResponse

from ._http import Reply
from ._records import WireRecord

__all__ = ["MSGPACK", "read_pull", "read_push"]

MSGPACK = "application/msgpack"
_json = msgspec.json.Encoder()


class _Packed(CompactRecord):
    """A record as MessagePack carries it (the schema's record, compact stamps or not):
    fields and stamps decoded, to be stored as JSON."""

    def wire(self) -> WireRecord:
        fields, stamps = msgspec.Raw(_json.encode(self.fields)), msgspec.Raw(_json.encode(self.stamps))
        return WireRecord(self.collection, self.id, self.ward_id, self.seq, self.deleted, fields, stamps, self.stamp)


_pull_json = msgspec.json.Decoder(PullResponse[WireRecord])
_push_json = msgspec.json.Decoder(PushResponse[WireRecord])
_pull_packed = msgspec.msgpack.Decoder(PullResponse[_Packed])
_push_packed = msgspec.msgpack.Decoder(PushResponse[_Packed])


def _packed(reply: Reply) -> bool:
    media: str = reply.headers.get("content-type", "")
    return media.split(";", 1)[0].strip().lower() == MSGPACK


def read_pull(reply: Reply) -> PullResponse[WireRecord]:
    """A pull page (raises msgspec's errors for an unreadable one)."""
    if not _packed(reply):
        return _pull_json.decode(reply.content)
    page = _pull_packed.decode(reply.content)
    return PullResponse[WireRecord]([r.wire() for r in page.records], page.cursor, page.more)


def read_push(reply: Reply) -> PushResponse[WireRecord]:
    """A push answer (raises msgspec's errors for an unreadable one)."""
    if not _packed(reply):
        return _push_json.decode(reply.content)
    answer = _push_packed.decode(reply.content)
    results = [
        ChangeResult[WireRecord](r.collection, r.id, r.status, r.seq, None if r.record is None else r.record.wire(), r.errors) for r in answer.results
    ]
    return PushResponse[WireRecord](answer.changeset_id, answer.cursor, results, answer.conflicts, answer.warnings)
