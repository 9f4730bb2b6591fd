"""Job schedulers in an SQLite file: the ``schedulers`` table and ``backend.schedulers``.

The rules are :mod:`..schedulerlogic`'s; here they run in the store's transactions. The
next iteration is made inside the fetch that takes the current one (``advance_fetched``,
called by ``QueueStore.fetch``), so two workers, in one process or several, can never both
make it.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import schedulerlogic as logic
from ..base import NewJob
from ..schedulerlogic import StoredScheduler
from ..schedulerstore import SchedulerInfo, SchedulerSpec, SchedulerStore

if TYPE_CHECKING:
    from .backend import SqliteBackend
    from .store import QueueStore

log = logging.getLogger("dockyard.worker")

#: The schema step that adds the table (schema.MIGRATIONS holds it under its version; a
#: renumbering at a merge changes only that key).
SCHEDULER_TABLES: tuple[str, ...] = (
    """CREATE TABLE schedulers (
        qid INTEGER NOT NULL,
        sid TEXT NOT NULL,
        name TEXT NOT NULL,
        data TEXT NOT NULL,
        opts TEXT NOT NULL,
        every_ms INTEGER,
        pattern TEXT,
        tz TEXT,
        start_ms INTEGER,
        end_ms INTEGER,
        lim INTEGER,
        offset_ms INTEGER,
        ic INTEGER NOT NULL,
        cnt INTEGER NOT NULL,
        next_ms INTEGER NOT NULL,
        PRIMARY KEY (qid, sid)
    ) WITHOUT ROWID""",
    "CREATE INDEX schedulers_by_next ON schedulers (qid, next_ms)",
)
_COLUMNS = (
    "sid, name, data, opts, every_ms, pattern, tz, start_ms, end_ms, lim, offset_ms, ic, cnt, "
    "next_ms"
)


def _scheduler(row: Sequence[Any]) -> StoredScheduler:
    return StoredScheduler(*row)


class SqliteOps:
    """:class:`logic.IterationOps` on one queue of the file, in the caller's transaction."""

    __slots__ = ("s",)

    def __init__(self, store: QueueStore) -> None:
        self.s = store

    def load(self, scheduler_id: str) -> StoredScheduler | None:
        row = self.s.conn.execute(
            f"SELECT {_COLUMNS} FROM schedulers WHERE qid = ? AND sid = ?",
            (self.s.qid, scheduler_id),
        ).fetchone()
        return None if row is None else _scheduler(row)

    def save(self, scheduler: StoredScheduler) -> None:
        c = scheduler
        self.s.conn.execute(
            f"INSERT OR REPLACE INTO schedulers (qid, {_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.s.qid, c.scheduler_id, c.name, c.data, c.opts, c.every_ms, c.pattern,
                c.tz, c.start_ms, c.end_ms, c.limit, c.offset_ms, c.iteration_count, c.count,
                c.next_ms,
            ),
        )  # fmt: skip

    def drop(self, scheduler_id: str) -> None:
        self.s.conn.execute(
            "DELETE FROM schedulers WHERE qid = ? AND sid = ?", (self.s.qid, scheduler_id)
        )

    def job_state(self, job_id: str) -> str | None:
        return self.s.job_state(job_id)

    def discard(self, job_id: str) -> None:
        self.s.release_dedup([job_id], untimed_only=False)
        self.s.delete([job_id])

    def add(self, job: NewJob, now: int) -> str:
        return self.s.add(job, now)

    def emit(self, now: int, name: str, fields: dict[str, str]) -> None:
        self.s.emit(now, name, fields)


def advance_fetched(store: QueueStore, job_ids: Sequence[str], now: int) -> None:
    """Make the next iteration of each scheduler whose current iteration was just taken.

    Runs inside the fetch's transaction; a failure here is logged and undone (a savepoint)
    without failing the fetch, so one broken scheduler never blocks the queue.
    """
    for job_id in job_ids:
        if not job_id.startswith("repeat:"):
            continue
        conn = store.conn
        conn.execute("SAVEPOINT scheduler")
        try:
            logic.advance(SqliteOps(store), job_id, now)
        except Exception as exc:
            conn.execute("ROLLBACK TO scheduler")
            if isinstance(exc, sqlite3.OperationalError):
                conn.execute("RELEASE scheduler")
                raise
            log.error(
                "job scheduler of job %s: could not create its next iteration (%s: %s); "
                "running the job anyway",
                job_id,
                type(exc).__name__,
                exc,
            )
        conn.execute("RELEASE scheduler")


def current_scheduler(store: QueueStore, job_id: str) -> str | None:
    """The scheduler whose current iteration ``job_id`` is (Queue.remove refuses it)."""
    return logic.current_scheduler(SqliteOps(store), job_id)


def current_iterations(store: QueueStore) -> set[str]:
    """Ids of every scheduler's current iteration (drain and clean leave them)."""
    rows = store.conn.execute(
        "SELECT sid, next_ms FROM schedulers WHERE qid = ?", (store.qid,)
    ).fetchall()
    return {logic.iteration_id(sid, next_ms) for sid, next_ms in rows}


class SqliteSchedulers:
    """``backend.schedulers`` of an SQLite backend (the SchedulerStore protocol)."""

    def __init__(self, backend: SqliteBackend) -> None:
        self._backend = backend

    async def upsert_scheduler(self, spec: SchedulerSpec, next_ms: int | None, now_ms: int) -> str:
        def run(s: QueueStore) -> str:
            return logic.upsert(SqliteOps(s), spec, next_ms, now_ms)

        job_id: str = await self._backend._run(run)
        return job_id

    async def get_scheduler(self, scheduler_id: str) -> SchedulerInfo | None:
        def read(s: QueueStore) -> StoredScheduler | None:
            return SqliteOps(s).load(scheduler_id)

        found: StoredScheduler | None = await self._backend._run(read, write=False)
        return None if found is None else logic.info(found)

    async def get_schedulers(self, start: int, end: int, asc: bool) -> list[SchedulerInfo]:
        order = "ASC" if asc else "DESC"

        def read(s: QueueStore) -> list[StoredScheduler]:
            total = s.conn.execute(
                "SELECT count(*) FROM schedulers WHERE qid = ?", (s.qid,)
            ).fetchone()[0]
            lo = start if start >= 0 else max(total + start, 0)
            hi = min(end if end >= 0 else total + end, total - 1)
            if lo > hi:
                return []
            rows = s.conn.execute(
                f"SELECT {_COLUMNS} FROM schedulers WHERE qid = ? "
                f"ORDER BY next_ms {order}, sid {order} LIMIT ? OFFSET ?",
                (s.qid, hi - lo + 1, lo),
            ).fetchall()
            return [_scheduler(row) for row in rows]

        found: list[StoredScheduler] = await self._backend._run(read, write=False)
        return [logic.info(c) for c in found]

    async def remove_scheduler(self, scheduler_id: str) -> bool:
        def run(s: QueueStore, now: int) -> bool:
            return logic.remove(SqliteOps(s), scheduler_id, now)

        removed: bool = await self._backend._run(run, int(time.time() * 1000))
        return removed


def _is_a_scheduler_store(schedulers: SqliteSchedulers) -> SchedulerStore:
    """mypy: SqliteSchedulers follows the SchedulerStore protocol."""
    return schedulers
