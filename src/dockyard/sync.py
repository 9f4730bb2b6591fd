"""Blocking twins of :class:`dockyard.Queue` and :class:`dockyard.QueueEvents`, for Django,
Flask, scripts and threads: no event loop of yours is needed.

Every blocking object runs its coroutines on one event loop in a daemon thread that this
module starts on first use and shares; calls are safe from any thread at once::

    from dockyard.sync import Queue

    queue = Queue("emails", url="redis://localhost:6379/0")
    job = queue.add("send", {"to": "a@b.c"})
    print(queue.wait_until_finished(job.id, timeout=10))
    queue.close()

Jobs returned are plain :class:`dockyard.Job` objects: read their fields; for what would
be awaited on a Job, use the Queue's blocking method of the same name with the job's id.

Forking is safe (``gunicorn --preload``, multiprocessing): a forked child has no loop
thread, so on first use it starts its own, and every object opens new connections there;
the parent's loop and connections are left alone (field report #9).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from types import TracebackType
from typing import Any, TypeVar

from . import events as _events
from . import queue as _queue
from .backends import open_backend
from .job import Job
from .schedulers import JobScheduler

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()
_pid = os.getpid()
#: What a forked child inherited and must never touch (the parent's loop and connections
#: share file descriptors with it); kept referenced so no finaliser closes any of it.
_inherited: list[object] = []


def _forget_parent() -> None:
    """In a forked child: drop the parent's loop (its thread did not survive the fork) and
    its lock (another thread may have held it at the fork)."""
    global _loop, _lock, _pid
    if _loop is not None:
        _inherited.append(_loop)
    _loop = None
    _lock = threading.Lock()
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forget_parent)


def _shared_loop() -> asyncio.AbstractEventLoop:
    """The module's event loop, running in a daemon thread (started once per process)."""
    global _loop
    if _pid != os.getpid():  # forked without the at-fork hook (e.g. a C extension's fork)
        _forget_parent()
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="dockyard-sync", daemon=True)
            thread.start()
            _loop = loop
        return _loop


def _call(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    loop = _shared_loop()
    if threading.current_thread().name == "dockyard-sync":
        coro.close()
        raise RuntimeError("dockyard.sync cannot be called from its own event loop thread")
    future: Future[T] = asyncio.run_coroutine_threadsafe(coro, loop)
    return future.result(timeout)


class Queue:
    """The blocking twin of :class:`dockyard.Queue` (same arguments, same errors)."""

    def __init__(
        self,
        name: str,
        *,
        url: str | None = None,
        prefix: str = "bull",
        default_job_options: Mapping[str, Any] | None = None,
    ) -> None:
        async def make() -> _queue.Queue:
            return _queue.Queue(
                name,
                prefix=prefix,
                default_job_options=default_job_options,
                backend=open_backend(url, name, prefix=prefix),
            )

        self._make = make
        self._inner = _call(make())
        self._pid = os.getpid()
        self.name = name

    @property
    def _q(self) -> _queue.Queue:
        """The async Queue of this process: after a fork, a new one on new connections."""
        if self._pid != os.getpid():
            _inherited.append(self._inner)
            self._inner = _call(self._make())
            self._pid = os.getpid()
        return self._inner

    def __repr__(self) -> str:
        return f"<sync.Queue {self.name!r}>"

    def __enter__(self) -> Queue:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the queue's connections."""
        _call(self._q.close())

    # -- producing ------------------------------------------------------------------------

    def add(self, name: str, data: Any = None, *, connection: Any = None, **options: Any) -> Job:
        """Add one job; see :meth:`dockyard.Queue.add` (``connection``: a psycopg sync
        connection, whose open transaction the job is written in)."""
        return _call(self._q.add(name, data, connection=connection, **options))

    def add_bulk(
        self,
        jobs: Iterable[tuple[str, Any] | tuple[str, Any, Mapping[str, Any]]],
        *,
        connection: Any = None,
    ) -> list[Job]:
        """Add several jobs in one round trip (``connection``: as for :meth:`add`)."""
        return _call(self._q.add_bulk(list(jobs), connection=connection))

    # -- reading --------------------------------------------------------------------------

    def get_job(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        return _call(self._q.get_job(job_id))

    def get_state(self, job_id: str) -> str:
        """A job's state (``unknown`` when there is none)."""
        return _call(self._q.backend.get_state(str(job_id)))

    def get_job_counts(self, *states: str) -> dict[str, int]:
        """How many jobs are in each state."""
        return _call(self._q.get_job_counts(*states))

    def get_jobs(
        self, states: str | Sequence[str], start: int = 0, end: int = -1, asc: bool = False
    ) -> list[Job]:
        """Jobs in the given state(s), a page at a time."""
        return _call(self._q.get_jobs(states, start, end, asc))

    def get_job_logs(self, job_id: str, start: int = 0, end: int = -1) -> list[str]:
        """A job's log lines."""
        return _call(self._q.get_job_logs(job_id, start, end))

    def count(self) -> int:
        """Jobs still to run."""
        return _call(self._q.count())

    def is_paused(self) -> bool:
        """True while the queue is paused."""
        return _call(self._q.is_paused())

    def wait_until_finished(self, job_id: str, timeout: float | None = None) -> Any:
        """Block until the job completes (its return value) or fails (``JobFailed``)."""

        async def wait() -> Any:
            job = Job(id=str(job_id), name="", queue_name=self.name, backend=self._q.backend)
            return await job.wait_until_finished(timeout)

        return _call(wait())

    # -- job schedulers -------------------------------------------------------------------

    def upsert_job_scheduler(self, scheduler_id: str, **options: Any) -> Job:
        """Create or replace a job scheduler; see :meth:`dockyard.Queue.upsert_job_scheduler`."""
        return _call(self._q.upsert_job_scheduler(scheduler_id, **options))

    def get_job_scheduler(self, scheduler_id: str) -> JobScheduler | None:
        """The job scheduler, or None."""
        return _call(self._q.get_job_scheduler(scheduler_id))

    def get_job_schedulers(
        self, start: int = 0, end: int = -1, asc: bool = False
    ) -> list[JobScheduler]:
        """Job schedulers by next run."""
        return _call(self._q.get_job_schedulers(start, end, asc))

    def remove_job_scheduler(self, scheduler_id: str) -> bool:
        """Remove a job scheduler; False if there was none."""
        return _call(self._q.remove_job_scheduler(scheduler_id))

    # -- admin ----------------------------------------------------------------------------

    def pause(self) -> None:
        """Workers take no new jobs until resumed."""
        _call(self._q.pause())

    def resume(self) -> None:
        """Workers take jobs again."""
        _call(self._q.resume())

    def remove(self, job_id: str) -> bool:
        """Delete a job (JobLockedError while a worker runs it)."""
        return _call(self._q.remove(job_id))

    def retry_job(self, job_id: str, *, reset_attempts: bool = False) -> None:
        """Run a failed or completed job again."""
        _call(self._q.retry_job(job_id, reset_attempts=reset_attempts))

    def retry_jobs(self, *, state: str = "failed", count: int | None = None) -> int:
        """Move failed (or completed) jobs back to waiting; how many."""
        return _call(self._q.retry_jobs(state=state, count=count))

    def promote_jobs(self, *, count: int | None = None) -> int:
        """Run delayed jobs now; how many."""
        return _call(self._q.promote_jobs(count=count))

    def drain(self, *, delayed: bool = False) -> int:
        """Delete every job waiting to run; how many."""
        return _call(self._q.drain(delayed=delayed))

    def clean(self, grace: float, limit: int = 0, state: str = "completed") -> list[str]:
        """Delete jobs of a state older than ``grace`` seconds; their ids."""
        return _call(self._q.clean(grace, limit, state))

    def obliterate(self, *, force: bool = False) -> None:
        """Delete the (paused) queue and all its jobs."""
        _call(self._q.obliterate(force=force))


class QueueEvents:
    """The blocking twin of :class:`dockyard.QueueEvents`: iterate to wait for events."""

    def __init__(
        self, queue: str, *, url: str | None = None, prefix: str = "bull", last_id: str = "$"
    ) -> None:
        async def make() -> _events.QueueEvents:
            events = _events.QueueEvents(queue, url=url, prefix=prefix, last_id=last_id)
            await events.__aenter__()
            return events

        self._make = make
        self._inner = _call(make())
        self._pid = os.getpid()

    @property
    def _reader(self) -> _events.QueueEvents:
        """The reader of this process: after a fork, a new one on new connections."""
        if self._pid != os.getpid():
            _inherited.append(self._inner)
            self._inner = _call(self._make())
            self._pid = os.getpid()
        return self._inner

    def __iter__(self) -> Iterator[_events.QueueEvent]:
        while True:
            event = self.next(timeout=None)
            if event is None:
                return
            yield event

    def next(self, timeout: float | None = None) -> _events.QueueEvent | None:
        """The next event, or None after ``timeout`` seconds (or once closed)."""
        return _call(self._reader.next(timeout))

    def close(self) -> None:
        """Stop reading."""
        _call(self._reader.close())

    def __enter__(self) -> QueueEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
