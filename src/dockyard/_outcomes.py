"""What a worker sends the store once a handler is done: the outcome (retried through
connection loss), the dead-letter copy of a job that failed for good, and the release of
jobs that never ran; kept apart from the worker's slots and side tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from ._runner import Runner, refused
from .backends import Backend
from .backends.base import Fetched, Finish, Lease
from .errors import (
    BackendFullError,
    BackendRefusedError,
    FailedChildrenError,
    JobStateError,
    LockLostError,
    PendingChildrenError,
)
from .job import Job

log = logging.getLogger("dockyard.worker")


async def store_outcome(
    backend: Backend,
    job: Job,
    *,
    finish: Finish,
    lease: Lease | None,
    count: int,
    runner: Runner,
    on_refusal: Callable[[BackendRefusedError], None],
) -> Fetched | None:
    """Store an outcome (and fetch up to ``count`` next jobs), retrying through
    connection loss until the store answers."""
    pause = 0.1
    attempt = 0
    while True:
        attempt += 1
        try:
            return await backend.finish(finish, lease, count)
        except (PendingChildrenError, FailedChildrenError) as exc:
            # A parent whose children are not done cannot complete: fail it instead.
            log.warning("job %s: %s", job.id, exc)
            finish, attempt = refused(runner, job, finish.token, exc), 0
        except (LockLostError, JobStateError) as exc:
            if attempt > 1:
                log.info("job %s: outcome already stored before the reconnect", job.id)
            else:
                log.warning("job %s: %s", job.id, exc)
            return None
        except BackendRefusedError as exc:  # left active: the stalled check requeues it
            on_refusal(exc)
            return None
        except (ConnectionError, BackendFullError) as exc:
            log.warning("job %s: could not store outcome (%s); retrying", job.id, exc)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)
        except Exception as exc:
            # Never let the slot die: the job stays active until the stalled check.
            log.error(
                "job %s: storing its outcome failed (%s: %s); it is left to the stalled check",
                job.id,
                type(exc).__name__,
                exc,
            )
            return None


async def dead_letter(
    backend: Backend, job: Job, *, finish: Finish, prefix: str, source: str
) -> None:
    """Copy a job that failed for good into its dead-letter queue (retried through
    connection loss; a worker crash in between loses the copy, not the failed job)."""
    from .queue import Queue

    name = job.opts.dead_letter_queue
    assert name is not None
    job.failed_reason = finish.value
    job.attempts_made += 1
    job.finished_on = time.time()
    pause = 0.1
    target = Queue(name, prefix=prefix, backend=backend.sibling(name))
    try:
        while True:
            try:
                await target.add_dead_letter(job, source)
                return
            except ConnectionError as exc:
                log.warning("job %s: dead-letter copy failed (%s); retrying", job.id, exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
    finally:
        await target.close()


async def release(backend: Backend, jobs: list[Job], *, held: dict[str, Job]) -> None:
    """Put jobs whose handlers were stopped back at the front of wait at once (no
    attempt counted), rather than leaving them to the stalled check; each leaves
    ``held`` as its release is sent."""
    for job in jobs:
        assert job.token is not None
        held.pop(job.id, None)
        # Bounded: with the store down, the stalled check requeues them later instead.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5.0):
                await backend.finish(Finish(job.id, job.token, "release", ""), None)
