"""What a worker sends the store once a handler is done: the outcome (retried through
connection loss; outcomes of one loop turn in one store call), the dead-letter copy of a
job that failed for good, and the release of jobs that never ran; kept apart from the
worker's slots and side tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ._runner import Runner, refused
from .backends import Backend
from .backends.base import Fetched, Finish, Lease
from .errors import (
    BackendFullError,
    BackendRefusedError,
    BackendUnavailableError,
    FailedChildrenError,
    JobStateError,
    LockLostError,
    PendingChildrenError,
)
from .job import Job

log = logging.getLogger("dockyard.worker")


#: At most this many outcomes go to the store in one call (a bound on the script's time).
BATCH_MAX = 64

_Many = Callable[
    [Sequence[Finish], Lease | None, int],
    Awaitable[tuple[list[Any], Fetched | None]],
]


class Finisher:
    """Sends a worker's outcomes to the store. Completed and failed outcomes that slots
    store in the same turn of the event loop go together in one call (each still checked
    against its own lock) when the store can (``finish_many``); the first slot of a turn
    gathers them, the others wait for its reply. Other outcomes go one by one."""

    def __init__(self, backend: Backend, hold: Callable[[Fetched | None], None]) -> None:
        self._backend = backend
        self._many: _Many | None = getattr(backend, "finish_many", None)
        self._hold = hold
        self._gathering: list[_Entry] | None = None

    async def finish(self, finish: Finish, lease: Lease | None, count: int) -> Fetched | None:
        """As ``Backend.finish``: store one outcome, fetch up to ``count`` next jobs."""
        if self._many is None or finish.outcome not in ("completed", "failed"):
            return await self._backend.finish(finish, lease, count)
        gathering = self._gathering
        if gathering is not None and len(gathering) < BATCH_MAX:
            entry = _Entry(finish, lease, count, asyncio.get_running_loop().create_future())
            gathering.append(entry)
            assert entry.future is not None
            return await entry.future
        batch = [_Entry(finish, lease, count, None)]
        self._gathering = batch
        try:
            await asyncio.sleep(0)  # the other slots of this turn join in
        except BaseException:
            self._settle(batch, BackendUnavailableError("the outcome was not sent"))
            raise
        finally:
            if self._gathering is batch:
                self._gathering = None
        if len(batch) == 1:
            return await self._backend.finish(finish, lease, count)
        return await self._send(batch, self._many)

    async def _send(self, batch: list[_Entry], many: _Many) -> Fetched | None:
        """One store call for the batch; each waiting slot gets its own reply."""
        with_lease = [e for e in batch if e.lease is not None]
        lease = with_lease[0].lease if with_lease else None
        # One next job per slot that asked, plus the idle slots (each entry counted them).
        count = len(with_lease) + max((e.count - 1 for e in with_lease), default=0)
        try:
            errors, fetched = await many([e.finish for e in batch], lease, count)
        except BaseException as exc:
            failure = exc if isinstance(exc, Exception) else BackendUnavailableError(str(exc))
            self._settle(batch, failure)
            raise
        self._hold(fetched)  # held before any slot resumes (the lock keeper renews them)
        jobs = list(fetched.jobs) if fetched is not None else []
        replies: list[Fetched | None] = [None] * len(batch)
        stored = [i for i, error in enumerate(errors) if error is None]
        for i in stored:
            if jobs and batch[i].lease is not None:
                replies[i] = Fetched([jobs.pop(0)])
        if jobs and stored:  # more than one each: the first stored one hands them out
            first = replies[stored[0]]
            replies[stored[0]] = Fetched([*(first.jobs if first else []), *jobs])
        for entry, error, reply in zip(batch[1:], errors[1:], replies[1:], strict=True):
            assert entry.future is not None
            if entry.future.done():
                continue
            if error is None:
                entry.future.set_result(reply)
            else:
                entry.future.set_exception(error)
        if errors[0] is not None:
            raise errors[0]
        return replies[0]

    @staticmethod
    def _settle(batch: list[_Entry], exc: BaseException) -> None:
        """The batch's call failed: every waiting slot gets the error (it retries alone)."""
        for entry in batch[1:]:
            if entry.future is not None and not entry.future.done():
                entry.future.set_exception(exc)


class _Entry:
    """One outcome waiting in a batch; ``future`` is None for the slot that sends it."""

    __slots__ = ("count", "finish", "future", "lease")

    def __init__(
        self,
        finish: Finish,
        lease: Lease | None,
        count: int,
        future: asyncio.Future[Fetched | None] | None,
    ) -> None:
        self.finish = finish
        self.lease = lease
        self.count = count
        self.future = future


async def store_outcome(
    finisher: Finisher,
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
            return await finisher.finish(finish, lease, count)
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
