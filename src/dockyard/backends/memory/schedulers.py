"""Job schedulers in a memory store: ``QueueState.schedulers`` and ``backend.schedulers``.

The rules are :mod:`..schedulerlogic`'s, run under the store's lock. The next iteration is
made inside the fetch that takes the current one (``advance_fetched``), and iterations are
delayed jobs, so on a virtual clock (``?clock=manual``) they fire as ``advance()`` moves
time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .. import schedulerlogic as logic
from ..base import NewJob
from ..schedulerlogic import StoredScheduler
from ..schedulerstore import SchedulerInfo, SchedulerSpec, SchedulerStore
from .state import QueueState, Rec

if TYPE_CHECKING:
    from .backend import MemoryBackend

log = logging.getLogger("dockyard.worker")


class MemoryOps:
    """:class:`logic.IterationOps` on one queue of a memory store (caller holds the lock)."""

    __slots__ = ("manual", "q")

    def __init__(self, q: QueueState, manual: bool) -> None:
        self.q = q
        self.manual = manual

    def load(self, scheduler_id: str) -> StoredScheduler | None:
        return self.q.schedulers.get(scheduler_id)

    def save(self, scheduler: StoredScheduler) -> None:
        self.q.schedulers[scheduler.scheduler_id] = scheduler

    def drop(self, scheduler_id: str) -> None:
        self.q.schedulers.pop(scheduler_id, None)

    def job_state(self, job_id: str) -> str | None:
        rec = self.q.jobs.get(job_id)
        return None if rec is None else rec.where

    def discard(self, job_id: str) -> None:
        q = self.q
        rec = q.jobs.get(job_id)
        if rec is None:
            return
        where = rec.where
        if where == "delayed":
            q.delayed.remove(job_id)
        elif where == "prioritized":
            q.prioritized.remove(job_id)
        elif where == "wait":
            q.wait.remove(job_id)
        elif where == "paused":
            q.paused_list.remove(job_id)
        q.release_dedup(rec, untimed_only=False)
        q.delete(job_id)

    def add(self, job: NewJob, now: int) -> str:
        return self.q.add(job, now, self.manual)

    def emit(self, now: int, name: str, fields: dict[str, str]) -> None:
        self.q.emit(now, name, fields)


def advance_fetched(q: QueueState, recs: Sequence[Rec], now: int, manual: bool) -> None:
    """Make the next iteration of each scheduler whose current iteration was just taken;
    a failure is logged, never lost with the fetched jobs."""
    for rec in recs:
        if not rec.id.startswith("repeat:"):
            continue
        try:
            logic.advance(MemoryOps(q, manual), rec.id, now)
        except Exception as exc:
            log.error(
                "job scheduler of job %s: could not create its next iteration (%s: %s); "
                "running the job anyway",
                rec.id,
                type(exc).__name__,
                exc,
            )


def current_scheduler(q: QueueState, job_id: str) -> str | None:
    """The scheduler whose current iteration ``job_id`` is (Queue.remove refuses it)."""
    return logic.current_scheduler(MemoryOps(q, False), job_id)


def current_iterations(q: QueueState) -> set[str]:
    """Ids of every scheduler's current iteration (drain and clean leave them)."""
    return {logic.iteration_id(sid, c.next_ms) for sid, c in q.schedulers.items()}


class MemorySchedulers:
    """``backend.schedulers`` of a memory backend (the SchedulerStore protocol).

    On a virtual clock the store's time is the time of every step (``now_ms`` given by
    the caller is used on the system clock only), as for the times written to jobs.
    """

    def __init__(self, backend: MemoryBackend) -> None:
        self._backend = backend

    def _ops(self) -> MemoryOps:
        backend = self._backend
        backend._check_open()
        return MemoryOps(backend._q, backend.clock.manual)

    async def upsert_scheduler(self, spec: SchedulerSpec, next_ms: int | None, now_ms: int) -> str:
        ops = self._ops()
        clock = self._backend.clock
        with self._backend._lock:
            now = clock.now_ms() if clock.manual else now_ms
            return logic.upsert(ops, spec, next_ms, now)

    async def get_scheduler(self, scheduler_id: str) -> SchedulerInfo | None:
        ops = self._ops()
        with self._backend._lock:
            found = ops.load(scheduler_id)
        return None if found is None else logic.info(found)

    async def get_schedulers(self, start: int, end: int, asc: bool) -> list[SchedulerInfo]:
        ops = self._ops()
        with self._backend._lock:
            every = sorted(ops.q.schedulers.values(), key=lambda c: (c.next_ms, c.scheduler_id))
        if not asc:
            every.reverse()
        n = len(every)
        lo = start if start >= 0 else max(n + start, 0)
        hi = min(end if end >= 0 else n + end, n - 1)
        return [logic.info(c) for c in every[lo : hi + 1]] if lo <= hi else []

    async def remove_scheduler(self, scheduler_id: str) -> bool:
        ops = self._ops()
        with self._backend._lock:
            return logic.remove(ops, scheduler_id, self._backend.clock.now_ms())


def _is_a_scheduler_store(schedulers: MemorySchedulers) -> SchedulerStore:
    """mypy: MemorySchedulers follows the SchedulerStore protocol."""
    return schedulers
