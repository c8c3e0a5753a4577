"""Values the SDK hands back: sync reports, progress, dead letters; and its retry policy."""

from __future__ import annotations

import dataclasses
import random
from typing import Any, Literal

import msgspec

from schemas import Conflict, ErrorItem, Warning

__all__ = ["DeadLetter", "RetryPolicy", "SyncProgress", "SyncReport", "WireOptions"]


class SyncReport(msgspec.Struct, kw_only=True):
    """What one ``sync()`` did.

    ``pushed``: changes the server applied; ``rejected``: changes it refused, now in
    the dead letters; ``conflicts``: the conflicts the server logged for this device's
    changes (kept on the device too, see ``reported_conflicts()``); ``pulled``: records
    received; ``warnings``: the server's (``clock_skew``) and the SDK's own
    (``server_reset``, ``restore_skipped``, ``changeset_reused``, ``blob_refused``);
    ``retries``: requests sent again after a network error or a 5xx; ``changesets``:
    change sets the server answered; ``blobs``: attachments uploaded (after the records: a photo never holds them back);
    ``restored``: after the server was restored from a backup, records this device
    held that the backup lacked (or held older), sent back to it.
    """

    pushed: int = 0
    rejected: int = 0
    conflicts: list[Conflict] = msgspec.field(default_factory=list)
    pulled: int = 0
    warnings: list[Warning] = msgspec.field(default_factory=list)
    retries: int = 0
    changesets: int = 0
    blobs: int = 0
    restored: int = 0


class SyncProgress(msgspec.Struct, frozen=True, kw_only=True):
    """Handed to a ``sync(progress=...)`` callback after each blob, change set and page.

    ``to_push`` counts the records that had edits waiting when the sync began; the
    number of records to pull is not known in advance; ``blobs``: attachments
    uploaded so far."""

    phase: Literal["blobs", "push", "pull"]
    pushed: int
    to_push: int
    pulled: int
    blobs: int = 0


class DeadLetter(msgspec.Struct, kw_only=True):
    """A change the server rejected, as it was sent, with the server's reasons.

    Show it, then ``requeue_dead_letter(n, **fixes)`` to send it again (with new
    stamps and any corrected values) or ``drop_dead_letter(n)`` to give it up."""

    n: int
    collection: str
    record_id: str
    #: the change as sent: ``{"fields": {name: {"value"|"add"|"remove", "ts", "base"}}, "delete": ...}``
    change: dict[str, Any]
    errors: list[ErrorItem]
    changeset_id: str
    rejected_at: str


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter (the AWS architecture blog's "full jitter").

    Attempt ``k`` (from 0) waits a uniform random time in ``[0, min(max_delay,
    base_delay * 2**k)]``: spread out, so a fleet of handhelds coming back online at
    once does not hammer the server in lockstep. A ``Retry-After`` from the server
    (429, 503) is honoured when longer, up to ``max_delay``.
    """

    attempts: int = 6
    base_delay: float = 0.25
    max_delay: float = 30.0

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry ``attempt`` (from 0), drawn from ``rng``."""
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        wait = rng.uniform(0, ceiling)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay))
        return wait


@dataclasses.dataclass(frozen=True, slots=True)
class WireOptions:
    """How ``sync()`` spends the link's bytes (PROTOCOL.md 1, 4, 5); the defaults suit a
    handheld on 2G, :meth:`plain` is the protocol without any of it.

    ``gzip``: push bodies gzip-compressed (answers are compressed by the server whenever
    httpx offers it, which it always does). ``msgpack``: push bodies in MessagePack
    rather than JSON (off: once gzipped, JSON is as small). ``msgpack_answers``:
    ``Accept: application/msgpack`` on pushes and pulls (off: once compressed,
    MessagePack answers are 1-2 % smaller pulls and no smaller push answers, which does
    not pay for the header on every request nor for turning each record back into the
    JSON the device stores; ``bench/README.md``). ``minimal``: ``Prefer:
    return=minimal``, so the push answer carries only the records the merge changed.
    ``skip_own``: pulls leave out the records that stand wholly as this device's own
    edits made them (``own=skip``; it holds them already). ``compact_stamps``: one
    stamp per record on the wire, and the fields that differ. ``page_bytes``: the byte
    budget asked of each pull page (None: the server's 4 MiB), so a connection cut
    mid-page costs little to fetch again.
    """

    gzip: bool = True
    msgpack: bool = False
    minimal: bool = True
    compact_stamps: bool = True
    page_bytes: int | None = 512 * 1024
    skip_own: bool = True
    msgpack_answers: bool = False

    @classmethod
    def plain(cls) -> WireOptions:
        return cls(gzip=False, msgpack=False, minimal=False, compact_stamps=False, page_bytes=None, skip_own=False, msgpack_answers=False)
