"""Job schedulers of the embedded stores (SQLite, memory): BullMQ's rules, written once.

The Redis store keeps schedulers in BullMQ's keys and advances them in Lua; the embedded
stores keep a :class:`StoredScheduler` per scheduler and run these functions inside their
own transaction (SQLite) or lock (memory), through the few primitives of
:class:`IterationOps`. The behaviour is the Redis store's: iterations are ordinary jobs
``repeat:<id>:<millis>``; the next one is made when a worker takes the current one (inside
that fetch, so two workers never both make it); ``every`` slots follow the previous slot
and skip missed ones; cron times come from :mod:`dockyard.cron`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ..cron import CronPattern
from ..errors import InvalidOptionError, JobStateError
from .base import NewJob
from .schedulerstore import SchedulerInfo, SchedulerSpec

log = logging.getLogger("dockyard.worker")

#: States in which an upsert replaces the current iteration silently (it has not started).
PENDING = ("delayed", "prioritized", "wait", "paused")
#: How many later slots an upsert tries when ``repeat:<id>:<slot>`` exists (BullMQ 5.80.8+).
COLLISION_SLOTS = 32


@dataclass(frozen=True, slots=True)
class StoredScheduler:
    """One scheduler as an embedded store keeps it."""

    scheduler_id: str
    name: str
    data: str
    opts: str
    every_ms: int | None
    pattern: str | None
    tz: str | None
    start_ms: int | None
    end_ms: int | None
    limit: int | None
    offset_ms: int | None
    #: Iterations made in all (BullMQ ``ic``): 1 at creation, kept across upserts.
    iteration_count: int
    #: The current iteration's number since the last upsert (BullMQ ``repeat.count``).
    count: int
    #: The current iteration's millis (its id is ``repeat:<id>:<next_ms>``).
    next_ms: int


class IterationOps(Protocol):
    """What the rules need from a store, all inside the caller's transaction or lock."""

    def load(self, scheduler_id: str) -> StoredScheduler | None:
        """The stored scheduler, or None."""

    def save(self, scheduler: StoredScheduler) -> None:
        """Insert or replace the scheduler."""

    def drop(self, scheduler_id: str) -> None:
        """Delete the scheduler (not its jobs)."""

    def job_state(self, job_id: str) -> str | None:
        """Where the job is (wait, paused, delayed, prioritized, active, ...), or None."""

    def discard(self, job_id: str) -> None:
        """Delete a pending job with no event (an upsert replacing its iteration)."""

    def add(self, job: NewJob, now: int) -> str:
        """Store and enqueue a job as ``Backend.add`` does (events included)."""

    def emit(self, now: int, name: str, fields: dict[str, str]) -> None:
        """Append an event to the queue's events."""


def iteration_id(scheduler_id: str, millis: int) -> str:
    """BullMQ's id of a scheduler's iteration due at ``millis``."""
    return f"repeat:{scheduler_id}:{millis}"


def parse_iteration_id(job_id: str) -> tuple[str, int] | None:
    """``(scheduler id, millis)`` of an iteration id, None for any other id."""
    if not job_id.startswith("repeat:"):
        return None
    sid, _, millis = job_id[7:].rpartition(":")
    if not sid or not millis.isdigit():
        return None
    return sid, int(millis)


def current_scheduler(ops: IterationOps, job_id: str) -> str | None:
    """The id of the scheduler whose current iteration ``job_id`` is, or None."""
    parsed = parse_iteration_id(job_id)
    if parsed is None:
        return None
    found = ops.load(parsed[0])
    return parsed[0] if found is not None and found.next_ms == parsed[1] else None


# -- slots ------------------------------------------------------------------------------


def first_every_slot(every: int, now: int, start: int | None, offset: int | None) -> int:
    """The first slot of a new (or re-timed) ``every`` scheduler (BullMQ 5.80.2+/6.x)."""
    if start is not None:
        return max(start, now)
    if offset:
        slot = now // every * every + offset
        return slot + every if slot <= now else slot
    return now


def every_after(prev: int, every: int, now: int, offset: int) -> int:
    """The slot after ``prev``; after a gap, the first slot of the phase after now (missed
    slots are skipped, never back-filled: a catch-up is one run)."""
    slot = prev + every
    if slot >= now:
        return slot
    aligned = now // every * every + offset
    return aligned + every if aligned <= now else aligned


def cron_after(scheduler: StoredScheduler, after: int) -> int | None:
    """The first cron time strictly after ``after`` (None past the end date)."""
    assert scheduler.pattern is not None
    return CronPattern.parse(scheduler.pattern).next_after(
        after, tz=scheduler.tz, end_ms=scheduler.end_ms
    )


# -- iterations -------------------------------------------------------------------------


def _decoded(text: str, default: Any) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return default


def iteration_job(scheduler: StoredScheduler, millis: int, now: int) -> NewJob:
    """The iteration due at ``millis``: the template plus BullMQ's repeat options."""
    opts = _decoded(scheduler.opts, {})
    if not isinstance(opts, dict):
        opts = {}
    repeat: dict[str, Any] = {}
    if scheduler.every_ms is not None:
        repeat["every"] = scheduler.every_ms
        if scheduler.offset_ms is not None:
            repeat["offset"] = scheduler.offset_ms
    else:
        repeat["pattern"] = scheduler.pattern
        if scheduler.tz is not None:
            repeat["tz"] = scheduler.tz
        opts["prevMillis"] = millis
    for key, value in (
        ("limit", scheduler.limit),
        ("startDate", scheduler.start_ms),
        ("endDate", scheduler.end_ms),
    ):
        if value is not None:
            repeat[key] = value
    repeat["count"] = scheduler.count
    job_id = iteration_id(scheduler.scheduler_id, millis)
    delay = max(0, millis - now)
    opts.update(
        repeat=repeat, jobId=job_id, delay=delay, timestamp=now,
        repeatJobKey=scheduler.scheduler_id,
    )  # fmt: skip
    priority = opts.get("priority")
    return NewJob(
        name=scheduler.name,
        data=scheduler.data,
        opts=json.dumps(opts, separators=(",", ":")),
        timestamp=now,
        delay=delay,
        priority=priority if isinstance(priority, int) and priority > 0 else 0,
        lifo=opts.get("lifo") is True,
        job_id=job_id,
    )


def info(scheduler: StoredScheduler) -> SchedulerInfo:
    """The reader's view of a stored scheduler."""
    return SchedulerInfo(
        scheduler_id=scheduler.scheduler_id,
        name=scheduler.name,
        next_ms=scheduler.next_ms,
        iteration_count=scheduler.iteration_count,
        every_ms=scheduler.every_ms,
        pattern=scheduler.pattern,
        tz=scheduler.tz,
        start_ms=scheduler.start_ms,
        end_ms=scheduler.end_ms,
        limit=scheduler.limit,
        offset_ms=scheduler.offset_ms,
        template={"data": _decoded(scheduler.data, {}), "opts": _decoded(scheduler.opts, {})},
    )


# -- transitions ------------------------------------------------------------------------


def _check(spec: SchedulerSpec) -> None:
    if (spec.every_ms is None) == (spec.pattern is None):
        raise InvalidOptionError(
            f"job scheduler {spec.scheduler_id!r} needs exactly one of every and pattern"
        )
    if spec.every_ms is not None and spec.every_ms <= 0:
        raise InvalidOptionError(
            f"job scheduler {spec.scheduler_id!r}: every must be a positive number of ms"
        )
    if spec.pattern is not None:
        CronPattern.parse(spec.pattern)  # a bad pattern is refused before anything changes


def upsert(ops: IterationOps, spec: SchedulerSpec, next_ms: int | None, now: int) -> str:
    """Create or replace a scheduler and its pending iteration; the iteration's id.

    A pending (not yet started) current iteration is replaced silently: an ``every``
    scheduler whose interval is unchanged keeps its slot, so upserting again never doubles
    nor skips an iteration. The iteration count (``ic``) is kept; ``count`` restarts at 1.
    """
    _check(spec)
    old = ops.load(spec.scheduler_id)
    every = spec.every_ms
    same_every = old is not None and every is not None and old.every_ms == every
    offset = spec.offset_ms
    if every is not None:
        if old is not None and same_every:
            if offset is None:
                offset = old.offset_ms
            slot = every_after(old.next_ms, every, now, offset or 0)
        else:
            slot = first_every_slot(every, now, spec.start_ms, offset)
        if not offset:
            offset = slot % every
    else:
        offset = None
        if next_ms is None:
            pattern = CronPattern.parse(spec.pattern or "")
            after = max(now, spec.start_ms or 0)
            found = None if spec.immediately else pattern.next_after(after, tz=spec.tz)
            next_ms = now if found is None else found
        slot = max(next_ms, now) if not spec.immediately else now
    replaced = False
    if old is not None:
        current = iteration_id(spec.scheduler_id, old.next_ms)
        if ops.job_state(current) in PENDING:
            ops.discard(current)
            replaced = True
            if same_every:
                slot = old.next_ms
    scheduler = StoredScheduler(
        scheduler_id=spec.scheduler_id,
        name=spec.name,
        data=spec.data,
        opts=spec.opts,
        every_ms=every,
        pattern=spec.pattern,
        tz=spec.tz,
        start_ms=spec.start_ms,
        end_ms=spec.end_ms,
        limit=spec.limit,
        offset_ms=offset,
        iteration_count=old.iteration_count if old is not None else 1,
        count=1,
        next_ms=slot,
    )
    if not replaced:
        slot = _free_slot(ops, scheduler, slot)
        scheduler = replace(scheduler, next_ms=slot)
    ops.save(scheduler)
    return ops.add(iteration_job(scheduler, slot, now), now)


def _free_slot(ops: IterationOps, scheduler: StoredScheduler, slot: int) -> int:
    """``slot``, or the first later one whose iteration id is not taken by an old job (a
    finished iteration of an earlier scheduler of the same id)."""
    for _ in range(COLLISION_SLOTS):
        if ops.job_state(iteration_id(scheduler.scheduler_id, slot)) is None:
            return slot
        if scheduler.every_ms is not None:
            slot += scheduler.every_ms
        else:
            later = cron_after(scheduler, slot)
            if later is None:
                break
            slot = later
    raise JobStateError(
        f"job scheduler {scheduler.scheduler_id!r}: the jobs of its next {COLLISION_SLOTS} "
        f"slots exist already (iterations of an earlier scheduler with this id, e.g. "
        f"{iteration_id(scheduler.scheduler_id, slot)}); remove them or use another id"
    )


def remove(ops: IterationOps, scheduler_id: str, now: int) -> bool:
    """Delete the scheduler and its delayed iteration (a ready or running one stays and
    runs once); False if there was no such scheduler."""
    old = ops.load(scheduler_id)
    if old is None:
        return False
    current = iteration_id(scheduler_id, old.next_ms)
    if ops.job_state(current) == "delayed":
        ops.discard(current)
        ops.emit(now, "removed", {"jobId": current, "prev": "delayed"})
    ops.drop(scheduler_id)
    return True


def next_slot(scheduler: StoredScheduler, now: int) -> int | None:
    """When the iteration after the current one is due; None when the schedule has ended
    (limit reached, past its end date, or no cron time left)."""
    if scheduler.limit is not None and scheduler.count + 1 > scheduler.limit:
        return None
    if scheduler.end_ms is not None and now > scheduler.end_ms:
        return None
    prev = scheduler.next_ms
    if scheduler.every_ms is not None:
        return every_after(prev, scheduler.every_ms, now, scheduler.offset_ms or 0)
    base = max(now, prev)
    found = cron_after(scheduler, max(base, scheduler.start_ms or 0))
    return None if found is None else max(found, base)


def advance(ops: IterationOps, job_id: str, now: int) -> str | None:
    """A worker took ``job_id``: when it is a scheduler's current iteration, make the next
    one (BullMQ: at start, not at completion); its id, or None. Retries and stall requeues
    of an iteration find it no longer current and change nothing."""
    parsed = parse_iteration_id(job_id)
    if parsed is None:
        return None
    sid, millis = parsed
    scheduler = ops.load(sid)
    if scheduler is None or scheduler.next_ms != millis:
        return None
    slot = next_slot(scheduler, now)
    if slot is None:
        log.info("job scheduler %r ends with job %s (limit or end date)", sid, job_id)
        return None
    next_id = iteration_id(sid, slot)
    if ops.job_state(next_id) is not None:
        ops.emit(now, "duplicated", {"jobId": next_id})
        return None
    scheduler = replace(
        scheduler,
        next_ms=slot,
        iteration_count=scheduler.iteration_count + 1,
        count=scheduler.count + 1,
    )
    ops.save(scheduler)
    return ops.add(iteration_job(scheduler, slot, now), now)
