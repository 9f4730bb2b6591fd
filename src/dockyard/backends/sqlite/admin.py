"""Admin transitions of a queue in an SQLite file, one function per Lua script of the Redis
backend; each runs inside the caller's transaction. Codes as the scripts' (-1 missing,
-3 not in that state)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...errors import NotSupportedError
from . import flows
from .schedulers import current_iterations, current_scheduler
from .store import QueueStore

_PREV = {"wait": "waiting"}


def _ready_state(s: QueueStore) -> str:
    return "paused" if s.paused() else "wait"


def remove(s: QueueStore, job_id: str, now: int) -> int:
    row = s.conn.execute(
        "SELECT state, lock_until FROM jobs WHERE qid = ? AND id = ?", (s.qid, job_id)
    ).fetchone()
    if row is None:
        return -1
    if current_scheduler(s, job_id) is not None:
        return -8  # a scheduler's current iteration: its schedule would end (BullMQ's -8)
    if row[1] is not None and row[1] > now:
        return 0
    if flows.pending_count(s, job_id) > 0:
        return -4  # a parent with pending children: they would run for a parent gone
    s.release_dedup([job_id], untimed_only=False)
    s.delete([job_id])
    s.emit(now, "removed", {"jobId": job_id, "prev": _PREV.get(row[0], row[0])})
    return 1


_CLEAR = (
    "finished_on = NULL, processed_on = NULL, returnvalue = NULL, failed_reason = NULL, defa = NULL"
)


def reprocess(
    s: QueueStore, job_id: str, state: str, lifo: bool, reset_attempts: bool, now: int
) -> int:
    current = s.job_state(job_id)
    if current is None:
        return -1
    if current != state or state not in ("completed", "failed"):
        return -3
    seq = s.next_seq()
    reset = ", atm = 0, ats = 0" if reset_attempts else ""
    s.conn.execute(
        f"UPDATE jobs SET state = ?, score = ?, {_CLEAR}{reset} WHERE qid = ? AND id = ?",
        (_ready_state(s), -seq if lifo else seq, s.qid, job_id),
    )
    s.emit(now, "waiting", {"jobId": job_id, "prev": state})
    return 1


def promote(s: QueueStore, job_id: str, now: int) -> int:
    row = s.conn.execute(
        "SELECT state, priority FROM jobs WHERE qid = ? AND id = ?", (s.qid, job_id)
    ).fetchone()
    if row is None:
        return -1
    if row[0] != "delayed":
        return -3
    state, score = s.ready_place(row[1], False)
    s.conn.execute(
        "UPDATE jobs SET state = ?, score = ?, delay = 0 WHERE qid = ? AND id = ?",
        (state, score, s.qid, job_id),
    )
    s.emit(now, "waiting", {"jobId": job_id, "prev": "delayed"})
    return 0


def move_jobs_to_wait(s: QueueStore, state: str, count: int, before_ms: int, now: int) -> int:
    max_score = (before_ms + 1) * 4096 - 1 if state == "delayed" else before_ms
    ids = [
        r[0]
        for r in s.conn.execute(
            "SELECT id FROM jobs WHERE qid = ? AND state = ? AND score <= ? ORDER BY score LIMIT ?",
            (s.qid, state, max_score, count),
        )
    ]
    target = _ready_state(s)
    delay = ", delay = 0" if state == "delayed" else ""
    for job_id in ids:
        s.conn.execute(
            f"UPDATE jobs SET state = ?, score = ?, {_CLEAR}{delay} WHERE qid = ? AND id = ?",
            (target, s.next_seq(), s.qid, job_id),
        )
        s.emit(now, "waiting", {"jobId": job_id, "prev": state})
    return len(ids)


def drain(s: QueueStore, delayed: bool) -> int:
    states = ("wait", "paused", "prioritized", "delayed") if delayed else _READY_AND_PRIO
    marks = ",".join("?" * len(states))
    ids = [
        r[0]
        for r in s.conn.execute(
            f"SELECT id FROM jobs WHERE qid = ? AND state IN ({marks})", (s.qid, *states)
        )
    ]
    keep = current_iterations(s)  # job schedulers' current iterations stay (BullMQ)
    ids = [job_id for job_id in ids if job_id not in keep]
    s.release_dedup(ids, untimed_only=False)
    s.delete(ids)
    s.conn.execute("UPDATE queues SET pc = 0 WHERE qid = ?", (s.qid,))
    return len(ids)


_READY_AND_PRIO = ("wait", "paused", "prioritized")


def clean(s: QueueStore, state: str, before_ms: int, limit: int, now: int) -> list[str]:
    where = "wait" if state == "waiting" else state
    if where in ("completed", "failed"):
        stamp = "score"
    elif where == "prioritized":
        stamp = "timestamp"
    elif where == "delayed":
        stamp = "coalesce(processed_on, timestamp)"
    else:
        stamp = "coalesce(finished_on, processed_on, timestamp)"
    unlocked = " AND (lock_until IS NULL OR lock_until <= ?)" if where == "active" else ""
    # Oldest first: ready lists are taken (and were filled) in ascending score.
    sql = (
        f"SELECT id FROM jobs WHERE qid = ? AND state = ? AND {stamp} <= ?{unlocked} "
        "ORDER BY score LIMIT ?"
    )
    args: tuple[object, ...] = (s.qid, where, before_ms)
    if unlocked:
        args += (now,)
    keep = current_iterations(s)  # job schedulers' current iterations stay (BullMQ)
    ids = [r[0] for r in s.conn.execute(sql, (*args, limit if limit > 0 else -1))]
    ids = [job_id for job_id in ids if job_id not in keep]
    s.release_dedup(ids, untimed_only=False)
    s.delete(ids)
    s.emit(now, "cleaned", {"count": str(len(ids))})
    return ids


def obliterate(s: QueueStore, force: bool) -> int:
    if not s.paused():
        return -1
    active = s.conn.execute(
        "SELECT 1 FROM jobs WHERE qid = ? AND state = 'active' LIMIT 1", (s.qid,)
    ).fetchone()
    if active is not None and not force:
        return -2
    flows.obliterating(s)
    for table in ("jobs", "logs", "events", "dedup", "schedulers"):
        s.conn.execute(f"DELETE FROM {table} WHERE qid = ?", (s.qid,))
    s.conn.execute(
        "UPDATE queues SET paused = 0, counter = 0, seq = 0, pc = 0, stalled_check_until = 0, "
        "limiter_count = 0, limiter_until = 0 WHERE qid = ?",
        (s.qid,),
    )
    return 0


def change_priority(s: QueueStore, job_id: str, priority: int, lifo: bool) -> int:
    state = s.job_state(job_id)
    if state is None:
        return -1
    if state in ("wait", "paused", "prioritized"):
        new_state, score = s.ready_place(priority, lifo)
        s.place(job_id, new_state, score)
    s.conn.execute(
        "UPDATE jobs SET priority = ? WHERE qid = ? AND id = ?", (priority, s.qid, job_id)
    )
    return 0


def change_delay(s: QueueStore, job_id: str, delay_ms: int, now: int) -> int:
    state = s.job_state(job_id)
    if state is None:
        return -1
    if state != "delayed":
        return -3
    due = now + delay_ms
    s.conn.execute(
        "UPDATE jobs SET score = ?, delay = ? WHERE qid = ? AND id = ?",
        (s.delayed_score(due), delay_ms, s.qid, job_id),
    )
    s.emit(now, "delayed", {"jobId": job_id, "delay": str(due)})
    return 0


def counts_per_priority(s: QueueStore, priorities: Sequence[int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for p in priorities:
        if p == 0:
            row = s.conn.execute(
                "SELECT count(*) FROM jobs WHERE qid = ? AND state IN ('wait', 'paused')", (s.qid,)
            ).fetchone()
        else:
            low = p * 4294967296
            row = s.conn.execute(
                "SELECT count(*) FROM jobs WHERE qid = ? AND state = 'prioritized' AND score "
                "BETWEEN ? AND ?",
                (s.qid, low, low + 4294967295),
            ).fetchone()
        counts[p] = int(row[0])
    return counts


def _now() -> int:
    return int(time.time() * 1000)


class SqliteAdmin:
    """Mixed into SqliteBackend: the admin half of the Backend protocol, each method one
    of the transitions above run in one transaction."""

    queue: str
    prefix: str

    async def _run(self, fn: Callable[..., Any], *args: Any, write: bool = True) -> Any:
        raise NotImplementedError  # SqliteBackend's

    async def pause(self) -> None:
        await self._run(QueueStore.pause, True, _now())

    async def resume(self) -> None:
        await self._run(QueueStore.pause, False, _now())

    async def remove(self, job_id: str) -> int:
        code: int = await self._run(remove, job_id, _now())
        return code

    async def reprocess(self, job_id: str, state: str, lifo: bool, reset_attempts: bool) -> int:
        code: int = await self._run(reprocess, job_id, state, lifo, reset_attempts, _now())
        return code

    async def promote(self, job_id: str) -> int:
        code: int = await self._run(promote, job_id, _now())
        return code

    async def move_jobs_to_wait(self, state: str, count: int, before_ms: int) -> int:
        moved: int = await self._run(move_jobs_to_wait, state, count, before_ms, _now())
        return moved

    async def drain(self, delayed: bool) -> int:
        removed: int = await self._run(drain, delayed)
        return removed

    async def clean(self, state: str, before_ms: int, limit: int) -> list[str]:
        ids: list[str] = await self._run(clean, state, before_ms, limit, _now())
        return ids

    async def obliterate(self, force: bool) -> int:
        code: int = await self._run(obliterate, force)
        return code

    async def change_priority(self, job_id: str, priority: int, lifo: bool) -> int:
        code: int = await self._run(change_priority, job_id, priority, lifo)
        return code

    async def change_delay(self, job_id: str, delay_ms: int) -> int:
        code: int = await self._run(change_delay, job_id, delay_ms, _now())
        return code

    async def update_data(self, job_id: str, data: str) -> int:
        def update(s: QueueStore) -> int:
            cur = s.conn.execute(
                "UPDATE jobs SET data = ? WHERE qid = ? AND id = ?", (data, s.qid, job_id)
            )
            return 0 if cur.rowcount else -1

        code: int = await self._run(update)
        return code

    async def get_counts_per_priority(self, priorities: Sequence[int]) -> dict[int, int]:
        counts: dict[int, int] = await self._run(counts_per_priority, priorities, write=False)
        return counts

    async def set_limits(self, limits: Mapping[str, int | None]) -> None:
        columns = {
            "concurrency": "concurrency",
            "max": "rate_max",
            "duration": "rate_duration",
            "max_events": "max_events",
        }

        def update(s: QueueStore) -> None:
            for name, value in limits.items():
                s.conn.execute(
                    f"UPDATE queues SET {columns[name]} = ? WHERE qid = ?", (value, s.qid)
                )

        await self._run(update)

    async def get_limits(self) -> dict[str, int]:
        def read(s: QueueStore) -> dict[str, int]:
            row = s.conn.execute(
                "SELECT concurrency, rate_max, rate_duration, max_events FROM queues WHERE qid = ?",
                (s.qid,),
            ).fetchone()
            names = ("concurrency", "max", "duration", "max_events")
            return {n: int(v) for n, v in zip(names, row, strict=True) if v is not None}

        limits: dict[str, int] = await self._run(read, write=False)
        return limits

    async def get_metrics(self, kind: str, start: int, end: int) -> dict[str, Any]:
        def read(s: QueueStore) -> dict[str, Any]:
            return s.load_metrics(kind).view(start, end)

        view: dict[str, Any] = await self._run(read, write=False)
        return view

    async def get_workers(self) -> list[dict[str, str]]:
        raise NotSupportedError(
            "the sqlite:// backend does not track connected workers (get_workers); use "
            "redis:// to list workers, or your process supervisor"
        )

    async def list_queue_names(self) -> list[str]:
        """Names of the queues under this backend's prefix that hold or held jobs."""

        def names(s: QueueStore) -> list[str]:
            rows = s.conn.execute(
                "SELECT name FROM queues q WHERE prefix = ? AND EXISTS (SELECT 1 FROM jobs j "
                "WHERE j.qid = q.qid) OR (prefix = ? AND counter > 0) ORDER BY name",
                (self.prefix, self.prefix),
            ).fetchall()
            return [r[0] for r in rows]

        found: list[str] = await self._run(names, write=False)
        return found
