"""Advancing BullMQ job schedulers when a dockyard worker starts one of their iterations.

Node BullMQ creates a scheduler's next iteration when a worker *starts* the current one
(not when it finishes), so a worker that takes an iteration and skips this ends the
schedule for good. Here the client-side half (limit, end date, cron) runs in Python and
the rest in one script (``advanceJobScheduler``), only for jobs carrying ``rjk``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...cron import CronPattern

if TYPE_CHECKING:
    from ...job import Job
    from ..base import Fetched
    from .scripts import QueueScripts

log = logging.getLogger("dockyard.worker")

#: Why the script made no iteration, by its numeric reply.
_NOT_ADVANCED = {
    0: "the scheduler was removed",
    1: "the job is not the scheduler's current iteration (already advanced)",
    2: "its next iteration exists already",
    3: "it has neither an interval nor a cron time",
    4: "it is a legacy repeatable job, not a job scheduler",
}
#: Connection errors are retried this many times, with growing pauses (BullMQ 5.x: 3).
_CONNECTION_TRIES = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class NextIteration:
    """What the client decides before the script runs: the next iteration's number
    (``repeat.count``) and, for cron schedulers, its time in ms (None for ``every``)."""

    iteration: int
    next_ms: int | None


def _number(value: object) -> float | None:
    """A repeat option as a finite number (BullMQ stores ms numbers; numeric text is
    tolerated); None for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _cron_next(pattern: str, after_ms: int, tz: str | None, end_ms: int | None) -> int | None:
    """The first cron time strictly after ``after_ms`` (None past ``end_ms``), from the
    cron-parser-compatible engine."""
    return CronPattern.parse(pattern).next_after(after_ms, tz=tz, end_ms=end_ms)


def plan_next(opts_extra: Mapping[str, Any], now_ms: int) -> NextIteration | None:
    """BullMQ's client-side checks on a started iteration's options (``repeat``,
    ``prevMillis``): None when the schedule has ended (limit reached, past its end date,
    or no cron time left); else what the next iteration is."""
    repeat = opts_extra.get("repeat")
    if not isinstance(repeat, Mapping):
        repeat = {}
    count = _number(repeat.get("count")) or 0
    iteration = int(count) + 1
    limit = _number(repeat.get("limit"))
    if limit is not None and iteration > limit:
        return None
    end = _number(repeat.get("endDate"))
    if end is not None and end > 0 and now_ms > end:
        return None
    pattern = repeat.get("pattern")
    if not isinstance(pattern, str) or not pattern or repeat.get("every"):
        return NextIteration(iteration=iteration, next_ms=None)
    base = max(now_ms, int(_number(opts_extra.get("prevMillis")) or 0))
    start = _number(repeat.get("startDate"))
    after = max(base, int(start)) if start is not None else base
    tz = repeat.get("tz")
    found = _cron_next(
        pattern,
        after,
        tz if isinstance(tz, str) and tz else None,
        int(end) if end is not None and end > 0 else None,
    )
    if found is None:
        return None
    return NextIteration(iteration=iteration, next_ms=max(found, base))


async def advance(scripts: QueueScripts, job: Job) -> str | None:
    """Create the next iteration of the scheduler ``job`` belongs to; its id, or None.

    Never raises for a scheduler's sake: the job runs whatever happens here. Connection
    errors are retried (the script is idempotent: a second run finds the scheduler already
    advanced); any other failure is logged as an error naming the scheduler.
    """
    sid = job.repeat_job_key
    if sid is None:
        return None
    pause = 0.2
    for attempt in range(1, _CONNECTION_TRIES + 1):
        now = int(time.time() * 1000)
        try:
            plan = plan_next(job.opts.extra, now)
            if plan is None:
                log.info("job scheduler %r ends with job %s (limit or end date)", sid, job.id)
                return None
            reply = await scripts.advance_job_scheduler(
                sid, job.id, now, plan.iteration, plan.next_ms
            )
        except ConnectionError as exc:
            if attempt == _CONNECTION_TRIES:
                log.error(
                    "job scheduler %r: could not create the iteration after job %s (%s); "
                    "the schedule stops until a worker runs a retry of this job or the "
                    "scheduler is upserted again",
                    sid,
                    job.id,
                    exc,
                )
                return None
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.5)
            continue
        except Exception as exc:  # a script or cron error must not lose the fetched job
            log.error(
                "job scheduler %r: could not create the iteration after job %s (%s: %s); "
                "running the job anyway",
                sid,
                job.id,
                type(exc).__name__,
                exc,
            )
            return None
        if isinstance(reply, bytes):
            return reply.decode()
        log.debug(
            "job scheduler %r not advanced by job %s: %s",
            sid,
            job.id,
            _NOT_ADVANCED.get(int(reply), f"code {reply}"),
        )
        return None
    return None


async def advance_fetched(scripts: QueueScripts, fetched: Fetched) -> Fetched:
    """Advance the schedulers of the fetched jobs that are iterations; nothing to do (and
    no round trip) for ordinary jobs. Returns ``fetched`` unchanged."""
    for job in fetched.jobs:
        if job.repeat_job_key is not None:
            await advance(scripts, job)
    return fetched
