"""Pull positions, and why a reader paging while many workers commit skips nothing.

With several workers, sequence order is not commit order: transaction A takes
seqs 100-199, transaction B takes 200-299 and commits first.  A reader that
pages by seq would serve 200-299, hand out a cursor after 299, and never see
100-199 once A commits.  The SQLite store avoids this by committing in seq order
(one write lock); serialising every worker's commit that way would throw away
what PostgreSQL is here for.  Instead, each record version carries its place in
the pull order, ``pos``, and readers stop at a horizon that no transaction still
running can write below.

**Position.**  Every write transaction has a transaction id (``xid8``, 64 bits,
never wraps).  A record version written by the transaction ``xid`` is at::

    pos = (xid + xid_base) << 20  |  rank of the version within its transaction

(``xid_base``: see *restores* below; 2**20 versions per transaction is far above
a group commit's ~25,000).  A record has one row; a newer version moves it to its
new position, so a pull that passes it later serves it once, as it now stands.

**Horizon.**  A page reads, in the same statement (so from the same snapshot)::

    horizon = (pg_snapshot_xmin(pg_current_snapshot()) + xid_base) << 20

``xmin`` is the oldest transaction id still running when the snapshot was taken:
every transaction below it has ended, committed (and then visible in this very
snapshot) or rolled back.  A page serves only rows with ``cursor < pos <
horizon``, in ``pos`` order, and the next cursor is the last position served.

**Why nothing is skipped.**  Let a version V be committed by transaction T at
position p.  Every cursor the store hands out is below the horizon of the
snapshot that produced it.  If T was still running when that snapshot was
taken, or had no id yet, then T's id is at least that snapshot's xmin (running
ids are >= xmin by definition, and ids assigned later are above every id
assigned before), so p >= horizon > cursor: the cursor is still before V.  If T
had ended before the snapshot, V is in the snapshot, and the page served every
row of the snapshot between the old cursor and the new one, V too if p is in
that range.  Either way a reader following cursors meets V (or a later version
of its record) on this pass or the next.  The horizon and the rows come from one
snapshot: were the horizon computed in another statement, a transaction
committing between the two could fall between them.

**Liveness.**  A transaction with an id that stays open holds the horizon back:
pulls then serve nothing past it (they wait, they never skip).  The server's own
write transactions last one group commit; the connections set
``idle_in_transaction_session_timeout`` so a stuck one cannot stall pulls for
long.  A long transaction of another program in the same cluster holds pulls
back the same way.  Rows above the horizon do not set ``more``: a client that
caught up gets them on its next pass.

**Restores.**  A logical backup (``pg_dump``) restored into another cluster
brings positions made from the old cluster's transaction ids, and the new
cluster's ids may be lower: new versions would land behind readers.  At start-up,
under the migration lock, the store notices, raises ``xid_base`` so that every new
position is above every stored one, and takes a new epoch (clients holding
cursors from after the backup get 410 and pull again) (``_schema.rebase``).  A
physical backup (``pg_basebackup``, point-in-time recovery) keeps the ids with the
data, so the store cannot tell; whoever restores one should give the store a new
epoch: ``UPDATE meta SET value = md5(random()::text) WHERE key = 'epoch'``.

**Cursor.**  ``<epoch>.<pos>`` (``stores/cursors.py``), as in the SQLite store
(``stores/_paging.py``): 400 when unreadable, 410 when the epoch differs or the
position is ahead of every stored one (a store restored from an older backup).
"""

from __future__ import annotations

__all__ = ["RANK_BITS", "position"]

RANK_BITS = 20
MAX_RANK = (1 << RANK_BITS) - 1


def position(xid: int, xid_base: int, rank: int) -> int:
    if not 0 <= rank <= MAX_RANK:
        raise ValueError(f"a transaction writes at most {MAX_RANK + 1} record versions")
    return ((xid + xid_base) << RANK_BITS) | rank
