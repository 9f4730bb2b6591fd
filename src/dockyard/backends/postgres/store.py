"""One queue in a PostgreSQL schema: the SQLite store's transitions, with PostgreSQL's
transactions, sequences and wake-ups.

Every write transaction takes its queue's advisory lock first, so the transitions of one
queue serialize as they do in an SQLite file (BEGIN IMMEDIATE) and the shared code's
read-then-write steps stay correct, while queues of one schema run side by side. A
transition that reaches another queue (a child's parent, a flow's queues) takes that
queue's lock when it first touches it, without waiting: if another holds it, the
transaction is undone and run again taking all its queues' locks in qid order, so two
transitions never wait for each other in a circle. Each transaction also shares the
schema's lock, which migrations (and a dockyard older than per-queue locks, which took it
alone for every write) take alone. It sends ``NOTIFY`` with its COMMIT, in the same round
trip. An add inside a caller's transaction (``connection=``) takes no lock at all: its ids
and order come from sequences, so it holds no row that a worker waits for; nor does a
plain add of ours, and an idle worker's claim shares its queue's lock with other claimers
(``SKIP LOCKED`` keeps them apart): see hotpath.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from ..base import Lease, NewJob
from ..sqlite import flows
from ..sqlite.store import QueueStore
from . import hotpath
from .dialect import PgConn
from .schema import lock_key

T = TypeVar("T")

#: The channel every store of a database notifies on (the payload: ``<schema>:<qid>``).
CHANNEL = "dockyard"


class Relock(BaseException):
    """A write transaction reached a queue whose lock another holds: it is undone and run
    again with the locks of ``qids`` taken in order. A BaseException, so that the per-job
    savepoints of a batch (which hand an Exception to its own caller) pass it up."""

    def __init__(self, qids: frozenset[int]) -> None:
        super().__init__(sorted(qids))
        self.qids = qids


def locks_sql(schema: str, qids: Sequence[int]) -> str:
    """Share the schema's lock, then take the queues' locks in the order given."""
    key = lock_key(schema)
    taken = "".join(f", pg_advisory_xact_lock({key}, {qid})" for qid in qids)
    return f"SELECT pg_advisory_xact_lock_shared({key}){taken}"


class PgQueueStore(QueueStore):
    """QueueStore on a :class:`PgConn`; see the module docstring."""

    def __init__(self, conn: sqlite3.Connection, prefix: str, name: str) -> None:
        self.pg = cast(PgConn, conn)
        #: On a caller's connection (``connection=``): their transaction, no lock taken.
        self.caller_tx = self.pg.caller_tx
        self._claim_sql: str | None = None
        self._add_sql: str | None = None
        super().__init__(conn, prefix, name)
        key = lock_key(self.pg.schema)
        self._lock_sql = locks_sql(self.pg.schema, [self.qid])
        #: A claim's locks: it shares the queue with other claimers (hotpath.fetch_shared).
        self._shared_lock_sql = (
            f"SELECT pg_advisory_xact_lock_shared({key}), "
            f"pg_advisory_xact_lock_shared({key}, {self.qid})"
        )
        #: The payload of this queue's notifications (see notify.py).
        self.wake_payload = f"{self.pg.schema}:{self.qid}"
        if not self.caller_tx:
            self.ensure_counter()

    @classmethod
    def on(cls, conn: PgConn, prefix: str, name: str) -> PgQueueStore:
        """The store of queue ``name`` on ``conn``."""
        return cls(cast(sqlite3.Connection, conn), prefix, name)

    def _notify(self, qid: int) -> str:
        """Wake the waiters of queue ``qid`` (payload ``<schema>:<qid>``) at the commit."""
        return f"NOTIFY {CHANNEL}, '{self.pg.schema}:{qid}'"

    @contextmanager
    def tx(
        self, more: frozenset[int] = frozenset(), *, shared: bool = False
    ) -> Iterator[sqlite3.Connection]:
        """One write transaction under this queue's lock (and those of ``more``, taken in
        qid order), notifying listeners on commit; ``shared``: a claim's, which shares
        the queue's lock with other claimers, reaches no other queue and notifies in its
        own statement."""
        pg = self.pg
        if shared:
            lock, qids = self._shared_lock_sql, []
        elif more:
            qids = sorted(more | {self.qid})
            lock = locks_sql(pg.schema, qids)
        else:
            lock, qids = self._lock_sql, [self.qid]
        pg.begin(lock)
        locked = set(qids)  # guard() adds the queues it reaches
        pg.locked = None if shared else locked
        try:
            yield self.conn
        except BaseException:
            pg.locked = None
            pg.end(False)
            raise
        pg.locked = None
        # Every queue it wrote (its own, and those a flow reached) wakes its own waiters.
        pg.end(True, *(self._notify(qid) for qid in sorted(locked)))

    def write(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(self, *args)`` in one write transaction; run again, with the locks of
        every queue it reached taken in order, when it reached one whose lock another
        held (see the module docstring). The set only grows, so this ends."""
        more: frozenset[int] = frozenset()
        while True:
            try:
                with self.tx(more):
                    return fn(self, *args)
            except Relock as again:
                more = again.qids

    def guard(self, other: QueueStore) -> None:
        """Take ``other``'s lock in this transaction without waiting (module docstring)."""
        pg = self.pg
        locked = pg.locked
        if locked is None or other.qid in locked:
            return  # outside a write transaction (reads, a caller's add), or held already
        row = self.conn.execute(
            "SELECT pg_try_advisory_xact_lock(?, ?)", (lock_key(pg.schema), other.qid)
        ).fetchone()
        if not row[0]:
            raise Relock(frozenset(locked | {other.qid}))
        locked.add(other.qid)

    def events_fit(self, n: int) -> bool:
        """``n`` more events leave the trim of the events table not yet due, so they can
        be written outside a locked transaction (the trim runs under the lock)."""
        return self._events_since_trim + n < self._trim_every

    def events_noted(self, n: int) -> None:
        """``n`` events were written outside a locked transaction (events_fit said so)."""
        self._events_since_trim += n

    def notify_in_tx(self, *others: int) -> None:
        """NOTIFY this queue (and queues ``others``) from the caller's transaction
        (delivered when it commits)."""
        self.pg.run_plain("; ".join(self._notify(qid) for qid in sorted({self.qid, *others})))

    def take_seqs(self, n: int) -> list[int]:
        rows = self.conn.execute(
            "SELECT nextval(?::regclass) FROM generate_series(1, ?)",
            (f'"{self.pg.schema}".job_seq', n),
        ).fetchall()
        return [int(r[0]) for r in rows]

    def next_seq(self) -> int:
        return self.take_seqs(1)[0]

    def next_priority_seq(self) -> int:
        row = self.conn.execute(
            "SELECT nextval(?::regclass)", (f'"{self.pg.schema}".prio_seq',)
        ).fetchone()
        return int(row[0])

    def next_counter(self) -> int:
        row = self.conn.execute(
            "SELECT nextval(?::regclass)", (f'"{self.pg.schema}".jid_{self.qid}',)
        ).fetchone()
        return int(row[0])

    def ensure_counter(self) -> None:
        """Create the queue's job id sequence (in the transaction that made its row, whose
        unique key makes a second maker wait for the first)."""
        self.pg.run_plain(f'CREATE SEQUENCE IF NOT EXISTS "{self.pg.schema}".jid_{self.qid}')

    def reset_counter(self) -> None:
        """Obliterate: automatic ids start at 1 again."""
        self.conn.execute(
            "SELECT setval(?::regclass, 1, false)", (f'"{self.pg.schema}".jid_{self.qid}',)
        )

    @property
    def claim_sql(self) -> str:
        sql = self._claim_sql
        if sql is None:
            sql = self._claim_sql = hotpath.claim_sql(self.pg.schema)
        return sql

    @property
    def add_sql(self) -> str:
        sql = self._add_sql
        if sql is None:
            sql = self._add_sql = hotpath.add_sql(self.pg.schema, self.qid)
        return sql

    def delete(self, job_ids: Sequence[str]) -> None:
        """As QueueStore.delete, with one statement per table for several jobs (retention
        and clean delete thousands at a time; one DELETE each would be a round trip)."""
        if len(job_ids) < 2:
            return super().delete(job_ids)
        ids = list(job_ids)
        rows = self.conn.execute(
            "DELETE FROM jobs WHERE qid = ? AND id = ANY(?::text[]) "
            "RETURNING id, parent_qid, parent_id",
            (self.qid, ids),
        ).fetchall()
        self.conn.execute(
            "DELETE FROM logs WHERE qid = ? AND job_id = ANY(?::text[])", (self.qid, ids)
        )
        self.conn.execute(
            "DELETE FROM dependencies WHERE parent_qid = ? AND parent_id = ANY(?::text[])",
            (self.qid, ids),
        )
        at = {job_id: i for i, job_id in enumerate(ids)}
        children = sorted(
            ((r[0], r[1], r[2]) for r in rows if r[2] is not None), key=lambda c: at[c[0]]
        )
        if children:
            flows.children_deleted(self, children)
        return None

    def release_dedup(self, job_ids: Sequence[str], untimed_only: bool) -> None:
        if len(job_ids) < 2:
            return super().release_dedup(job_ids, untimed_only)
        extra = " AND expires IS NULL" if untimed_only else ""
        self.conn.execute(
            "DELETE FROM dedup WHERE qid = ? AND (job_id, id) IN (SELECT id, deid FROM jobs "
            f"WHERE qid = ? AND id = ANY(?::text[]) AND deid IS NOT NULL){extra}",
            (self.qid, self.qid, list(job_ids)),
        )
        return None

    def state_totals(self) -> dict[str, int]:
        """From state_counts (schema.py, migration 2): no scan of the jobs."""
        rows = self.conn.execute(
            "SELECT state, sum(n) FROM state_counts WHERE qid = ? GROUP BY state", (self.qid,)
        ).fetchall()
        return {r[0]: int(r[1]) for r in rows if r[1]}

    def state_total(self, state: str) -> int:
        row = self.conn.execute(
            "SELECT coalesce(sum(n), 0) FROM state_counts WHERE qid = ? AND state = ?",
            (self.qid, state),
        ).fetchone()
        return int(row[0])

    def fetch(self, now: int, lease: Lease, count: int) -> tuple[list[Any], int, int]:
        return hotpath.fetch(self, now, lease, count)

    def add(self, job: NewJob, now: int) -> str:
        return hotpath.add(self, job, now)

    def extend_locks(self, locks: dict[str, str], lock_ms: int, now: int) -> list[str]:
        return hotpath.extend_locks(self, locks, lock_ms, now)

    def release_dedup_if_any(self, job_id: str) -> None:
        hotpath.release_dedup_if_any(self, job_id)

    def note_events(self, n: int) -> None:
        if not self.caller_tx:  # no trimming in a caller's transaction: it locks old rows
            super().note_events(n)
