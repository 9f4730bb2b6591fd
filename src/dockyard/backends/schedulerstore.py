"""The job-scheduler part of the Backend protocol: schedules and their iterations.

A scheduler makes ordinary jobs (iterations) with BullMQ's ids ``repeat:<id>:<millis>``;
the next iteration is made when the current one starts (BullMQ's rule), by the store's
fetch, so every worker of a queue advances every scheduler. A backend exposes these
operations as its ``schedulers`` attribute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class SchedulerSpec:
    """A scheduler as upserted: when it fires, and the job each iteration is."""

    scheduler_id: str
    #: Exactly one of ``every_ms`` and ``pattern`` is set.
    every_ms: int | None
    pattern: str | None
    tz: str | None
    start_ms: int | None
    end_ms: int | None
    limit: int | None
    offset_ms: int | None
    #: Pattern only: the first iteration runs now rather than at the first cron time.
    immediately: bool
    #: The iterations' job name, data (JSON text) and options (the JSON text that
    #: ``NewJob.opts`` carries; never a job id, delay or repeat).
    name: str
    data: str
    opts: str


@dataclass(frozen=True, slots=True)
class SchedulerInfo:
    """A stored scheduler, as the readers answer it."""

    scheduler_id: str
    name: str
    #: When the current iteration is due (ms); None if the scheduler has no iteration.
    next_ms: int | None
    iteration_count: int
    every_ms: int | None
    pattern: str | None
    tz: str | None
    start_ms: int | None
    end_ms: int | None
    limit: int | None
    offset_ms: int | None
    #: ``{"data": ..., "opts": {...}}`` of the iterations (decoded JSON).
    template: dict[str, Any]


class SchedulerStore(Protocol):
    """Scheduler operations of one queue's store (``backend.schedulers``)."""

    async def upsert_scheduler(self, spec: SchedulerSpec, next_ms: int | None, now_ms: int) -> str:
        """Create or replace the scheduler and its pending iteration; the id of the iteration
        now pending. ``next_ms``: the first cron time (patterns); None for ``every``, whose
        slot the store computes from the previous one (BullMQ's rule)."""

    async def get_scheduler(self, scheduler_id: str) -> SchedulerInfo | None:
        """The scheduler, or None."""

    async def get_schedulers(self, start: int, end: int, asc: bool) -> list[SchedulerInfo]:
        """A page of schedulers by next run (``end`` inclusive, -1 = all)."""

    async def remove_scheduler(self, scheduler_id: str) -> bool:
        """Remove the scheduler and its delayed iteration; False if there was none."""
