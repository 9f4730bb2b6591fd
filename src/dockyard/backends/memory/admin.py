"""Admin transitions of a memory queue, one function per Lua script of the Redis backend.

Callers hold the store's lock. Codes are the scripts' (-1 missing, -3 not in that state).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..metrics import Metrics
from . import flows
from .clock import Clock
from .schedulers import current_iterations, current_scheduler
from .state import MAX_EVENTS, QueueState, Rec
from .structures import ZSet

_WHERE_NAMES = {"wait": "waiting", "paused": "paused"}


def _set_of(q: QueueState, where: str) -> ZSet | None:
    return {
        "delayed": q.delayed,
        "prioritized": q.prioritized,
        "completed": q.completed,
        "failed": q.failed,
        "waiting-children": q.waiting_children,
    }.get(where)


def _unlink(q: QueueState, rec: Rec) -> str:
    """Take a job out of whatever list or set holds it; the state name it was in."""
    where = rec.where
    if where == "wait":
        q.wait.remove(rec.id)
    elif where == "paused":
        q.paused_list.remove(rec.id)
    elif where == "active":
        q.deactivate(rec.id)
        q.stalled.pop(rec.id, None)
    else:
        zset = _set_of(q, where)
        if zset is not None:
            zset.remove(rec.id)
    return _WHERE_NAMES.get(where, where or "unknown")


def _ready_list(q: QueueState) -> deque[str]:
    return q.paused_list if q.paused else q.wait


def remove(q: QueueState, job_id: str, now: int) -> int:
    """removeJob: 1 removed, 0 locked, -1 missing, -4 a parent with children pending."""
    rec = q.jobs.get(job_id)
    if rec is None:
        return -1
    if current_scheduler(q, job_id) is not None:
        return -8  # a scheduler's current iteration: its schedule would end (BullMQ's -8)
    if q.lock_valid(job_id, now):
        return 0
    if flows.pending_count(q, job_id) > 0:
        return -4
    q.locks.pop(job_id, None)
    prev = _unlink(q, rec)
    q.release_dedup(rec, untimed_only=False)
    q.delete(job_id)
    q.emit(now, "removed", {"jobId": job_id, "prev": prev})
    return 1


def _clear_finish(rec: Rec) -> None:
    rec.finished_on = None
    rec.processed_on = None
    rec.returnvalue = None
    rec.failed_reason = None
    rec.defa = None


def reprocess(
    q: QueueState, job_id: str, state: str, lifo: bool, reset_attempts: bool, now: int
) -> int:
    """reprocessJob: a completed or failed job back to wait."""
    rec = q.jobs.get(job_id)
    if rec is None:
        return -1
    if rec.where != state or state not in ("completed", "failed"):
        return -3
    _unlink(q, rec)
    _clear_finish(rec)
    if reset_attempts:
        rec.atm = rec.ats = 0
    target = _ready_list(q)
    rec.where = "paused" if q.paused else "wait"
    if lifo:
        target.append(job_id)
    else:
        target.appendleft(job_id)
    q.emit(now, "waiting", {"jobId": job_id, "prev": state})
    if not q.paused:
        q.wake_workers()
    return 1


def promote(q: QueueState, job_id: str, now: int) -> int:
    """promote: a delayed job ready now."""
    rec = q.jobs.get(job_id)
    if rec is None:
        return -1
    if rec.where != "delayed":
        return -3
    q.delayed.remove(job_id)
    q.enqueue_ready(rec, rec.priority, False)
    q.emit(now, "waiting", {"jobId": job_id, "prev": "delayed"})
    rec.delay = 0
    if not q.paused:
        q.wake_workers()
    return 0


def move_jobs_to_wait(q: QueueState, state: str, count: int, before_ms: int, now: int) -> int:
    """moveJobsToWait: up to ``count`` jobs of a set back to wait (priorities ignored)."""
    zset = _set_of(q, state)
    if zset is None:
        return 0
    max_score = (before_ms + 1) * 4096 - 1 if state == "delayed" else before_ms
    ids = zset.up_to(max_score, count)
    target = _ready_list(q)
    for job_id in ids:
        zset.remove(job_id)
        rec = q.jobs[job_id]
        _clear_finish(rec)
        if state == "delayed":
            rec.delay = 0
        rec.where = "paused" if q.paused else "wait"
        target.appendleft(job_id)
        q.emit(now, "waiting", {"jobId": job_id, "prev": state})
    if ids and not q.paused:
        q.wake_workers()
    return len(ids)


def drain(q: QueueState, delayed: bool) -> int:
    """drain: delete every job waiting to run (no events)."""
    doomed = [*q.wait, *q.paused_list, *q.prioritized.by_rank(0, -1, False)]
    if delayed:
        doomed += q.delayed.by_rank(0, -1, False)
    keep = current_iterations(q).intersection(doomed)
    if keep:  # job schedulers' current iterations stay (BullMQ): unlink the others one by one
        doomed = [job_id for job_id in doomed if job_id not in keep]
        for job_id in doomed:
            _unlink(q, q.jobs[job_id])
    else:
        q.wait.clear()
        q.paused_list.clear()
        q.prioritized = ZSet()
        q.pc = 0
        if delayed:
            q.delayed = ZSet()
    for job_id in doomed:
        q.release_dedup(q.jobs[job_id], untimed_only=False)
        q.delete(job_id)
    return len(doomed)


def clean(q: QueueState, state: str, before_ms: int, limit: int, now: int) -> list[str]:
    """cleanJobsInSet: jobs of one state older than ``before_ms``, oldest first."""
    where = "wait" if state == "waiting" else state
    candidates: Sequence[str]
    if where in ("completed", "failed"):
        zset = _set_of(q, where)
        assert zset is not None
        candidates = zset.up_to(before_ms, limit if limit > 0 else len(zset))
    elif where == "wait":
        candidates = list(reversed(q.wait))
    elif where == "paused":
        candidates = list(reversed(q.paused_list))
    elif where == "active":
        candidates = list(q.active)
    else:
        zset = _set_of(q, where)
        candidates = [] if zset is None else zset.by_rank(0, -1, False)
    removed: list[str] = []
    keep = current_iterations(q)  # job schedulers' current iterations stay (BullMQ)
    for job_id in candidates:
        if limit > 0 and len(removed) >= limit:
            break
        if job_id in keep:
            continue
        rec = q.jobs[job_id]
        if where == "prioritized":
            stamp: int = rec.timestamp
        elif where == "delayed":
            stamp = rec.processed_on if rec.processed_on is not None else rec.timestamp
        elif where in ("completed", "failed"):
            stamp = before_ms
        else:
            stamp = next(
                t for t in (rec.finished_on, rec.processed_on, rec.timestamp) if t is not None
            )
        if stamp > before_ms or (where == "active" and q.lock_valid(job_id, now)):
            continue
        _unlink(q, rec)
        q.locks.pop(job_id, None)
        q.release_dedup(rec, untimed_only=False)
        q.delete(job_id)
        removed.append(job_id)
    q.emit(now, "cleaned", {"count": str(len(removed))})
    return removed


def obliterate(q: QueueState, force: bool) -> int:
    """obliterate: 0 done, -1 not paused, -2 active jobs and no force."""
    if not q.paused:
        return -1
    if q.active and not force:
        return -2
    flows.obliterating(q)
    q.jobs.clear()
    q.wait.clear()
    q.paused_list.clear()
    q.active.clear()
    q.locks.clear()
    q.stalled.clear()
    for name in ("prioritized", "delayed", "completed", "failed"):
        setattr(q, name, ZSet())
    q.events.clear()
    q.schedulers.clear()
    q.dedup.clear()
    q.counter = q.pc = 0
    q.paused = False
    return 0


def change_priority(q: QueueState, job_id: str, priority: int, lifo: bool) -> int:
    """changePriority: a ready job moves to its new place at once."""
    rec = q.jobs.get(job_id)
    if rec is None:
        return -1
    if rec.where in ("wait", "paused", "prioritized"):
        _unlink(q, rec)
        q.enqueue_ready(rec, priority, lifo)
        if not q.paused:
            q.wake_workers()
    rec.priority = priority
    return 0


def change_delay(q: QueueState, job_id: str, delay_ms: int, now: int) -> int:
    """changeDelay: a delayed job due ``delay_ms`` from now."""
    rec = q.jobs.get(job_id)
    if rec is None:
        return -1
    if rec.where != "delayed":
        return -3
    q.delayed.remove(job_id)
    due = now + delay_ms
    q.delayed.add(job_id, q.delayed_score(due))
    rec.delay = delay_ms
    q.emit(now, "delayed", {"jobId": job_id, "delay": str(due)})
    q.wake_workers()
    return 0


def counts_per_priority(q: QueueState, priorities: Sequence[int]) -> dict[int, int]:
    """How many ready jobs have each priority."""
    counts = dict.fromkeys(priorities, 0)
    if 0 in counts:
        counts[0] = len(q.wait) + len(q.paused_list)
    for job_id in q.prioritized.by_rank(0, -1, False):
        priority = q.jobs[job_id].priority
        if priority in counts and priority != 0:
            counts[priority] += 1
    return counts


class MemoryAdmin:
    """Mixed into MemoryBackend: the admin half of the Backend protocol, each method one
    of the transitions above under the store's lock."""

    queue: str
    clock: Clock
    _q: QueueState
    _lock: threading.Lock

    def _check_open(self) -> None:
        raise NotImplementedError  # MemoryBackend's

    async def _admin(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run one admin transition of py under the store's lock."""
        self._check_open()
        with self._lock:
            result = fn(self._q, *args)
        await asyncio.sleep(0)
        return result

    async def remove(self, job_id: str) -> int:
        code: int = await self._admin(remove, job_id, self.clock.now_ms())
        return code

    async def reprocess(self, job_id: str, state: str, lifo: bool, reset_attempts: bool) -> int:
        now = self.clock.now_ms()
        code: int = await self._admin(reprocess, job_id, state, lifo, reset_attempts, now)
        return code

    async def promote(self, job_id: str) -> int:
        code: int = await self._admin(promote, job_id, self.clock.now_ms())
        return code

    async def move_jobs_to_wait(self, state: str, count: int, before_ms: int) -> int:
        now = self.clock.now_ms()
        moved: int = await self._admin(move_jobs_to_wait, state, count, before_ms, now)
        return moved

    async def drain(self, delayed: bool) -> int:
        removed: int = await self._admin(drain, delayed)
        return removed

    async def clean(self, state: str, before_ms: int, limit: int) -> list[str]:
        now = self.clock.now_ms()
        ids: list[str] = await self._admin(clean, state, before_ms, limit, now)
        return ids

    async def obliterate(self, force: bool) -> int:
        code: int = await self._admin(obliterate, force)
        return code

    async def change_priority(self, job_id: str, priority: int, lifo: bool) -> int:
        code: int = await self._admin(change_priority, job_id, priority, lifo)
        return code

    async def change_delay(self, job_id: str, delay_ms: int) -> int:
        code: int = await self._admin(change_delay, job_id, delay_ms, self.clock.now_ms())
        return code

    async def update_data(self, job_id: str, data: str) -> int:
        self._check_open()
        with self._lock:
            rec = self._q.jobs.get(job_id)
            if rec is not None:
                rec.data = data
        await asyncio.sleep(0)
        return -1 if rec is None else 0

    async def get_counts_per_priority(self, priorities: Sequence[int]) -> dict[int, int]:
        counts: dict[int, int] = await self._admin(counts_per_priority, priorities)
        return counts

    async def set_limits(self, limits: Mapping[str, int | None]) -> None:
        self._check_open()
        with self._lock:
            for name, value in limits.items():
                if value is None:
                    self._q.limits.pop(name, None)
                else:
                    self._q.limits[name] = value
                if name == "max_events":
                    self._q.events = deque(self._q.events, maxlen=value or MAX_EVENTS)
            self._q.wake_workers()
        await asyncio.sleep(0)

    async def get_limits(self) -> dict[str, int]:
        self._check_open()
        await asyncio.sleep(0)
        return dict(self._q.limits)

    async def get_metrics(self, kind: str, start: int, end: int) -> dict[str, Any]:
        self._check_open()
        with self._lock:
            view = self._q.metrics.get(kind, Metrics()).view(start, end)
        await asyncio.sleep(0)
        return view

    async def get_workers(self) -> list[dict[str, str]]:
        self._check_open()
        with self._lock:
            workers = [dict(w) for w in self._q.workers.values()]
        await asyncio.sleep(0)
        return workers
