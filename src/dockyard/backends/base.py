"""The Backend protocol: every state transition and query, one method each.

``Queue`` and ``Worker`` talk to storage only through this protocol, so a backend is
chosen by URL and nothing above it knows which one it is. A backend instance serves one
queue (its name and prefix are fixed at creation). Times crossing this boundary are
integer milliseconds since the epoch, as the stores keep them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..job import Job
from ..options import KeepJobs

#: Every state name a job can be in, as ``get_state`` answers them.
STATES = (
    "waiting",
    "active",
    "delayed",
    "prioritized",
    "completed",
    "failed",
    "paused",
    "waiting-children",
)


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job about to be added: its name, JSON data text, options and creation time (ms)."""

    name: str
    data: str
    opts: str
    timestamp: int
    delay: int
    priority: int
    lifo: bool
    job_id: str | None
    #: Deduplication: (id, ttl ms or None, extend, replace), or None.
    dedup: tuple[str, int | None, bool, bool] | None = None


@dataclass(frozen=True, slots=True)
class Lease:
    """How a worker takes jobs: the lock token, its duration (ms) and the worker's name."""

    token: str
    lock_ms: int
    worker_name: str | None = None
    #: The worker's own rate limit: at most ``limit_max`` jobs per ``limit_ms`` (None = none).
    limit_max: int | None = None
    limit_ms: int | None = None


@dataclass(slots=True)
class Fetched:
    """What a fetch gave: jobs (locked with the lease's token) and when to look again.

    ``rate_limit_ms`` > 0: the queue is rate limited for that long. ``next_delayed_ms`` > 0:
    the earliest delayed job is due at that time.
    """

    jobs: list[Job] = field(default_factory=list)
    rate_limit_ms: int = 0
    next_delayed_ms: int = 0


@dataclass(frozen=True, slots=True)
class Finish:
    """How one attempt ended, for ``Backend.finish``.

    ``outcome`` is ``completed``, ``failed``, ``retry`` (back to wait), ``delayed``
    (retry after ``delay_ms``) or ``release`` (back to the front of wait untouched: no
    attempt counted, as for a rate-limited job or a worker shutting down).
    ``value`` is the JSON return value or the failure reason. ``count_attempt=False`` on
    ``delayed`` leaves ``attempts_made`` as it is (a handler that delays its own job).
    """

    job_id: str
    token: str
    outcome: str
    value: str
    keep: KeepJobs | None = None
    attempts: int = 1
    delay_ms: int = 0
    lifo: bool = False
    stacktrace: str | None = None
    count_attempt: bool = True
    #: Record BullMQ's per-minute metrics of completed/failed jobs, keeping this many
    #: data points (0 = do not record).
    metrics: int = 0

    @property
    def keep_count(self) -> int:
        """Finished jobs to keep by count, as the stores take it (-1 = keep all)."""
        keep = self.keep
        return -1 if keep is None or keep.count is None else keep.count

    @property
    def keep_age(self) -> float:
        """Finished jobs to keep by age in seconds (0 = no age limit)."""
        keep = self.keep
        return 0.0 if keep is None or keep.age is None else keep.age


class Backend(Protocol):
    """Storage of one queue; each method is one atomic transition or one query."""

    kind: str
    queue: str

    async def close(self) -> None:
        """Release connections and files; the backend is unusable afterwards."""

    def reopen(self) -> Backend:
        """A new, unconnected instance on the same store and queue, for another thread."""

    def sibling(self, queue: str) -> Backend:
        """A new, unconnected instance on the same store for another queue."""

    # -- producers --------------------------------------------------------------------

    async def add(self, job: NewJob) -> str:
        """Store and enqueue one job; returns its id (the existing id for a duplicate job_id)."""

    async def add_bulk(self, jobs: Sequence[NewJob]) -> list[str]:
        """Store and enqueue several jobs at once; returns their ids in order."""

    # -- reads ------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job | None:
        """The job with that id, or None."""

    async def get_state(self, job_id: str) -> str:
        """One of STATES, or ``unknown`` for a job that does not exist."""

    async def get_counts(self, states: Sequence[str]) -> dict[str, int]:
        """How many jobs are in each of ``states``."""

    async def get_job_ids(self, state: str, start: int, end: int, asc: bool) -> list[str]:
        """Ids in one state, newest first unless ``asc``; ``end`` inclusive, -1 = last."""

    async def get_logs(self, job_id: str, start: int, end: int) -> list[str]:
        """Lines of a job's log, oldest first; ``end`` inclusive, -1 = last."""

    async def is_paused(self) -> bool:
        """True while the queue is paused."""

    # -- job updates ------------------------------------------------------------------

    async def update_progress(self, job_id: str, progress: str) -> None:
        """Store a job's progress (JSON text) and emit ``progress``."""

    async def add_log(self, job_id: str, line: str, keep: int | None) -> int:
        """Append a log line, keeping the last ``keep`` lines; returns the log's length."""

    # -- admin ------------------------------------------------------------------------

    async def pause(self) -> None:
        """Stop workers from taking jobs; active jobs finish."""

    async def resume(self) -> None:
        """Let workers take jobs again."""

    async def remove(self, job_id: str) -> int:
        """Delete a job and its logs, wherever it is; emits ``removed``.

        Returns 1 removed, 0 refused because a worker holds its lock, -1 no such job,
        -4 refused because it is a parent with children pending."""

    async def reprocess(self, job_id: str, state: str, lifo: bool, reset_attempts: bool) -> int:
        """Move a ``completed`` or ``failed`` job back to wait; 1, or -1 missing, -3 not there."""

    async def promote(self, job_id: str) -> int:
        """Make a delayed job ready now; 0, or -1 missing, -3 not delayed."""

    async def move_jobs_to_wait(self, state: str, count: int, before_ms: int) -> int:
        """Move up to ``count`` jobs of ``failed``/``completed``/``delayed`` (finished, or due,
        at or before ``before_ms``) back to wait; how many moved."""

    async def drain(self, delayed: bool) -> int:
        """Delete every waiting, paused and prioritized job (and delayed ones if asked)."""

    async def clean(self, state: str, before_ms: int, limit: int) -> list[str]:
        """Delete jobs of one state older than ``before_ms`` (at most ``limit``, 0 = all);
        emits ``cleaned``; returns their ids."""

    async def obliterate(self, force: bool) -> int:
        """Delete the queue and all its jobs: 0, or -1 not paused, -2 active jobs and no
        ``force`` (nothing deleted then)."""

    async def change_priority(self, job_id: str, priority: int, lifo: bool) -> int:
        """Set a job's priority, moving it if it is ready; 0, or -1 missing."""

    async def change_delay(self, job_id: str, delay_ms: int) -> int:
        """Make a delayed job due ``delay_ms`` from now; 0, or -1 missing, -3 not delayed."""

    async def update_data(self, job_id: str, data: str) -> int:
        """Replace a job's data (JSON text); 0, or -1 missing."""

    async def get_counts_per_priority(self, priorities: Sequence[int]) -> dict[int, int]:
        """How many ready jobs have each priority (0: the plain wait list)."""

    async def set_limits(self, limits: Mapping[str, int | None]) -> None:
        """Set (or with None, remove) the queue's global ``concurrency``, rate limit ``max``
        jobs per ``duration`` ms, and ``max_events`` (the events stream's cap), as BullMQ
        keeps them in the queue's meta."""

    async def get_limits(self) -> dict[str, int]:
        """The queue's global limits that are set: ``concurrency``, ``max``, ``duration``."""

    async def get_metrics(self, kind: str, start: int, end: int) -> dict[str, Any]:
        """BullMQ's metrics of ``completed`` or ``failed`` jobs: ``count`` (total),
        ``prev_ts``, ``prev_count`` and ``data`` (jobs per minute, newest first)."""

    async def get_workers(self) -> list[dict[str, str]]:
        """The workers connected to this queue now, one dict each (``worker_name`` at least)."""

    # -- events -----------------------------------------------------------------------

    async def read_events(
        self, last_id: str = "$", count: int = 1000, timeout: float | None = 0.0
    ) -> list[tuple[str, dict[str, str]]]:
        """Events after ``last_id`` (``$``: only new ones, ``0``: all kept), oldest first, as
        ``(id, {"event": name, **fields})`` with BullMQ's field names; waits up to
        ``timeout`` s (None: forever) when there are none yet."""

    # -- workers ----------------------------------------------------------------------

    async def fetch(self, lease: Lease, count: int) -> Fetched:
        """Move up to ``count`` ready jobs to active, locked by the lease; promote due delays."""

    async def wait_for_work(self, timeout: float, worker_name: str | None) -> float | None:
        """Block until a job may be ready or ``timeout`` s pass; a due time (ms) if told one.

        Returns early (with None) when :meth:`interrupt_wait` is called.
        """

    async def interrupt_wait(self) -> None:
        """Wake a pending :meth:`wait_for_work` (used on close)."""

    async def finish(
        self, result: Finish, next_lease: Lease | None, count: int = 1
    ) -> Fetched | None:
        """End an attempt (completed, failed, retry or delayed), release its lock, and
        when ``next_lease`` is given fetch up to ``count`` next jobs in the same call."""

    async def extend_locks(self, locks: Mapping[str, str], lock_ms: int) -> list[str]:
        """Renew the locks ``{job_id: token}``; returns the ids whose lock was lost."""

    async def locked_with(self, tokens: Collection[str]) -> dict[str, str]:
        """``{job_id: token}`` of the active jobs locked with one of ``tokens``: the lock
        keeper finds with it the jobs a fetch handed over before the worker read the reply."""

    async def check_stalled(self, max_stalled_count: int, interval_ms: int) -> list[str]:
        """Requeue jobs whose lock expired (at most once per interval per queue); their ids."""

    async def wait_finished(self, job_id: str, timeout: float | None) -> tuple[str, Any]:
        """Wait until the job is completed or failed: (state, return value or reason)."""
