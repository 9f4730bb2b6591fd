"""The transitions of one queue in an SQLite file: plain synchronous functions, one
transaction each, following our Lua scripts (and the memory store) step by step.

Where a job is: ``state`` (wait, paused, active, delayed, prioritized, completed, failed)
and ``score`` (its order within the state). Ready lists are taken lowest score first:
"put last" (BullMQ's LPUSH) gives a new highest score, "take next" (RPUSH: LIFO adds,
stalled requeues) a new lowest; prioritized scores are ``priority * 2^32 + n``; delayed
ones ``due * 4096 + n``; active ones the order they were taken; finished ones the time.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ...options import JobOptions
from ..base import Lease, NewJob
from . import flows, outcomes
from .extras import DedupAndMetrics
from .schedulers import advance_fetched

STALLED_REASON = (
    "job stalled more than allowable limit (its worker died or lost the job's lock each "
    "time it ran it)"
)
MAX_EVENTS = 10_000
#: jobs columns in the order ``row_fields`` reads them.
JOB_COLUMNS = (
    "id, name, data, opts, timestamp, delay, priority, progress, atm, ats, stc, "
    "failed_reason, stacktrace, returnvalue, processed_on, finished_on, pb, defa"
)
_READY = ("wait", "paused")


class QueueStore(DedupAndMetrics):
    """One queue in one SQLite connection; callers run it on a single thread."""

    def __init__(self, conn: sqlite3.Connection, prefix: str, name: str) -> None:
        self.conn = conn
        conn.execute("INSERT OR IGNORE INTO queues (prefix, name) VALUES (?, ?)", (prefix, name))
        row = conn.execute(
            "SELECT qid FROM queues WHERE prefix = ? AND name = ?", (prefix, name)
        ).fetchone()
        self.qid: int = row[0]
        self.prefix = prefix
        self.name = name
        #: A job's full key is this plus its id (how parents name their children).
        self.key_prefix = f"{prefix}:{name}:"
        #: Stores of the other queues of the file this one touched (flows), by qid.
        self.peers: dict[int, QueueStore] = {}
        self._events_since_trim = 0
        self._trim_every = 1  # learn the cap at the first event

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (BEGIN IMMEDIATE) so writers serialize."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def guard(self, other: QueueStore) -> None:
        """Before this transaction touches queue ``other`` (flows): nothing here, where the
        transaction holds the whole file; PostgreSQL takes that queue's lock."""
    # -- helpers (lib.lua) -------------------------------------------------------------

    def queue_row(self) -> tuple[int, int, int, int | None, int | None, int | None]:
        """(paused, limiter_count, limiter_until, concurrency, rate_max, rate_duration)."""
        row = self.conn.execute(
            "SELECT paused, limiter_count, limiter_until, concurrency, rate_max, rate_duration "
            "FROM queues WHERE qid = ?",
            (self.qid,),
        ).fetchone()
        return tuple(row)

    def paused(self) -> bool:
        row = self.conn.execute("SELECT paused FROM queues WHERE qid = ?", (self.qid,)).fetchone()
        return bool(row[0])

    def next_seq(self) -> int:
        row = self.conn.execute(
            "UPDATE queues SET seq = seq + 1 WHERE qid = ? RETURNING seq", (self.qid,)
        ).fetchone()
        return int(row[0])

    def take_seqs(self, n: int) -> list[int]:
        """``n`` new ascending sequence numbers (the order jobs were taken in)."""
        row = self.conn.execute(
            "UPDATE queues SET seq = seq + ? WHERE qid = ? RETURNING seq", (n, self.qid)
        ).fetchone()
        return list(range(int(row[0]) - n + 1, int(row[0]) + 1))

    def next_priority_seq(self) -> int:
        """The next number of BullMQ's priority counter (order among equal priorities)."""
        row = self.conn.execute(
            "UPDATE queues SET pc = pc + 1 WHERE qid = ? RETURNING pc", (self.qid,)
        ).fetchone()
        return int(row[0])

    def emit(self, now: int, name: str, fields: dict[str, str] | None = None) -> None:
        self.conn.execute(
            "INSERT INTO events (qid, ms, name, fields) VALUES (?, ?, ?, ?)",
            (self.qid, now, name, None if fields is None else json.dumps(fields)),
        )
        self.note_events(1)

    def note_events(self, n: int) -> None:
        """``n`` events were written: trim the stream to its cap now and then."""
        self._events_since_trim += n
        if self._events_since_trim >= self._trim_every:
            self._events_since_trim = 0
            cap = self.max_events()
            self._trim_every = max(1, min(1000, cap // 10))
            self.conn.execute(
                "DELETE FROM events WHERE qid = ? AND id <= (SELECT id FROM events WHERE qid = ? "
                "ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (self.qid, self.qid, cap),
            )

    def max_events(self) -> int:
        row = self.conn.execute(
            "SELECT max_events FROM queues WHERE qid = ?", (self.qid,)
        ).fetchone()
        return int(row[0]) if row[0] else MAX_EVENTS

    def ready_place(self, priority: int, lifo: bool) -> tuple[str, int]:
        """(state, score) for a job becoming ready now."""
        if priority > 0:
            pc = self.next_priority_seq()
            return "prioritized", priority * 4294967296 + (pc % 4294967296)
        seq = self.next_seq()
        return ("paused" if self.paused() else "wait"), (-seq if lifo else seq)

    def delayed_score(self, due: int) -> int:
        low = due * 4096
        high = low + 4095
        row = self.conn.execute(
            "SELECT max(score) FROM jobs WHERE qid = ? AND state = 'delayed' AND score "
            "BETWEEN ? AND ?",
            (self.qid, low, high),
        ).fetchone()
        return low if row[0] is None else min(int(row[0]) + 1, high)

    def place(self, job_id: str, state: str, score: int) -> None:
        self.conn.execute(
            "UPDATE jobs SET state = ?, score = ? WHERE qid = ? AND id = ?",
            (state, score, self.qid, job_id),
        )

    def promote_due(self, now: int, most: int = 1000) -> int:
        rows = self.conn.execute(
            "SELECT id, priority FROM jobs WHERE qid = ? AND state = 'delayed' AND score <= ? "
            "ORDER BY score LIMIT ?",
            (self.qid, (now + 1) * 4096 - 1, most),
        ).fetchall()
        for job_id, priority in rows:
            state, score = self.ready_place(priority, False)
            self.conn.execute(
                "UPDATE jobs SET state = ?, score = ?, delay = 0 WHERE qid = ? AND id = ?",
                (state, score, self.qid, job_id),
            )
            self.emit(now, "waiting", {"jobId": job_id, "prev": "delayed"})
        return len(rows)

    def next_due(self) -> int:
        row = self.conn.execute(
            "SELECT min(score) FROM jobs WHERE qid = ? AND state = 'delayed'", (self.qid,)
        ).fetchone()
        return 0 if row[0] is None else int(row[0]) // 4096

    def has_ready(self) -> bool:
        if self.paused():
            return False
        row = self.conn.execute(
            "SELECT 1 FROM jobs WHERE qid = ? AND state IN ('wait', 'prioritized') LIMIT 1",
            (self.qid,),
        ).fetchone()
        return row is not None

    def take_lock(self, job_id: str, token: str, now: int) -> int:
        if token == "0":
            return 0
        row = self.conn.execute(
            "SELECT lock_token, lock_until FROM jobs WHERE qid = ? AND id = ?", (self.qid, job_id)
        ).fetchone()
        if row is None or row[0] is None or row[1] <= now:
            return -2
        if row[0] != token:
            return -6
        self.conn.execute(
            "UPDATE jobs SET lock_token = NULL, lock_until = NULL, stalled = 0 "
            "WHERE qid = ? AND id = ?",
            (self.qid, job_id),
        )
        return 0

    def state_totals(self) -> dict[str, int]:
        """How many jobs of this queue are in each stored state (states with none: absent)."""
        rows = self.conn.execute(
            "SELECT state, count(*) FROM jobs WHERE qid = ? GROUP BY state", (self.qid,)
        ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def state_total(self, state: str) -> int:
        """How many jobs of this queue are in one stored state."""
        row = self.conn.execute(
            "SELECT count(*) FROM jobs WHERE qid = ? AND state = ?", (self.qid, state)
        ).fetchone()
        return int(row[0])

    def job_state(self, job_id: str) -> str | None:
        row = self.conn.execute(
            "SELECT state FROM jobs WHERE qid = ? AND id = ?", (self.qid, job_id)
        ).fetchone()
        return None if row is None else str(row[0])

    def delete(self, job_ids: Sequence[str]) -> None:
        """Delete jobs and their logs; a deleted child is no longer its parent's dependency
        and a deleted parent keeps no children records (flows)."""
        conn, qid = self.conn, self.qid
        children: list[tuple[str, int, str]] = []
        for job_id in job_ids:
            row = conn.execute(
                "DELETE FROM jobs WHERE qid = ? AND id = ? RETURNING parent_qid, parent_id",
                (qid, job_id),
            ).fetchone()
            if row is not None and row[1] is not None:
                children.append((job_id, row[0], row[1]))
        args = [(qid, job_id) for job_id in job_ids]
        conn.executemany("DELETE FROM logs WHERE qid = ? AND job_id = ?", args)
        flows.forget_children_of(self, job_ids)
        if children:
            flows.children_deleted(self, children)

    def next_counter(self) -> int:
        """INCR of BullMQ's ``<queue>:id``: the next automatic job id."""
        row = self.conn.execute(
            "UPDATE queues SET counter = counter + 1 WHERE qid = ? RETURNING counter", (self.qid,)
        ).fetchone()
        return int(row[0])

    # -- producers ---------------------------------------------------------------------

    def add(self, job: NewJob, now: int) -> str:
        counter = self.next_counter()
        job_id = job.job_id or str(counter)
        if job.job_id and self.job_state(job_id) is not None:
            self.emit(now, "duplicated", {"jobId": job_id})
            return job_id
        if job.dedup is not None:
            owner = self.deduplicate(job.dedup, job_id, now)
            if owner is not None:
                return owner
        if job.delay > 0:
            due = job.timestamp + job.delay
            state, score = "delayed", self.delayed_score(due)
        else:
            state, score = self.ready_place(job.priority, job.lifo)
        self.conn.execute(
            "INSERT INTO jobs (qid, id, name, data, opts, timestamp, delay, priority, state, "
            "score, deid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.qid,
                job_id,
                job.name,
                job.data,
                job.opts,
                job.timestamp,
                job.delay,
                job.priority,
                state,
                score,
                None if job.dedup is None else job.dedup[0],
            ),
        )
        self.emit(now, "added", {"jobId": job_id, "name": job.name})
        if state == "delayed":
            self.emit(now, "delayed", {"jobId": job_id, "delay": str(job.timestamp + job.delay)})
        else:
            self.emit(now, "waiting", {"jobId": job_id})
        return job_id

    # -- workers -----------------------------------------------------------------------

    def fetch(self, now: int, lease: Lease, count: int) -> tuple[list[tuple[Any, ...]], int, int]:
        """moveToActive: (job rows taken, rate limit ttl, next delayed due)."""
        self.promote_due(now)
        paused, lim_count, lim_until, concurrency, rate_max, rate_window = self.queue_row()
        limit_max = rate_max if rate_max is not None else lease.limit_max
        window = lease.limit_ms if lease.limit_ms is not None else rate_window
        if limit_max is not None:
            if lim_until <= now:
                lim_count = 0
            if lim_count >= limit_max and lim_until > now:
                return [], lim_until - now, 0
            count = min(count, limit_max - lim_count)
        if paused:
            return [], 0, 0
        conn, qid = self.conn, self.qid
        if concurrency is not None:
            active = conn.execute(
                "SELECT count(*) FROM jobs WHERE qid = ? AND state = 'active'", (qid,)
            ).fetchone()[0]
            count = min(count, concurrency - active)
            if count <= 0:
                return [], 0, 0
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM jobs WHERE qid = ? AND state = 'wait' ORDER BY score LIMIT ?",
                (qid, count),
            )
        ]
        if len(ids) < count:
            ids += [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM jobs WHERE qid = ? AND state = 'prioritized' "
                    "ORDER BY score LIMIT ?",
                    (qid, count - len(ids)),
                )
            ]
        if not ids:
            conn.execute("UPDATE queues SET pc = 0 WHERE qid = ?", (qid,))
            return [], 0, self.next_due()
        if limit_max is not None:
            if lim_until <= now:
                lim_until = now + abs(window or 0)
            conn.execute(
                "UPDATE queues SET limiter_count = ?, limiter_until = ? WHERE qid = ?",
                (lim_count + len(ids), lim_until, qid),
            )
        token = None if lease.token == "0" else lease.token
        conn.executemany(
            "UPDATE jobs SET state = 'active', score = ?, lock_token = ?, lock_until = ?, "
            "processed_on = ?, pb = coalesce(?, pb), ats = ats + 1 WHERE qid = ? AND id = ?",
            [
                (seq, token, now + lease.lock_ms, now, lease.worker_name or None, qid, job_id)
                for seq, job_id in zip(self.take_seqs(len(ids)), ids, strict=True)
            ],
        )
        conn.executemany(
            "INSERT INTO events (qid, ms, name, fields) VALUES (?, ?, 'active', ?)",
            [(qid, now, json.dumps({"jobId": job_id, "prev": "waiting"})) for job_id in ids],
        )
        self._events_since_trim += len(ids)
        advance_fetched(self, ids, now)  # job schedulers: the next iteration, in this fetch
        rows = self.rows(ids)
        return rows, 0, 0

    def rows(self, ids: Sequence[str]) -> list[tuple[Any, ...]]:
        """Job rows in the order of ``ids``."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        found = {
            row[0]: row
            for row in self.conn.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE qid = ? AND id IN ({marks})",
                (self.qid, *ids),
            )
        }
        return [found[i] for i in ids if i in found]

    # -- the end of an attempt (outcomes.py) -------------------------------------------

    finish = outcomes.finish
    retry = outcomes.retry
    move_to_delayed = outcomes.move_to_delayed
    drained = outcomes.drained

    def extend_locks(self, locks: dict[str, str], lock_ms: int, now: int) -> list[str]:
        lost: list[str] = []
        for job_id, token in locks.items():
            cur = self.conn.execute(
                "UPDATE jobs SET lock_until = ?, stalled = 0 WHERE qid = ? AND id = ? AND "
                "lock_token = ? AND lock_until > ?",
                (now + lock_ms, self.qid, job_id, token, now),
            )
            if cur.rowcount == 0:
                lost.append(job_id)
        return lost

    def check_stalled(self, max_stalled: int, now: int, interval_ms: int) -> list[str]:
        """moveStalledJobsToWait: requeue active jobs that stayed unlocked across two checks."""
        conn, qid = self.conn, self.qid
        until = conn.execute(
            "SELECT stalled_check_until FROM queues WHERE qid = ?", (qid,)
        ).fetchone()[0]
        if now < until:
            return []
        conn.execute(
            "UPDATE queues SET stalled_check_until = ? WHERE qid = ?",
            (now + max(interval_ms, 1), qid),
        )
        found: list[str] = []
        rows = conn.execute(
            "SELECT id, opts FROM jobs WHERE qid = ? AND state = 'active' AND stalled = 1 AND "
            "(lock_until IS NULL OR lock_until <= ?)",
            (qid, now),
        ).fetchall()
        paused = self.paused()
        for job_id, opts in rows:
            stc = conn.execute(
                "UPDATE jobs SET stc = stc + 1, lock_token = NULL, lock_until = NULL "
                "WHERE qid = ? AND id = ? RETURNING stc",
                (qid, job_id),
            ).fetchone()[0]
            if stc > max_stalled and "repeat" not in _opts(opts).extra:
                conn.execute(
                    "UPDATE jobs SET defa = ? WHERE qid = ? AND id = ?",
                    (STALLED_REASON, qid, job_id),
                )
            self.place(job_id, "paused" if paused else "wait", -self.next_seq())
            self.emit(now, "waiting", {"jobId": job_id, "prev": "active"})
            self.emit(now, "stalled", {"jobId": job_id})
            found.append(job_id)
        conn.execute("UPDATE jobs SET stalled = 1 WHERE qid = ? AND state = 'active'", (qid,))
        return found

    def pause(self, pause: bool, now: int) -> None:
        src, dst = ("wait", "paused") if pause else ("paused", "wait")
        self.conn.execute(
            "UPDATE jobs SET state = ? WHERE qid = ? AND state = ?", (dst, self.qid, src)
        )
        self.conn.execute("UPDATE queues SET paused = ? WHERE qid = ?", (int(pause), self.qid))
        self.emit(now, "paused" if pause else "resumed")


_OPTS: dict[str, JobOptions] = {}


def _opts(text: str) -> JobOptions:
    opts = _OPTS.get(text)
    if opts is None:
        try:
            raw = json.loads(text)
        except ValueError:
            raw = {}
        opts = JobOptions.from_bullmq(raw if isinstance(raw, dict) else {})
        if len(_OPTS) >= 512:
            _OPTS.clear()
        _OPTS[text] = opts
    return opts


def parse_opts(text: str) -> JobOptions:
    """Parsed ``opts`` JSON, cached by text (a queue's jobs nearly always share it)."""
    return _opts(text)
