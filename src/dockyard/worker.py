"""Worker: takes jobs from a queue and runs them under a lock.

A worker is a few named tasks under one supervisor:

- ``slot`` x concurrency: run a job, finish it (``_outcomes.py``), and take the next one
  from the same script call (fetch-next) when there is one;
- ``fetch``: fills idle slots (several jobs per call) and otherwise blocks on the queue's
  marker until a job is ready or a delayed job is due;
- ``LockKeeper`` (its own thread and connection): renews the locks of all held jobs in
  one call every ``lock_duration / 2``, even while a handler blocks the event loop. A job
  is held from the moment the store locks it: a fetch in flight is known by its lease
  token until its jobs are registered in ``_held``, in the step that reads the reply;
- ``stalled``: requeues jobs whose worker died (BullMQ's two-pass stalled check).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any

from ._keeper import LockKeeper
from ._outcomes import Finisher, dead_letter, release, store_outcome
from ._runner import Runner
from ._settings import WorkerSettings as WorkerSettings  # re-exported: its old home
from ._settings import limiter_of, metrics_points
from ._storecheck import startup_warnings
from .backends import Backend, open_backend
from .backends.base import Fetched, Lease
from .durations import to_ms, to_seconds
from .errors import BackendRefusedError
from .job import Job
from .options import KeepJobs

log = logging.getLogger("dockyard.worker")

Handler = Callable[[Job], Awaitable[Any]] | Callable[[Job], Any]
BackoffStrategy = Callable[[int, BaseException, Job], float | None]


class Worker:
    """Runs ``handler`` for every job of queue ``queue``.

    ``handler`` is a callable taking a :class:`Job` (``async def`` runs on the event loop,
    a plain ``def`` on the worker's own threads, at most ``concurrency`` of them) or a
    mapping from job name to such callables.
    ``await worker.run()`` works until :meth:`close` or SIGTERM/SIGINT (graceful: active
    jobs finish; a second signal stops at once and puts active jobs back to wait).
    ``async with Worker(...)`` runs it in the background and closes it on exit.
    ``log_jobs=True`` logs one INFO line per finished job (logger ``dockyard.worker``);
    ``max_jobs=N`` closes the worker after N jobs (a supervisor then starts a fresh one).
    ``isolate=True`` runs each job in a child process (see dockyard.isolate): the handler
    must be importable by name (a module-level function, or a "module:function" string).
    ``metrics={"max_data_points": n}`` records BullMQ's per-minute counts of finished jobs
    (read them with ``Queue.get_metrics``; Node dashboards read them too).
    ``limiter={"max": n, "duration": s}``: at most n jobs start per s seconds, counted in
    the store across the workers that use the same limiter (BullMQ's worker limiter).
    """

    def __init__(
        self,
        queue: str,
        handler: Handler | str | Mapping[str, Handler | str],
        *,
        url: str | None = None,
        prefix: str = "bull",
        concurrency: int = 1,
        lock_duration: float = 30.0,
        stalled_interval: float = 30.0,
        max_stalled_count: int = 1,
        drain_delay: float = 5.0,
        name: str | None = None,
        remove_on_complete: bool | int | Mapping[str, Any] | None = None,
        remove_on_fail: bool | int | Mapping[str, Any] | None = None,
        backoff_strategies: Mapping[str, BackoffStrategy] | None = None,
        log_jobs: bool = False,
        max_jobs: int | None = None,
        limiter: Mapping[str, float] | None = None,
        metrics: Mapping[str, int] | None = None,
        isolate: bool = False,
        backend: Backend | None = None,
    ) -> None:
        self.settings = WorkerSettings(
            concurrency=concurrency,
            lock_duration=to_seconds(lock_duration, "lock_duration", allow_zero=False),
            stalled_interval=to_seconds(stalled_interval, "stalled_interval", allow_zero=False),
            max_stalled_count=max_stalled_count,
            drain_delay=to_seconds(drain_delay, "drain_delay", allow_zero=False),
            name=name,
            remove_on_complete=None
            if remove_on_complete is None
            else KeepJobs.coerce(remove_on_complete, "remove_on_complete"),
            remove_on_fail=None
            if remove_on_fail is None
            else KeepJobs.coerce(remove_on_fail, "remove_on_fail"),
            metrics=metrics_points(metrics),
        )
        self.queue = queue
        self.prefix = prefix
        self.id = uuid.uuid4().hex
        self.backend = (
            backend
            if backend is not None
            else open_backend(url, queue, prefix=prefix, retry_for=None)
        )
        self._runner = Runner(handler, backoff_strategies or {}, self.settings, isolate=isolate)
        self._keeper = LockKeeper(
            self.backend.reopen,
            self._held_locks,
            to_ms(self.settings.lock_duration),
            self.settings.lock_duration / 2,
            self._pending_tokens,
        )
        self._finisher = Finisher(self.backend, self._hold)
        self._tokens = 0
        self._lock_ms = to_ms(self.settings.lock_duration)
        self._active: dict[str, Job] = {}
        #: Every job this worker holds (fetched, ready or running) until its outcome is sent.
        self._held: dict[str, Job] = {}
        #: Lease tokens of fetches in flight: their jobs may be locked but not yet in _held.
        self._pending: set[str] = set()
        self._ready: deque[Job] = deque()
        self._idle: deque[asyncio.Future[Job | None]] = deque()
        self._want = asyncio.Event()
        self._closing = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._slots: list[asyncio.Task[None]] = []
        self._running = False
        self._signals = 0
        self._limit_until = 0.0
        self._limiter = limiter_of(limiter)
        self._max_jobs = max_jobs
        self._close_pending = False
        self._refusal: BackendRefusedError | None = None
        self._log_jobs = log.isEnabledFor(logging.INFO) and log_jobs
        self.processed = 0

    def __repr__(self) -> str:
        return f"<Worker {self.queue!r} id={self.id[:8]} active={len(self._active)}>"

    # -- life cycle -----------------------------------------------------------------

    async def __aenter__(self) -> Worker:
        self._background = asyncio.create_task(self.run(handle_signals=False), name="worker")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._background

    async def run(self, *, handle_signals: bool = True) -> None:
        """Work until :meth:`close` is called (or SIGTERM/SIGINT when ``handle_signals``)."""
        if self._running:
            raise RuntimeError("this worker is already running")
        self._running = True
        loop = asyncio.get_running_loop()
        installed = handle_signals and threading.current_thread() is threading.main_thread()
        if installed:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            ensure = getattr(self.backend, "ensure_worker_connection", None)
            if ensure is not None and not await self._until_closed(ensure(self.settings.name)):
                return
            for warning in await startup_warnings(self.backend):
                log.warning("%s", warning)  # once per start: a store setting can lose jobs
            self._slots = [
                asyncio.create_task(self._slot(), name=f"slot-{i}")
                for i in range(self.settings.concurrency)
            ]
            self._keeper.start()
            self._tasks = [
                asyncio.create_task(self._fetch_loop(), name="fetch"),
                asyncio.create_task(self._heartbeat(), name="heartbeat"),
                asyncio.create_task(self._stalled_loop(), name="stalled"),
            ]
            await asyncio.gather(*self._slots, return_exceptions=True)
            if self._refusal is not None:
                raise self._refusal
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            # Jobs fetched as the slots were closing never started: back to wait with them.
            unstarted = [job for job in self._held.values() if job.token is not None]
            await release(self.backend, unstarted, held=self._held)
            self._held.clear()
            await asyncio.to_thread(self._keeper.stop)
            await self._runner.close()
            if installed:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            await self.backend.close()
            self._running = False

    async def _until_closed(self, connecting: Awaitable[None]) -> bool:
        """Await ``connecting`` unless close is asked first (a worker started while its store
        is down must still stop on a signal: field report #7); True once connected."""
        connect = asyncio.ensure_future(connecting)
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({connect, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            if not connect.done():
                connect.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await connect
        if connect.cancelled():
            log.info("stopped before the store could be reached")
            return False
        connect.result()
        return True

    def _on_signal(self, sig: signal.Signals) -> None:
        self.on_stop_signal(sig)

    def on_stop_signal(self, sig: signal.Signals, *, force: bool | None = None) -> None:
        """React to a stop signal: the first lets active jobs finish, a second stops at once
        (``force`` True or False decides instead of counting; supervised children use it)."""
        self._signals += 1
        if force is None:
            force = self._signals > 1
        if not force:
            log.info("%s received: finishing %d active job(s)", sig.name, len(self._active))
            asyncio.get_running_loop().create_task(self.close())
        else:
            log.warning(
                "%s received%s: stopping now; %d active job(s) go back to wait",
                sig.name,
                " again" if self._signals > 1 else "",
                len(self._held),
            )
            asyncio.get_running_loop().create_task(self.close(force=True))

    async def close(self, *, force: bool = False) -> None:
        """Stop taking jobs, let active ones finish (or abandon them if ``force``), then stop."""
        if self._closing.is_set() and not force and not self._close_pending:
            return
        self._begin_close()
        self._close_pending = False
        with contextlib.suppress(Exception):
            await self.backend.interrupt_wait()
        if force:
            abandoned = [job for job in self._held.values() if job.token is not None]
            for task in self._slots:
                task.cancel()
            await release(self.backend, abandoned, held=self._held)

    def _begin_close(self) -> None:
        """The synchronous half of close: take no more jobs, free idle slots."""
        if not self._closing.is_set():
            self._close_pending = True
        self._closing.set()
        self._want.set()
        while self._idle:
            fut = self._idle.popleft()
            if not fut.done():
                fut.set_result(None)

    def _refused(self, exc: BackendRefusedError) -> None:
        """A refusal that will not heal (a missing ACL permission, a login, a certificate):
        log it once and stop as close() does; run() then raises it (README: Production Redis)."""
        if self._refusal is None:
            self._refusal = exc
            log.error("the store refuses this worker, stopping (retrying cannot help): %s", exc)
            self._begin_close()
            asyncio.get_running_loop().create_task(self.close())

    async def rate_limit(self, seconds: float) -> None:
        """Take no new jobs for ``seconds`` (a limit found by a handler, e.g. an HTTP 429);
        raise ``RateLimitError`` from the handler to put its job back untouched."""
        seconds = to_seconds(seconds, "rate_limit")
        self._limit_until = max(self._limit_until, time.monotonic() + seconds)

    def _limited(self) -> bool:
        return self._limit_until > time.monotonic()

    @property
    def closing(self) -> bool:
        """True once close was asked."""
        return self._closing.is_set()

    # -- slots ----------------------------------------------------------------------

    def _lease(self) -> Lease:
        self._tokens += 1
        limit_max, limit_ms = self._limiter
        return Lease(
            f"{self.id}:{self._tokens}",
            self._lock_ms,
            self.settings.name,
            limit_max,
            limit_ms,
        )

    async def _take(self) -> Job | None:
        if self._ready:
            return self._ready.popleft()
        if self._closing.is_set():
            return None
        fut: asyncio.Future[Job | None] = asyncio.get_running_loop().create_future()
        self._idle.append(fut)
        self._want.set()
        return await fut

    async def _slot(self) -> None:
        job: Job | None = None
        while True:
            if job is None:
                job = await self._take()
                if job is None:
                    return
            job = await self._work(job)

    async def _work(self, job: Job) -> Job | None:
        """Run one job, store its outcome; returns the next job if fetch-next gave one."""
        self._active[job.id] = job
        try:
            finish = await self._runner.run(job)
        finally:
            self._active.pop(job.id, None)
            self._held.pop(job.id, None)
        self.processed += 1
        if self._log_jobs:
            log.info(
                "job %s %s: %s",
                job.id,
                job.name,
                finish.outcome,
                extra={"job_id": job.id, "job_name": job.name, "outcome": finish.outcome},
            )
        if finish.outcome == "failed" and job.opts.dead_letter_queue:
            await dead_letter(
                self.backend, job, finish=finish, prefix=self.prefix, source=self.queue
            )
        limit = self._max_jobs
        if limit is not None and self.processed >= limit and not self._closing.is_set():
            log.info("recycling after %d jobs (max_jobs)", self.processed)
            self._begin_close()
            asyncio.get_running_loop().create_task(self.close())
        if finish.outcome == "none":
            return None
        next_lease = None if self._closing.is_set() or self._limited() else self._lease()
        if next_lease is not None:
            self._pending.add(next_lease.token)
        try:
            fetched = await store_outcome(
                self._finisher,
                job,
                finish=finish,
                lease=next_lease,
                count=1 + len(self._idle),
                runner=self._runner,
                on_refusal=self._refused,
            )
            self._hold(fetched)
        finally:
            if next_lease is not None:
                self._pending.discard(next_lease.token)
        if fetched is None or not fetched.jobs:
            return None
        first, *rest = fetched.jobs
        for extra in rest:
            self._hand_out(extra)
        return first

    def _hold(self, fetched: Fetched | None) -> None:
        """Register fetched jobs as held, in the same step that reads the store's reply."""
        if fetched is not None:
            for job in fetched.jobs:
                self._held[job.id] = job

    def _hand_out(self, job: Job) -> None:
        while self._idle:
            fut = self._idle.popleft()
            if not fut.done():
                fut.set_result(job)
                return
        self._ready.append(job)

    # -- side tasks -----------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        pause = 0.1
        while not self._closing.is_set():
            if not self._idle:
                self._want.clear()
                await self._want.wait()
                continue
            if self._limited():
                await self._sleep(self._limit_until - time.monotonic())
                continue
            lease = self._lease()
            self._pending.add(lease.token)
            try:
                try:
                    fetched = await self.backend.fetch(lease, len(self._idle))
                    self._hold(fetched)
                finally:
                    self._pending.discard(lease.token)
                for job in fetched.jobs:
                    self._hand_out(job)
                if not fetched.jobs and not self._closing.is_set():
                    await self._idle_wait(fetched)
                pause = 0.1
            except asyncio.CancelledError:
                raise
            except BackendRefusedError as exc:
                self._refused(exc)
                return
            except Exception as exc:
                if self._closing.is_set():
                    return
                log.warning("fetching jobs failed (%s); retrying in %.1f s", exc, pause)
                await self._sleep(pause)
                pause = min(pause * 2, 5.0)

    async def _idle_wait(self, fetched: Fetched) -> None:
        """Nothing was ready: sleep out a rate limit, or block until a job may be ready."""
        if fetched.rate_limit_ms > 0:
            await self._sleep(min(fetched.rate_limit_ms / 1000, 30.0))
            return
        timeout = self.settings.drain_delay
        while True:
            if fetched.next_delayed_ms:
                until_due = (fetched.next_delayed_ms - time.time() * 1000) / 1000
                timeout = min(timeout, max(until_due, 0.001), 10.0)
            due = await self.backend.wait_for_work(timeout, self.settings.name)
            if due is None or self._closing.is_set():
                return
            fetched.next_delayed_ms = int(due)

    def _held_locks(self) -> dict[str, str]:
        """``{job_id: token}`` of every job this worker holds, fetched or running.

        Called from the lock keeper's thread: it copies the container in one step.
        """
        return {job.id: job.token for job in dict(self._held).values() if job.token}

    def _pending_tokens(self) -> set[str]:
        """Lease tokens of the fetches in flight (read from the lock keeper's thread)."""
        return set(self._pending)

    async def _heartbeat(self) -> None:
        """Tell the lock keeper the event loop is alive (it warns when it is blocked)."""
        while True:
            self._keeper.beat = time.monotonic()
            if self._keeper.refused is not None:
                self._refused(self._keeper.refused)
            await asyncio.sleep(0.2)

    async def _stalled_loop(self) -> None:
        interval_ms = to_ms(self.settings.stalled_interval)
        while True:
            try:
                stalled = await self.backend.check_stalled(
                    self.settings.max_stalled_count, interval_ms
                )
                for job_id in stalled:
                    log.warning(
                        "job %s stalled (its worker stopped renewing the lock); requeued", job_id
                    )
            except asyncio.CancelledError:
                raise
            except BackendRefusedError as exc:
                self._refused(exc)
                return
            except Exception as exc:
                log.warning("stalled check failed: %s", exc)
            await asyncio.sleep(self.settings.stalled_interval)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)
