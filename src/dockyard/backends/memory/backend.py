"""MemoryBackend: the Backend protocol over one queue of a memory store."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from datetime import timedelta
from itertools import islice
from typing import Any

from ...errors import (
    BackendUnavailableError,
    InvalidOptionError,
    JobNotFoundError,
    NotSupportedError,
)
from ...errors import error_for_code as _error
from ...job import Job
from ..base import Fetched, Finish, Lease, NewJob
from ..flowparts import refusal
from ..redis.keys import validate_queue_name
from .admin import MemoryAdmin
from .clock import Clock, ManualClock
from .flows import MemoryFlows, pending_count
from .schedulers import MemorySchedulers, advance_fetched
from .state import STATE_NAMES, ZSET_STATES, Rec, loads
from .stores import Store, store_for
from .structures import Waiter, bounds, resolve


def _decode(text: str | None, default: Any = None) -> Any:
    if text is None:
        return default
    try:
        return loads(text)
    except ValueError:
        return text


def _traces(text: str | None) -> list[str]:
    if text is None:
        return []
    traces = _decode(text, [])
    return [str(t) for t in traces] if isinstance(traces, list) else []


def _event_id(event_id: str) -> tuple[int, int]:
    ms, _, seq = event_id.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        raise InvalidOptionError(f"an event id is 'ms-seq' or '$', got {event_id!r}") from None


# -- the backend ----------------------------------------------------------------------


class MemoryBackend(MemoryAdmin):
    """One queue in a process-wide in-memory store; see the module docstring."""

    kind = "memory"

    def __init__(
        self,
        url: str,
        queue: str,
        *,
        prefix: str = "bull",
        store: Store | None = None,
    ) -> None:
        validate_queue_name(queue, prefix)
        self.queue = queue
        self.prefix = prefix
        self._url = url
        self._store = store if store is not None else store_for(url)
        self._lock = self._store.lock
        self._q = self._store.queue(prefix, queue)
        self.clock: Clock = self._store.clock
        self._closed = False
        self._interrupted = False
        self._waiting: set[Waiter] = set()
        self.schedulers = MemorySchedulers(self)
        #: Flows (parent/child jobs) of this queue's jobs: the FlowStore protocol.
        self.flows = MemoryFlows(self, _decode)

    def __repr__(self) -> str:
        return f"<MemoryBackend memory://{self._store.name} {self.prefix}:{self.queue}>"

    def reopen(self) -> MemoryBackend:
        return MemoryBackend(self._url, self.queue, prefix=self.prefix, store=self._store)

    def sibling(self, queue: str) -> MemoryBackend:
        return MemoryBackend(self._url, queue, prefix=self.prefix, store=self._store)

    async def close(self) -> None:
        with self._lock:
            self._closed = True
            self._q.workers.pop(id(self), None)
            for waiter in self._waiting:
                waiter.wake(None)

    def _check_open(self) -> None:
        if self._closed:
            raise BackendUnavailableError(
                f"this memory backend of queue {self.queue!r} was closed; open a new Queue "
                "or Worker to use the store again"
            )

    def advance(self, seconds: float | timedelta) -> None:
        """Move the store's virtual clock (``?clock=manual`` only); see ManualClock.advance."""
        clock = self.clock
        if not isinstance(clock, ManualClock):
            raise NotSupportedError(
                f"the memory:// store {self._store.name!r} runs on the system clock, which "
                "cannot be moved; open it with ?clock=manual to move time in tests"
            )
        clock.advance(seconds)

    def _job(self, rec: Rec, token: str | None = None) -> Job:
        rjk = rec.options.extra.get("repeatJobKey")
        return Job(
            id=rec.id,
            name=rec.name,
            data=_decode(rec.data, {}),
            opts=rec.options,
            queue_name=self.queue,
            timestamp=rec.timestamp / 1000,
            delay=rec.delay / 1000,
            priority=rec.priority,
            progress=0 if rec.progress is None else _decode(rec.progress, 0),
            attempts_made=rec.atm,
            attempts_started=rec.ats,
            stalled_counter=rec.stc,
            failed_reason=rec.failed_reason,
            stacktrace=_traces(rec.stacktrace),
            return_value=None if rec.returnvalue is None else _decode(rec.returnvalue),
            processed_on=None if rec.processed_on is None else rec.processed_on / 1000,
            finished_on=None if rec.finished_on is None else rec.finished_on / 1000,
            processed_by=rec.pb,
            deferred_failure=rec.defa,
            token=token,
            backend=self,
            repeat_job_key=rjk if isinstance(rjk, str) else None,
        )

    # -- producers --------------------------------------------------------------------

    async def add(self, job: NewJob) -> str:
        self._check_open()
        clock = self.clock
        with self._lock:
            job_id = self._q.add(job, clock.now_ms(), clock.manual)
        await asyncio.sleep(0)
        return job_id

    async def add_bulk(self, jobs: Sequence[NewJob]) -> list[str]:
        self._check_open()
        clock = self.clock
        with self._lock:
            now, manual, add = clock.now_ms(), clock.manual, self._q.add
            ids = [add(job, now, manual) for job in jobs]
        await asyncio.sleep(0)
        return ids

    # -- reads ------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job | None:
        self._check_open()
        with self._lock:
            rec = self._q.jobs.get(job_id)
            job = None if rec is None else self._job(rec)
        await asyncio.sleep(0)
        return job

    async def get_state(self, job_id: str) -> str:
        self._check_open()
        with self._lock:
            rec = self._q.jobs.get(job_id)
            state = "unknown" if rec is None else STATE_NAMES[rec.where]
        await asyncio.sleep(0)
        return state

    async def get_counts(self, states: Sequence[str]) -> dict[str, int]:
        self._check_open()
        q = self._q
        with self._lock:
            sizes = {
                "waiting": len(q.wait),
                "wait": len(q.wait),
                "paused": len(q.paused_list),
                "active": len(q.active),
                "delayed": len(q.delayed),
                "prioritized": len(q.prioritized),
                "completed": len(q.completed),
                "failed": len(q.failed),
                "waiting-children": len(q.waiting_children),
            }
        counts = {}
        for state in states:
            if state not in sizes:
                raise ValueError(state)
            counts[state] = sizes[state]
        await asyncio.sleep(0)
        return counts

    async def get_job_ids(self, state: str, start: int, end: int, asc: bool) -> list[str]:
        self._check_open()
        q = self._q
        with self._lock:
            if state in ("waiting", "wait", "paused", "active"):
                items: Sequence[str]
                if state == "active":
                    items = list(reversed(q.active))
                else:
                    items = q.paused_list if state == "paused" else q.wait
                if asc:
                    lo, hi = bounds(len(items), -(end + 1), -(start + 1))
                    ids = list(islice(items, lo, hi))
                    ids.reverse()
                else:
                    lo, hi = bounds(len(items), start, end)
                    ids = list(islice(items, lo, hi))
            elif state in ZSET_STATES:
                zset = {
                    "delayed": q.delayed,
                    "prioritized": q.prioritized,
                    "completed": q.completed,
                    "failed": q.failed,
                    "waiting-children": q.waiting_children,
                }.get(state)
                ids = [] if zset is None else zset.by_rank(start, end, not asc)
            else:
                raise ValueError(state)
        await asyncio.sleep(0)
        return ids

    async def get_logs(self, job_id: str, start: int, end: int) -> list[str]:
        self._check_open()
        with self._lock:
            rec = self._q.jobs.get(job_id)
            logs = rec.logs if rec is not None else []
            lo, hi = bounds(len(logs), start, end)
            lines = logs[lo:hi]
        await asyncio.sleep(0)
        return lines

    async def is_paused(self) -> bool:
        self._check_open()
        await asyncio.sleep(0)
        return self._q.paused

    # -- job updates ------------------------------------------------------------------

    async def update_progress(self, job_id: str, progress: str) -> None:
        self._check_open()
        with self._lock:
            q = self._q
            rec = q.jobs.get(job_id)
            if rec is not None:
                rec.progress = progress
                q.emit(self.clock.now_ms(), "progress", {"jobId": job_id, "data": progress})
        await asyncio.sleep(0)
        if rec is None:
            raise _error(-1, job_id, "update_progress")

    async def add_log(self, job_id: str, line: str, keep: int | None) -> int:
        self._check_open()
        with self._lock:
            rec = self._q.jobs.get(job_id)
            count = -1
            if rec is not None:
                logs = rec.logs
                logs.append(line)
                count = len(logs)
                if keep is not None:
                    if keep == 0:
                        logs.clear()
                        count = 0
                    elif count > keep:
                        del logs[:-keep]
                        count = keep
        await asyncio.sleep(0)
        if count < 0:
            raise _error(count, job_id, "log")
        return count

    # -- admin ------------------------------------------------------------------------

    async def pause(self) -> None:
        self._check_open()
        with self._lock:
            self._q.pause(True, self.clock.now_ms())
        await asyncio.sleep(0)

    async def resume(self) -> None:
        self._check_open()
        with self._lock:
            self._q.pause(False, self.clock.now_ms())
        await asyncio.sleep(0)

    # -- workers ----------------------------------------------------------------------

    def _fetch_locked(self, now: int, lease: Lease, count: int) -> Fetched:
        recs, ttl, due = self._q.fetch(now, lease, count)
        advance_fetched(self._q, recs, now, self.clock.manual)  # job schedulers, in this fetch
        token = lease.token
        job = self._job
        if self.clock.manual:
            # A worker counts down to a due time on real time: on a virtual clock it must
            # not try; advance() wakes it instead.
            due = 0
        return Fetched([job(rec, token) for rec in recs], ttl, due)

    async def fetch(self, lease: Lease, count: int) -> Fetched:
        self._check_open()
        with self._lock:
            fetched = self._fetch_locked(self.clock.now_ms(), lease, count)
        await asyncio.sleep(0)
        return fetched

    async def wait_for_work(self, timeout: float, worker_name: str | None) -> float | None:
        self._check_open()
        if id(self) not in self._q.workers:
            with self._lock:
                self._q.workers[id(self)] = {
                    "worker_name": worker_name or "",
                    "since": str(self.clock.now_ms()),
                }
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        q, clock = self._q, self.clock
        while True:
            with self._lock:
                if self._interrupted or self._closed:
                    self._interrupted = False
                    return None
                if q.has_ready():
                    return None
                now = clock.now_ms()
                first = q.delayed.first()
                due = None if first is None else int(first[0]) // 4096
                if due is not None and due <= now:
                    return None  # the next fetch promotes it
                waiter = Waiter()
                q.work_waiters.append(waiter)
                self._waiting.add(waiter)
            wait = deadline - loop.time()
            if due is not None and not clock.manual:
                wait = min(wait, (due - now) / 1000)
            timer = loop.call_later(max(wait, 0.0), resolve, waiter.future, None)
            try:
                await waiter.future
            finally:
                timer.cancel()
                with self._lock:
                    self._waiting.discard(waiter)
                    if waiter in q.work_waiters:
                        q.work_waiters.remove(waiter)
            if loop.time() >= deadline:
                with self._lock:
                    self._interrupted = False
                return None

    async def interrupt_wait(self) -> None:
        with self._lock:
            self._interrupted = True
            for waiter in self._waiting:
                waiter.wake(None)
        await asyncio.sleep(0)

    async def finish(
        self, result: Finish, next_lease: Lease | None, count: int = 1
    ) -> Fetched | None:
        self._check_open()
        q = self._q
        outcome = result.outcome
        job_id = result.job_id
        fetched: Fetched | None = None
        with self._lock:
            now = self.clock.now_ms()
            if outcome in ("completed", "failed"):
                code = q.finish(
                    job_id,
                    result.token,
                    now,
                    outcome == "completed",
                    result.value,
                    result.stacktrace,
                    result.keep_count,
                    result.keep_age,
                    result.attempts,
                    result.metrics,
                )
                if code == 0:
                    if next_lease is not None:
                        fetched = self._fetch_locked(now, next_lease, count)
                    if fetched is None or not fetched.jobs:
                        q.drained(now)
            elif outcome in ("retry", "release"):
                release = outcome == "release"
                code = q.retry(
                    job_id,
                    result.token,
                    now,
                    True if release else result.lifo,
                    result.value,
                    result.stacktrace,
                    not release,
                )
            elif outcome == "delayed":
                code = q.move_to_delayed(
                    job_id,
                    result.token,
                    now,
                    result.delay_ms,
                    result.value,
                    result.stacktrace,
                    result.count_attempt,
                )
            else:
                raise ValueError(f"unknown outcome {outcome!r}")
            if code == 0 and fetched is None and next_lease is not None:
                fetched = self._fetch_locked(now, next_lease, count)
            pending = pending_count(q, job_id) if code == -4 else 0
        await asyncio.sleep(0)
        if code < 0:
            raise refusal(code, job_id, f"move to {outcome}", pending)
        return fetched

    async def extend_locks(self, locks: Mapping[str, str], lock_ms: int) -> list[str]:
        self._check_open()
        with self._lock:
            lost = self._q.extend_locks(locks, lock_ms, self.clock.now_ms())
        await asyncio.sleep(0)
        return lost

    async def locked_with(self, tokens: Collection[str]) -> dict[str, str]:
        self._check_open()
        wanted = set(tokens)
        now = self.clock.now_ms()
        with self._lock:
            found = {
                job_id: token
                for job_id, (token, until) in self._q.locks.items()
                if token in wanted and until > now
            }
        await asyncio.sleep(0)
        return found

    async def check_stalled(self, max_stalled_count: int, interval_ms: int) -> list[str]:
        self._check_open()
        with self._lock:
            ids = self._q.check_stalled(max_stalled_count, self.clock.now_ms(), interval_ms)
        await asyncio.sleep(0)
        return ids

    async def wait_finished(self, job_id: str, timeout: float | None) -> tuple[str, Any]:
        self._check_open()
        q = self._q
        with self._lock:
            rec = q.jobs.get(job_id)
            found: tuple[str, str] | None = None
            waiter = None
            if rec is None:
                found = q.outcome_from_events(job_id)
                if found is None:
                    raise JobNotFoundError(
                        f"job {job_id} does not exist in queue {self.queue!r} (it may have "
                        "been removed); there is nothing to wait for"
                    )
            elif rec.where == "completed":
                found = ("completed", rec.returnvalue or "null")
            elif rec.where == "failed":
                found = ("failed", rec.failed_reason or "")
            else:
                waiter = Waiter()
                q.finish_waiters.setdefault(job_id, []).append(waiter)
        if waiter is not None:
            try:
                async with asyncio.timeout(timeout):
                    found = await waiter.future
            except TimeoutError:
                raise TimeoutError(f"job {job_id} did not finish within {timeout} s") from None
            finally:
                with self._lock:
                    waiters = q.finish_waiters.get(job_id)
                    if waiters is not None and waiter in waiters:
                        waiters.remove(waiter)
                        if not waiters:
                            del q.finish_waiters[job_id]
        else:
            await asyncio.sleep(0)
        assert found is not None
        state, value = found
        return (state, _decode(value)) if state == "completed" else (state, value)

    # -- memory-only ------------------------------------------------------------------

    async def read_events(
        self, last_id: str = "$", count: int = 1000, timeout: float | None = 0.0
    ) -> list[tuple[str, dict[str, str]]]:
        """Events after ``last_id`` (``"$"``: only new ones, ``"0"``: all kept), oldest
        first, as ``(id, {"event": name, **fields})`` like the BullMQ stream's entries.

        Waits up to ``timeout`` seconds (None: forever) when there are none yet.
        """
        self._check_open()
        q = self._q
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        with self._lock:
            after = (q.event_ms, q.event_seq) if last_id == "$" else _event_id(last_id)
        while True:
            with self._lock:
                events = q.events_after(after, count)
                if events or (deadline is not None and loop.time() >= deadline):
                    break
                waiter = Waiter()
                q.event_waiters.append(waiter)
            try:
                remaining = None if deadline is None else deadline - loop.time()
                async with asyncio.timeout(remaining):
                    await waiter.future
            except TimeoutError:
                pass
            finally:
                with self._lock:
                    if waiter in q.event_waiters:
                        q.event_waiters.remove(waiter)
        await asyncio.sleep(0)
        return [
            (f"{ms}-{seq}", {"event": name, **(fields or {})}) for ms, seq, name, fields in events
        ]
