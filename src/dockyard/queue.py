"""Queue: add jobs, read them back, and pause or resume the queue."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from . import schedulers as _schedulers
from .backends import Backend, open_backend
from .backends.base import STATES, NewJob
from .durations import MAX_EPOCH, to_epoch, to_ms, to_seconds
from .errors import (
    InvalidJobError,
    InvalidOptionError,
    JobLockedError,
    JobNotFoundError,
    JobStateError,
    NotSupportedError,
    ScriptCode,
    pending_children_error,
    scheduler_job_error,
)
from .job import Job, dump_json
from .options import JobOptions, build_options, check_job_ref, check_text
from .schedulers import JobScheduler

#: Counts ``get_job_counts()`` reports when no states are named: every state.
DEFAULT_COUNT_STATES = STATES
#: The states ``clean`` can empty.
CLEAN_STATES = ("completed", "failed", "delayed", "prioritized", "waiting", "paused", "active")
#: The most jobs one ``get_jobs`` page may ask for.
MAX_PAGE = 10_000


class Queue:
    """A named queue of jobs in one store (Redis, by URL).

    ``default_job_options`` are applied under every ``add``'s own options. Use it as
    ``async with Queue(...) as queue:`` or call :meth:`close` when done.
    """

    def __init__(
        self,
        name: str,
        *,
        url: str | None = None,
        prefix: str = "bull",
        default_job_options: Mapping[str, Any] | None = None,
        backend: Backend | None = None,
    ) -> None:
        self.name = name
        self.prefix = prefix
        self.backend = backend if backend is not None else open_backend(url, name, prefix=prefix)
        self.default_job_options: JobOptions = build_options(None, **(default_job_options or {}))
        self._last_opts: tuple[JobOptions, str] | None = None

    def __repr__(self) -> str:
        return f"<Queue {self.name!r} on {self.backend!r}>"

    async def __aenter__(self) -> Queue:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the queue's connections."""
        await self.backend.close()

    # -- adding ---------------------------------------------------------------------

    def _opts_text(self, opts: JobOptions) -> str:
        """BullMQ's opts JSON; the last one is kept, since most adds share their options."""
        last = self._last_opts
        if last is not None and last[0] is opts:
            return last[1]
        text = dump_json(opts.to_bullmq(), "job options")
        self._last_opts = (opts, text)
        return text

    def _prepare(self, name: str, data: Any, options: Mapping[str, Any]) -> tuple[NewJob, Job]:
        return self._prepare_with(name, data, build_options(self.default_job_options, **options))

    def _prepare_with(self, name: str, data: Any, opts: JobOptions) -> tuple[NewJob, Job]:
        if not isinstance(name, str) or not name:
            raise InvalidJobError(f"a job name must be a non-empty string, got {name!r}")
        check_text(name, "the job name")
        data_text = dump_json(data if data is not None else {}, "job data")
        timestamp = opts.timestamp if opts.timestamp is not None else time.time()
        job = Job(
            id="",
            name=name,
            data=data if data is not None else {},
            opts=opts,
            queue_name=self.name,
            timestamp=timestamp,
            delay=opts.delay,
            priority=opts.priority,
            backend=self.backend,
        )
        new = NewJob(
            name=name,
            data=data_text,
            opts=self._opts_text(opts),
            timestamp=to_ms(timestamp),
            delay=to_ms(opts.delay),
            priority=opts.priority,
            lifo=opts.lifo,
            job_id=opts.job_id,
            dedup=None
            if (d := opts.deduplication) is None
            else (d.id, None if d.ttl is None else to_ms(d.ttl), d.extend, d.replace),
        )
        return new, job

    async def add(
        self, name: str, data: Any = None, *, connection: Any = None, **options: Any
    ) -> Job:
        """Add one job and return it (with its id). Options: see ``JobOptions``.

        Adding a custom ``job_id`` that already exists changes nothing and returns that id.
        On PostgreSQL, ``connection`` (a psycopg connection) writes the job inside that
        connection's open transaction: it exists only if the transaction commits.
        """
        adder = self._transactional(connection)
        new, job = self._prepare(name, data, options)
        if adder is not None:
            job.id = (await adder(connection, [new]))[0]
        else:
            job.id = await self.backend.add(new)
        return job

    def _transactional(self, connection: Any) -> Any:
        """The backend's add-in-your-transaction, when ``connection`` is given."""
        if connection is None:
            return None
        adder = getattr(self.backend, "add_in_transaction", None)
        if adder is None:
            raise NotSupportedError(
                f"connection= (adding inside your own transaction) needs the postgresql:// "
                f"store; the {self.backend.kind!r} store of queue {self.name!r} cannot take "
                "a connection: drop the argument"
            )
        return adder

    async def add_bulk(
        self,
        jobs: Iterable[tuple[str, Any] | tuple[str, Any, Mapping[str, Any]]],
        *,
        connection: Any = None,
    ) -> list[Job]:
        """Add several jobs in one round trip: ``(name, data)`` or ``(name, data, options)``.

        Every job is validated first; if one is invalid, none is added. ``connection``: as
        for :meth:`add` (PostgreSQL; all the jobs are in the caller's transaction).
        """
        adder = self._transactional(connection)
        prepared: list[tuple[NewJob, Job]] = []
        for index, entry in enumerate(jobs):
            if not isinstance(entry, tuple) or len(entry) not in (2, 3):
                raise InvalidJobError(
                    f"add_bulk entry {index} must be (name, data) or (name, data, options), "
                    f"got {entry!r}"
                )
            options = entry[2] if len(entry) == 3 else {}
            if not isinstance(options, Mapping):
                raise InvalidOptionError(f"add_bulk entry {index}: options must be a dict")
            prepared.append(self._prepare(entry[0], entry[1], options))
        if not prepared:
            return []
        news = [new for new, _ in prepared]
        ids = await (adder(connection, news) if adder else self.backend.add_bulk(news))
        for (_, job), job_id in zip(prepared, ids, strict=True):
            job.id = job_id
        return [job for _, job in prepared]

    # -- reading --------------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job | None:
        """The job with this id, or None if there is none; InvalidJobError for an id no
        job can have (one of the queue's own key names, such as ``meta``)."""
        return await self.backend.get_job(check_job_ref(job_id))

    async def get_job_counts(self, *states: str) -> dict[str, int]:
        """How many jobs are in each state (all states when none are named)."""
        wanted = states or DEFAULT_COUNT_STATES
        _check_states(wanted)
        return await self.backend.get_counts(list(wanted))

    async def get_jobs(
        self, states: str | Sequence[str], start: int = 0, end: int = -1, asc: bool = False
    ) -> list[Job]:
        """Jobs in the given state(s), newest first unless ``asc``; ``end`` is inclusive."""
        wanted = [states] if isinstance(states, str) else list(states)
        _check_states(wanted)
        for label, value in (("start", start), ("end", end)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidOptionError(f"{label} must be a whole number, got {value!r}")
        if 0 <= end < start:
            raise InvalidOptionError(
                f"end must be >= start (negative values count from the last), got {start}..{end}"
            )
        if start >= 0 and end >= 0 and end - start >= MAX_PAGE:
            raise InvalidOptionError(
                f"a page holds at most {MAX_PAGE:,} jobs, asked for {end - start + 1:,}; "
                "read it in pages (start/end)"
            )
        found: list[Job] = []
        for state in wanted:
            ids = await self.backend.get_job_ids(state, start, end, asc)
            # Concurrent reads go out in one write on Redis (auto-pipelining).
            jobs = await asyncio.gather(*(self.backend.get_job(job_id) for job_id in ids))
            found.extend(job for job in jobs if job is not None)
        return found

    async def get_waiting(self, start: int = 0, end: int = -1) -> list[Job]:
        """Waiting jobs (also those waiting while the queue is paused), newest first."""
        return await self.get_jobs(["waiting", "paused"], start, end)

    async def get_active(self, start: int = 0, end: int = -1) -> list[Job]:
        """Jobs being processed now."""
        return await self.get_jobs("active", start, end)

    async def get_delayed(self, start: int = 0, end: int = -1) -> list[Job]:
        """Delayed jobs, latest due first."""
        return await self.get_jobs("delayed", start, end)

    async def get_prioritized(self, start: int = 0, end: int = -1) -> list[Job]:
        """Ready jobs that have a priority, last to run first."""
        return await self.get_jobs("prioritized", start, end)

    async def get_completed(self, start: int = 0, end: int = -1) -> list[Job]:
        """Completed jobs, most recently finished first."""
        return await self.get_jobs("completed", start, end)

    async def get_failed(self, start: int = 0, end: int = -1) -> list[Job]:
        """Failed jobs, most recently failed first."""
        return await self.get_jobs("failed", start, end)

    async def count(self) -> int:
        """Jobs still to run: waiting, paused, delayed, prioritized and waiting-children."""
        counts = await self.backend.get_counts(
            ["waiting", "paused", "delayed", "prioritized", "waiting-children"]
        )
        return sum(counts.values())

    async def get_counts_per_priority(self, *priorities: int) -> dict[int, int]:
        """How many ready jobs have each of ``priorities`` (0: jobs without a priority)."""
        for p in priorities:
            if isinstance(p, bool) or not isinstance(p, int) or p < 0:
                raise InvalidOptionError(f"a priority is a whole number >= 0, got {p!r}")
        return await self.backend.get_counts_per_priority(list(priorities))

    async def get_metrics(self, kind: str, start: int = 0, end: int = -1) -> dict[str, Any]:
        """BullMQ's metrics of ``completed`` or ``failed`` jobs (recorded by workers with
        ``metrics={"max_data_points": n}``): ``count`` in all, and ``data``, the jobs
        finished in each minute, newest first."""
        if kind not in ("completed", "failed"):
            raise InvalidOptionError(f"metrics are 'completed' or 'failed', got {kind!r}")
        return await self.backend.get_metrics(kind, start, end)

    async def get_workers(self) -> list[dict[str, str]]:
        """The workers on this queue now (Node BullMQ's and dockyard's on Redis)."""
        return await self.backend.get_workers()

    async def get_job_logs(self, job_id: str, start: int = 0, end: int = -1) -> list[str]:
        """The job's log lines, oldest first."""
        return await self.backend.get_logs(check_job_ref(job_id), start, end)

    # -- job schedulers (logic in schedulers.py) -----------------------------------------

    async def upsert_job_scheduler(
        self,
        scheduler_id: str,
        *,
        every: float | timedelta | None = None,
        pattern: str | None = None,
        tz: str | None = None,
        start: datetime | float | None = None,
        end: datetime | float | None = None,
        limit: int | None = None,
        immediately: bool = False,
        offset: float | timedelta | None = None,
        template: Mapping[str, Any] | None = None,
    ) -> Job:
        """Create or replace the job scheduler ``scheduler_id``; its pending iteration.

        Exactly one of ``every`` (seconds) and ``pattern`` (cron, 5 or 6 fields, seconds
        first, read in ``tz`` or UTC). ``template`` is ``{"name", "data", "opts"}`` with
        opts as ``add`` takes them (no job_id, delay, timestamp or deduplication). Upserting
        again changes the schedule without a double or a missed run. Bad input raises
        InvalidOptionError/InvalidJobError and writes nothing.
        """
        return await _schedulers.upsert(
            self.backend, self.name, self.default_job_options, scheduler_id, every=every,
            pattern=pattern, tz=tz, start=start, end=end, limit=limit,
            immediately=immediately, offset=offset, template=template,
        )  # fmt: skip

    async def get_job_scheduler(self, scheduler_id: str) -> JobScheduler | None:
        """The job scheduler, or None."""
        sid = _schedulers.check_scheduler_ref(scheduler_id)
        info = await _schedulers.scheduler_store(self.backend).get_scheduler(sid)
        return None if info is None else _schedulers.public_scheduler(info)

    async def get_job_schedulers(
        self, start: int = 0, end: int = -1, asc: bool = False
    ) -> list[JobScheduler]:
        """Job schedulers by next run, latest first unless ``asc``; ``end`` inclusive."""
        first, last = _schedulers.page_bounds(start, end)
        store = _schedulers.scheduler_store(self.backend)
        return [_schedulers.public_scheduler(i) for i in await store.get_schedulers(
            first, last, bool(asc))]  # fmt: skip

    async def remove_job_scheduler(self, scheduler_id: str) -> bool:
        """Remove the scheduler and its delayed iteration (an iteration already waiting
        or running still runs once); False if there was no such scheduler."""
        sid = _schedulers.check_scheduler_ref(scheduler_id)
        return await _schedulers.scheduler_store(self.backend).remove_scheduler(sid)

    # -- admin ----------------------------------------------------------------------

    async def pause(self) -> None:
        """Pause the queue: workers (dockyard's and Node's) take no new jobs until resumed."""
        await self.backend.pause()

    async def resume(self) -> None:
        """Resume a paused queue and wake the workers."""
        await self.backend.resume()

    async def is_paused(self) -> bool:
        """True while the queue is paused."""
        return await self.backend.is_paused()

    # -- dead letters -----------------------------------------------------------------

    async def add_dead_letter(self, job: Job, source_queue: str) -> Job:
        """Store a copy of ``job`` (failed for good in ``source_queue``) in this queue, with
        its failure; used by workers for jobs with ``dead_letter_queue``."""
        data = {
            "queue": source_queue,
            "job_id": job.id,
            "name": job.name,
            "data": job.data,
            "opts": job.opts.to_bullmq(),
            "failed_reason": job.failed_reason,
            "stacktrace": job.stacktrace[-1:],
            "attempts_made": job.attempts_made,
            "failed_at": job.finished_on or time.time(),
        }
        return await self.add(job.name, data)

    async def redrive_dead_letters(self, *, count: int | None = None) -> int:
        """Move dead letters waiting in this queue back to their original queues, as new
        jobs with their original name, data and options; how many moved."""
        moved = 0
        while count is None or moved < count:
            page = await self.get_jobs("waiting", 0, min(99, (count or 100) - moved - 1))
            letters = [j for j in page if isinstance(j.data, dict) and "queue" in j.data]
            if not letters:
                return moved
            for letter in letters:
                info = letter.data
                opts = replace(JobOptions.from_bullmq(info.get("opts") or {}), job_id=None,
                               delay=0.0, timestamp=None)  # fmt: skip
                target = Queue(info["queue"], prefix=self.prefix,
                               backend=self.backend.sibling(info["queue"]))  # fmt: skip
                try:
                    new, _ = target._prepare_with(info.get("name") or letter.name,
                                                    info.get("data"), opts)  # fmt: skip
                    await target.backend.add(new)
                finally:
                    await target.close()
                await self.remove(letter.id)
                moved += 1
        return moved

    async def set_global_concurrency(self, concurrency: int | None) -> None:
        """At most ``concurrency`` jobs of this queue run at once across every worker
        (Node's too); None removes the limit."""
        if concurrency is not None and (
            isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
        ):
            raise InvalidOptionError(
                f"concurrency must be a whole number >= 1, got {concurrency!r}"
            )
        await self.backend.set_limits({"concurrency": concurrency})

    async def set_global_rate_limit(self, max_jobs: int | None, duration: float = 1.0) -> None:
        """At most ``max_jobs`` jobs start per ``duration`` seconds across every worker
        (Node's too, kept in the store); None removes the limit."""
        if max_jobs is None:
            await self.backend.set_limits({"max": None, "duration": None})
            return
        if isinstance(max_jobs, bool) or not isinstance(max_jobs, int) or max_jobs < 1:
            raise InvalidOptionError(f"max_jobs must be a whole number >= 1, got {max_jobs!r}")
        window = to_ms(to_seconds(duration, "duration", allow_zero=False))
        await self.backend.set_limits({"max": max_jobs, "duration": window})

    async def set_max_events(self, max_events: int) -> None:
        """Keep about ``max_events`` entries in the queue's events stream (BullMQ's
        ``maxLenEvents``; 10,000 by default)."""
        if isinstance(max_events, bool) or not isinstance(max_events, int) or max_events < 1:
            raise InvalidOptionError(f"max_events must be a whole number >= 1, got {max_events!r}")
        await self.backend.set_limits({"max_events": max_events})

    async def get_global_limits(self) -> dict[str, float]:
        """The limits set: ``concurrency``, ``max`` (jobs) and ``duration`` (seconds)."""
        limits = await self.backend.get_limits()
        out: dict[str, float] = {k: v for k, v in limits.items() if k in ("concurrency", "max")}
        if "duration" in limits:
            out["duration"] = limits["duration"] / 1000
        return out

    async def remove(self, job_id: str) -> bool:
        """Delete a job and its logs; False if there was none. Refused with JobLockedError
        while a worker runs it, with PendingChildrenError while it is a parent with
        children pending (remove them first, or let them finish), and with JobStateError
        for a job scheduler's current iteration (remove the scheduler instead)."""
        code = await self.backend.remove(check_job_ref(job_id))
        if code == 0:
            raise JobLockedError(
                f"job {job_id} is being processed (a worker holds its lock); remove it after "
                "it finishes"
            )
        if code == ScriptCode.PENDING_DEPENDENCIES:
            raise pending_children_error(job_id)
        if code == ScriptCode.SCHEDULER_JOB:
            raise scheduler_job_error(job_id)
        return code == 1

    async def retry_job(self, job_id: str, *, reset_attempts: bool = False) -> None:
        """Run a failed (or completed) job again; see :meth:`Job.retry`."""
        job = await self.get_job(job_id)
        if job is None:
            raise JobNotFoundError(f"job {job_id} does not exist in queue {self.name!r}")
        state = await job.get_state()
        if state not in ("failed", "completed"):
            raise JobStateError(
                f"job {job_id} is {state}; only failed or completed jobs can be retried"
            )
        await job.retry(state, reset_attempts=reset_attempts)

    async def retry_jobs(
        self, *, state: str = "failed", count: int | None = None, before: float | None = None
    ) -> int:
        """Move failed (or completed) jobs back to waiting, at most ``count``, only those
        finished before ``before`` (epoch seconds) if given; how many moved."""
        if state not in ("failed", "completed"):
            raise InvalidOptionError(f"retry_jobs takes 'failed' or 'completed', got {state!r}")
        return await self._move_to_wait(state, count, before)

    async def promote_jobs(self, *, count: int | None = None) -> int:
        """Run delayed jobs now, at most ``count``; how many moved."""
        return await self._move_to_wait("delayed", count, None)

    async def _move_to_wait(self, state: str, count: int | None, before: float | None) -> int:
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or count < 1
        ):
            raise InvalidOptionError(f"count must be a whole number >= 1 or None, got {count!r}")
        if before is not None:
            to_epoch(before, "before")
        before_ms = to_ms(before) if before is not None else 2**53 // 4096 - 1
        return await self.backend.move_jobs_to_wait(state, count or 2**31, before_ms)

    async def drain(self, *, delayed: bool = False) -> int:
        """Delete every job waiting to run (and delayed ones if ``delayed``); active,
        completed and failed jobs stay. Returns how many were deleted."""
        return await self.backend.drain(bool(delayed))

    async def clean(self, grace: float, limit: int = 0, state: str = "completed") -> list[str]:
        """Delete jobs of ``state`` older than ``grace`` seconds (at most ``limit``; 0 = no
        limit); active jobs only when no worker holds them. Returns the ids deleted."""
        seconds = to_seconds(grace, "grace", most=MAX_EPOCH)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidOptionError(f"limit must be a whole number >= 0, got {limit!r}")
        if state not in CLEAN_STATES:
            raise InvalidOptionError(f"clean works on {', '.join(CLEAN_STATES)}; got {state!r}")
        before_ms = to_ms(time.time() - seconds)
        return await self.backend.clean(state, before_ms, limit)

    async def obliterate(self, *, force: bool = False) -> None:
        """Delete the queue with every job and key. Pause it first; with active jobs it is
        refused unless ``force``."""
        code = await self.backend.obliterate(bool(force))
        if code == -1:
            raise JobStateError(
                f"queue {self.name!r} must be paused before it is obliterated; call pause() first"
            )
        if code == -2:
            raise JobStateError(
                f"queue {self.name!r} has active jobs; wait for them to finish or obliterate "
                "with force=True"
            )


def _check_states(states: Iterable[str]) -> None:
    for state in states:
        if state not in STATES and state != "wait":
            raise InvalidOptionError(f"unknown job state {state!r}; use one of {', '.join(STATES)}")
