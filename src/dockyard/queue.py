"""Queue: add jobs, read them back, and pause or resume the queue."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from .backends import Backend, open_backend
from .backends.base import STATES, NewJob
from .errors import InvalidJobError, InvalidOptionError
from .job import Job, dump_json
from .options import JobOptions, build_options, to_ms

#: Counts ``get_job_counts()`` reports when no states are named: every state.
DEFAULT_COUNT_STATES = STATES


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

    def _prepare(self, name: str, data: Any, options: Mapping[str, Any]) -> tuple[NewJob, Job]:
        if not isinstance(name, str) or not name:
            raise InvalidJobError(f"a job name must be a non-empty string, got {name!r}")
        opts = build_options(self.default_job_options, **options)
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
            opts=dump_json(opts.to_bullmq(), "job options"),
            timestamp=to_ms(timestamp),
            delay=to_ms(opts.delay),
            priority=opts.priority,
            lifo=opts.lifo,
            job_id=opts.job_id,
        )
        return new, job

    async def add(self, name: str, data: Any = None, **options: Any) -> Job:
        """Add one job and return it (with its id). Options: see ``JobOptions``.

        Adding a custom ``job_id`` that already exists changes nothing and returns that id.
        """
        new, job = self._prepare(name, data, options)
        job.id = await self.backend.add(new)
        return job

    async def add_bulk(
        self, jobs: Iterable[tuple[str, Any] | tuple[str, Any, Mapping[str, Any]]]
    ) -> list[Job]:
        """Add several jobs in one round trip: ``(name, data)`` or ``(name, data, options)``.

        Every job is validated first; if one is invalid, none is added.
        """
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
        ids = await self.backend.add_bulk([new for new, _ in prepared])
        for (_, job), job_id in zip(prepared, ids, strict=True):
            job.id = job_id
        return [job for _, job in prepared]

    # -- reading --------------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job | None:
        """The job with this id, or None if there is none."""
        return await self.backend.get_job(str(job_id))

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
        found: list[Job] = []
        for state in wanted:
            for job_id in await self.backend.get_job_ids(state, start, end, asc):
                job = await self.backend.get_job(job_id)
                if job is not None:
                    found.append(job)
        return found

    async def get_job_logs(self, job_id: str, start: int = 0, end: int = -1) -> list[str]:
        """The job's log lines, oldest first."""
        return await self.backend.get_logs(str(job_id), start, end)

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


def _check_states(states: Iterable[str]) -> None:
    for state in states:
        if state not in STATES and state != "wait":
            raise InvalidOptionError(f"unknown job state {state!r}; use one of {', '.join(STATES)}")
