"""MemoryBackend: the Backend protocol in this process's memory (``memory://``).

For tests of user code and for scripts: no server, no file, no I/O. It keeps jobs the way
the Redis backend does (the same states, FIFO/LIFO/priority order, delayed promotion, lock
tokens with expiry, BullMQ's two-pass stalled check with ``max_stalled_count``, retries,
retention by count and age, events with BullMQ's names and fields, pause/resume) and
follows our Lua scripts transition by transition, so a queue behaves the same on both.

URLs
----
``memory://`` (the default store), ``memory://NAME`` or ``memory://?name=NAME``: every
``Queue``, ``Worker`` or other user of the same name in this process shares one store
(a queue is further told apart by its name and prefix). A store lives until the process
ends or :func:`reset` forgets it: in a test suite, give each test a store of its own name
or call ``reset()`` between tests. ``?clock=manual`` gives the store a virtual clock
(below); ``?clock=system`` (the default when a store is created) follows ``time.time()``.
A URL without ``clock`` joins an existing store whatever its clock.

Everything is guarded by one lock per store, so queues may be used from several threads
and event loops at once; idle workers and ``wait_until_finished`` are woken directly
(``loop.call_soon_threadsafe``), never by polling.

Virtual clock
-------------
With ``memory://NAME?clock=manual`` the store's time starts at the real time and moves
only when told, so delays, backoffs, lock expiry and stalled checks fire at once::

    url = "memory://t?clock=manual"
    queue = Queue("emails", url=url)
    job = await queue.add("send", {}, delay=3600)
    clock = clock_for(url)              # or queue.backend.clock
    async with Worker("emails", send, url=url):
        clock.advance(3600)             # or queue.backend.advance(3600); seconds or timedelta
        await job.wait_until_finished(timeout=5)

``ManualClock.advance(seconds)`` moves time forward event by event: delayed jobs are
promoted when due (their retry backoffs too), locks expire at their time, and on every
queue where a worker has run a stalled check, the checks that would have run every
``stalled_interval`` meanwhile are run (so a job whose worker died is requeued after
``advance(lock_duration + 2 * stalled_interval)`` at the most, as BullMQ's two-pass check
does); then waiting workers are woken. ``ManualClock.now()`` is the store's time (s).

On a manual store, the times written to jobs (``timestamp`` unless given, ``processed_on``,
``finished_on``) are the store's time. Only the store's time is virtual: a worker's lock
renewal, ``timeout`` of jobs, ``drain_delay`` and wait timeouts run on real time, so moving
time past ``lock_duration`` while a job is running makes its lock expire, as if its worker
had frozen that long.

Memory-only extras: :meth:`MemoryBackend.read_events` reads the queue's event list (the
BullMQ stream's entries: ``(id, {"event": name, **fields})``, capped at 10,000 like
BullMQ's default ``maxLenEvents``).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from itertools import islice
from typing import Any, TypeAlias
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import (
    BackendUnavailableError,
    InvalidOptionError,
    JobNotFoundError,
    NotSupportedError,
)
from ..errors import error_for_code as _error
from ..job import Job
from ..options import JobOptions, to_ms, to_seconds
from .base import Fetched, Finish, Lease, NewJob
from .redis.keys import validate_queue_name

_loads: Callable[[str], Any]
try:  # the ``fast`` extra
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    _loads = json.loads

#: Events kept per queue, as BullMQ's default ``opts.maxLenEvents``.
MAX_EVENTS = 10_000
_STALLED_REASON = "job stalled more than allowable limit"
_STATE_NAMES = {
    "wait": "waiting",
    "paused": "waiting",
    "active": "active",
    "delayed": "delayed",
    "prioritized": "prioritized",
    "completed": "completed",
    "failed": "failed",
}
_ZSET_STATES = ("delayed", "prioritized", "completed", "failed", "waiting-children")


# -- clocks ---------------------------------------------------------------------------


class SystemClock:
    """The real time (``time.time()``); the default."""

    manual = False

    def now_ms(self) -> int:
        """Milliseconds since the epoch."""
        return int(time.time() * 1000)

    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def __repr__(self) -> str:
        return "<SystemClock>"


class ManualClock:
    """A store's virtual time: starts at the real time, moves only by :meth:`advance`."""

    manual = True

    def __init__(self, store: _Store) -> None:
        self._store = store
        self._ms = int(time.time() * 1000)

    def __repr__(self) -> str:
        return f"<ManualClock {self._ms / 1000:.3f} of store {self._store.name!r}>"

    def now_ms(self) -> int:
        """The store's time, milliseconds since the epoch."""
        return self._ms

    def now(self) -> float:
        """The store's time, seconds since the epoch."""
        return self._ms / 1000

    def advance(self, seconds: float | timedelta) -> None:
        """Move time forward; fire due delays, lock expiries and stalled checks on the way;
        wake waiting workers. Safe from any thread; returns at once."""
        delta = to_ms(to_seconds(seconds, "advance"))
        store = self._store
        with store.lock:
            target = self._ms + delta
            queues = list(store.queues.values())
            for q in queues:
                # An expired guard means a check runs as soon as a worker asks: now.
                q.stalled_check_until = max(q.stalled_check_until, self._ms)
            while True:
                step = target
                for q in queues:
                    first = q.delayed.first()
                    if first is not None:
                        step = min(step, max(int(first[0]) // 4096, self._ms))
                    check = q.next_check(self._ms)
                    if check is not None:
                        step = min(step, check)
                self._ms = step
                for q in queues:
                    q.promote(step, len(q.delayed))
                    if q.checker is not None and q.next_check(step) == step:
                        q.check_stalled(q.checker[0], step, q.checker[1])
                if step >= target:
                    break
            for q in queues:
                q.wake_workers()


Clock: TypeAlias = SystemClock | ManualClock


# -- the store ------------------------------------------------------------------------


class _Waiter:
    """A future of some event loop, to be resolved from any thread."""

    __slots__ = ("future", "loop", "thread")

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[Any] = self.loop.create_future()
        self.thread = threading.get_ident()

    def wake(self, value: Any) -> None:
        try:
            if self.thread == threading.get_ident():
                _resolve(self.future, value)
            else:
                self.loop.call_soon_threadsafe(_resolve, self.future, value)
        except RuntimeError:  # its loop is closed: nobody waits any more
            pass


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


class _ZSet:
    """A sorted set as Redis keeps one: members ordered by (score, member)."""

    __slots__ = ("_head", "_items", "_scores")

    def __init__(self) -> None:
        self._items: list[tuple[float, str]] = []  # sorted; live from _head on
        self._head = 0
        self._scores: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._scores)

    def __contains__(self, member: object) -> bool:
        return member in self._scores

    def add(self, member: str, score: float) -> None:
        if member in self._scores:
            self.remove(member)
        self._scores[member] = score
        item = (score, member)
        items = self._items
        if len(items) == self._head or items[-1] < item:
            items.append(item)
        else:
            insort(items, item, lo=self._head)

    def remove(self, member: str) -> bool:
        score = self._scores.pop(member, None)
        if score is None:
            return False
        i = bisect_left(self._items, (score, member), self._head)
        if i == self._head:
            self._drop_head()
        else:
            del self._items[i]
        return True

    def _drop_head(self) -> None:
        self._head += 1
        items = self._items
        if self._head == len(items):
            items.clear()
            self._head = 0
        elif self._head >= 1024 and self._head * 2 >= len(items):
            del items[: self._head]
            self._head = 0

    def first(self) -> tuple[float, str] | None:
        return self._items[self._head] if self._head < len(self._items) else None

    def pop_min(self) -> str | None:
        first = self.first()
        if first is None:
            return None
        self._drop_head()
        del self._scores[first[1]]
        return first[1]

    def by_rank(self, start: int, end: int, reverse: bool) -> list[str]:
        """ZRANGE (or ZREVRANGE when ``reverse``) start end."""
        n = len(self._scores)
        lo, hi = _bounds(n, start, end)
        items, head = self._items, self._head
        if reverse:
            return [items[head + n - 1 - i][1] for i in range(lo, hi)]
        return [member for _, member in items[head + lo : head + hi]]

    def up_to(self, max_score: float, limit: int) -> list[str]:
        """ZRANGEBYSCORE 0 max_score LIMIT 0 limit."""
        out: list[str] = []
        for score, member in islice(self._items, self._head, None):
            if score > max_score or len(out) >= limit:
                break
            out.append(member)
        return out

    def max_in(self, low: float, high: float) -> float | None:
        """The highest score within [low, high], or None."""
        i = bisect_right(self._items, high, self._head, key=_score)
        if i > self._head and self._items[i - 1][0] >= low:
            return self._items[i - 1][0]
        return None


def _score(item: tuple[float, str]) -> float:
    return item[0]


def _bounds(n: int, start: int, end: int) -> tuple[int, int]:
    """Redis's LRANGE/ZRANGE index rules: ``[lo, hi)`` for inclusive start/end, negatives
    counted from the end."""
    if start < 0:
        start = max(n + start, 0)
    if end < 0:
        end = n + end
    end = min(end, n - 1)
    if start > end:
        return 0, 0
    return start, end + 1


class _Rec:
    """One job as stored: BullMQ's hash fields (JSON kept as text), plus where it is."""

    __slots__ = (
        "atm",
        "ats",
        "data",
        "defa",
        "delay",
        "failed_reason",
        "finished_on",
        "id",
        "logs",
        "name",
        "options",
        "opts",
        "pb",
        "priority",
        "processed_on",
        "progress",
        "returnvalue",
        "stacktrace",
        "stc",
        "timestamp",
        "where",
    )

    def __init__(
        self,
        job_id: str,
        name: str,
        data: str,
        opts: str,
        options: JobOptions,
        timestamp: int,
        delay: int,
        priority: int,
    ) -> None:
        self.id = job_id
        self.name = name
        self.data = data
        self.opts = opts
        self.options = options
        self.timestamp = timestamp
        self.delay = delay
        self.priority = priority
        self.progress: str | None = None
        self.atm = 0
        self.ats = 0
        self.stc = 0
        self.failed_reason: str | None = None
        self.stacktrace: str | None = None
        self.returnvalue: str | None = None
        self.processed_on: int | None = None
        self.finished_on: int | None = None
        self.pb: str | None = None
        self.defa: str | None = None
        self.logs: list[str] = []
        #: wait | paused | active | delayed | prioritized | completed | failed
        self.where = ""


_Event = tuple[int, int, str, dict[str, str] | None]


class _Queue:
    """One queue's state; each method is one of our Lua scripts (callers hold the lock)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.jobs: dict[str, _Rec] = {}
        self.counter = 0  # P:N:id
        self.pc = 0  # P:N:pc
        self.wait: deque[str] = deque()  # index 0 = head (LPUSH end); workers take the tail
        self.paused_list: deque[str] = deque()
        self.active: dict[str, None] = {}  # oldest first (the Redis list's tail first)
        self.prioritized = _ZSet()
        self.delayed = _ZSet()
        self.completed = _ZSet()
        self.failed = _ZSet()
        self.locks: dict[str, tuple[str, int]] = {}  # id -> (token, expires at ms)
        self.stalled: dict[str, None] = {}
        self.stalled_check_until = 0
        #: (max_stalled_count, interval_ms) of the last stalled check, for ManualClock.
        self.checker: tuple[int, int] | None = None
        self.paused = False
        self.limiter_count = 0
        self.limiter_until = 0
        self.events: deque[_Event] = deque(maxlen=MAX_EVENTS)
        self.event_ms = 0
        self.event_seq = 0
        self.work_waiters: list[_Waiter] = []
        self.finish_waiters: dict[str, list[_Waiter]] = {}
        self.event_waiters: list[_Waiter] = []

    # -- helpers (lib.lua) -------------------------------------------------------------

    def emit(self, now: int, name: str, fields: dict[str, str] | None = None) -> None:
        if now > self.event_ms:
            self.event_ms = now
            self.event_seq = 0
        else:
            self.event_seq += 1
        self.events.append((self.event_ms, self.event_seq, name, fields))
        if self.event_waiters:
            for waiter in self.event_waiters:
                waiter.wake(None)
            self.event_waiters.clear()

    def wake_workers(self) -> None:
        if self.work_waiters:
            for waiter in self.work_waiters:
                waiter.wake(None)
            self.work_waiters.clear()

    def has_ready(self) -> bool:
        return not self.paused and bool(self.wait or self.prioritized)

    def delayed_score(self, due: int) -> int:
        low = due * 4096
        high = low + 4095
        top = self.delayed.max_in(low, high)
        if top is not None:
            return min(int(top) + 1, high)
        return low

    def enqueue_ready(self, rec: _Rec, priority: int, lifo: bool) -> None:
        if priority > 0:
            self.pc += 1
            self.prioritized.add(rec.id, priority * 4294967296 + (self.pc % 4294967296))
            rec.where = "prioritized"
            return
        target, rec.where = (self.paused_list, "paused") if self.paused else (self.wait, "wait")
        if lifo:
            target.append(rec.id)
        else:
            target.appendleft(rec.id)

    def take_lock(self, job_id: str, token: str, now: int) -> int:
        if token == "0":
            return 0
        held = self.locks.get(job_id)
        if held is None or held[1] <= now:
            self.locks.pop(job_id, None)  # an expired key is gone
            return -2
        if held[0] != token:
            return -6
        del self.locks[job_id]
        self.stalled.pop(job_id, None)
        return 0

    def deactivate(self, job_id: str) -> bool:
        """LREM active: True when the job was active."""
        if job_id in self.active:
            del self.active[job_id]
            return True
        return False

    def lock_valid(self, job_id: str, now: int) -> bool:
        held = self.locks.get(job_id)
        return held is not None and held[1] > now

    def delete(self, job_id: str) -> None:
        rec = self.jobs.pop(job_id, None)
        if rec is not None:
            rec.where = ""

    def promote(self, now: int, most: int = 1000) -> int:
        """Move due delayed jobs (at most ``most``) to where ready jobs go; how many moved."""
        delayed = self.delayed
        limit = (now + 1) * 4096 - 1
        moved = 0
        while moved < most:
            first = delayed.first()
            if first is None or first[0] > limit:
                break
            delayed.pop_min()
            job_id = first[1]
            rec = self.jobs.get(job_id)
            if rec is None:
                continue
            self.enqueue_ready(rec, rec.priority, False)
            self.emit(now, "waiting", {"jobId": job_id, "prev": "delayed"})
            rec.delay = 0
            moved += 1
        if moved and not self.paused:
            self.wake_workers()
        return moved

    # -- scripts -----------------------------------------------------------------------

    def add(self, job: NewJob, now: int, manual: bool) -> str:
        self.counter += 1
        job_id = job.job_id
        if not job_id:
            job_id = str(self.counter)
        elif job_id in self.jobs:
            self.emit(now, "duplicated", {"jobId": job_id})
            return job_id
        options = _options(job.opts)
        timestamp = now if manual and options.timestamp is None else job.timestamp
        rec = _Rec(
            job_id, job.name, job.data, job.opts, options, timestamp, job.delay, job.priority
        )
        self.jobs[job_id] = rec
        self.emit(now, "added", {"jobId": job_id, "name": job.name})
        if job.delay > 0:
            due = timestamp + job.delay
            self.delayed.add(job_id, self.delayed_score(due))
            rec.where = "delayed"
            self.emit(now, "delayed", {"jobId": job_id, "delay": str(due)})
        else:
            self.enqueue_ready(rec, job.priority, job.lifo)
            self.emit(now, "waiting", {"jobId": job_id})
        if not self.paused:
            self.wake_workers()
        return job_id

    def fetch(self, now: int, lease: Lease, count: int) -> tuple[list[_Rec], int, int]:
        """moveToActive: (records taken, rate limit ttl, next delayed due)."""
        self.promote(now)
        limit_max, window = lease.limit_max, lease.limit_ms
        if limit_max is not None:
            if self.limiter_until <= now:
                self.limiter_count = 0
            if self.limiter_count >= limit_max and self.limiter_until > now:
                return [], self.limiter_until - now, 0
        if self.paused:
            return [], 0, 0
        taken: list[_Rec] = []
        token, lock_ms, worker_name = lease.token, lease.lock_ms, lease.worker_name
        while len(taken) < count:
            if self.wait:
                job_id = self.wait.pop()
            else:
                popped = self.prioritized.pop_min()
                if popped is None:
                    self.pc = 0
                    break
                job_id = popped
            self.active[job_id] = None
            used = 0
            if limit_max is not None:
                if self.limiter_until <= now:
                    self.limiter_count = 0
                    self.limiter_until = now + abs(window or 0)
                self.limiter_count += 1
                used = self.limiter_count
            rec = self.jobs[job_id]
            rec.where = "active"
            if token != "0":
                self.locks[job_id] = (token, now + lock_ms)
            self.emit(now, "active", {"jobId": job_id, "prev": "waiting"})
            rec.processed_on = now
            if worker_name:
                rec.pb = worker_name
            rec.ats += 1
            taken.append(rec)
            if limit_max is not None and used >= limit_max:
                break
        if taken:
            if self.wait or self.prioritized:
                self.wake_workers()
            return taken, 0, 0
        first = self.delayed.first()
        return taken, 0, (int(first[0]) // 4096 if first is not None else 0)

    def finish(
        self,
        job_id: str,
        token: str,
        now: int,
        completed: bool,
        value: str,
        stacktrace: str | None,
        keep_count: int,
        keep_age: float,
        attempts: int,
    ) -> int:
        """moveToFinished (without its fetch-next): 0 or a negative code."""
        rec = self.jobs.get(job_id)
        if rec is None:
            return -1
        code = self.take_lock(job_id, token, now)
        if code < 0:
            return code
        if not self.deactivate(job_id):
            return -3
        rec.atm += 1
        target = self.completed if completed else self.failed
        if keep_count == 0:
            self.delete(job_id)
        else:
            target.add(job_id, now)
            rec.finished_on = now
            if completed:
                rec.where = "completed"
                rec.returnvalue = value
            else:
                rec.where = "failed"
                rec.failed_reason = value
                if stacktrace:
                    rec.stacktrace = stacktrace
                rec.defa = None
            if keep_age > 0:
                for old in target.up_to(now - keep_age * 1000, 1000):
                    self.delete(old)
                    target.remove(old)
            if keep_count > 0:
                for old in target.by_rank(keep_count, -1, reverse=True):
                    self.delete(old)
                    target.remove(old)
        if completed:
            self.emit(now, "completed", {"jobId": job_id, "returnvalue": value, "prev": "active"})
        else:
            self.emit(now, "failed", {"jobId": job_id, "failedReason": value, "prev": "active"})
            if rec.atm >= attempts:
                self.emit(now, "retries-exhausted", {"jobId": job_id, "attemptsMade": str(rec.atm)})
        waiters = self.finish_waiters.pop(job_id, None)
        if waiters:
            outcome = ("completed" if completed else "failed", value)
            for waiter in waiters:
                waiter.wake(outcome)
        return 0

    def drained(self, now: int) -> None:
        if not self.wait and not self.active and not self.prioritized:
            self.emit(now, "drained")

    def retry(
        self, job_id: str, token: str, now: int, lifo: bool, reason: str, stacktrace: str | None
    ) -> int:
        """retryJob: back to wait (or prioritized) at once."""
        self.promote(now)
        rec = self.jobs.get(job_id)
        if rec is None:
            return -1
        code = self.take_lock(job_id, token, now)
        if code < 0:
            return code
        rec.failed_reason = reason
        if stacktrace:
            rec.stacktrace = stacktrace
        if not self.deactivate(job_id):
            return -3
        self.enqueue_ready(rec, rec.priority, lifo)
        if not self.paused:
            self.wake_workers()
        rec.atm += 1
        self.emit(now, "waiting", {"jobId": job_id, "prev": "active"})
        return 0

    def move_to_delayed(
        self,
        job_id: str,
        token: str,
        now: int,
        delay: int,
        reason: str,
        stacktrace: str | None,
    ) -> int:
        """moveToDelayed: due at now + delay, attemptsMade + 1."""
        rec = self.jobs.get(job_id)
        if rec is None:
            return -1
        code = self.take_lock(job_id, token, now)
        if code < 0:
            return code
        if reason:
            rec.failed_reason = reason
        if stacktrace:
            rec.stacktrace = stacktrace
        if not self.deactivate(job_id):
            return -3
        due = now + delay
        self.delayed.add(job_id, self.delayed_score(due))
        rec.where = "delayed"
        rec.delay = delay
        rec.atm += 1
        self.emit(now, "delayed", {"jobId": job_id, "delay": str(due)})
        if not self.paused:
            self.wake_workers()
        return 0

    def extend_locks(self, locks: Mapping[str, str], lock_ms: int, now: int) -> list[str]:
        lost: list[str] = []
        for job_id, token in locks.items():
            held = self.locks.get(job_id)
            if held is not None and held[1] > now and held[0] == token:
                self.locks[job_id] = (token, now + lock_ms)
                self.stalled.pop(job_id, None)
            else:
                lost.append(job_id)
        return lost

    def check_stalled(self, max_stalled: int, now: int, interval_ms: int) -> list[str]:
        """moveStalledJobsToWait: requeue jobs that stayed active across two checks without
        a lock; at most once per interval."""
        interval_ms = max(interval_ms, 1)
        self.checker = (max_stalled, interval_ms)
        if now < self.stalled_check_until:
            return []
        self.stalled_check_until = now + interval_ms
        found: list[str] = []
        candidates, self.stalled = self.stalled, {}
        for job_id in candidates:
            if self.lock_valid(job_id, now) or not self.deactivate(job_id):
                continue
            self.locks.pop(job_id, None)
            rec = self.jobs[job_id]
            rec.stc += 1
            if rec.stc > max_stalled and "repeat" not in rec.options.extra:
                rec.defa = _STALLED_REASON
            target, rec.where = (self.paused_list, "paused") if self.paused else (self.wait, "wait")
            target.append(job_id)
            self.emit(now, "waiting", {"jobId": job_id, "prev": "active"})
            self.emit(now, "stalled", {"jobId": job_id})
            found.append(job_id)
        if found and not self.paused:
            self.wake_workers()
        self.stalled = dict.fromkeys(self.active)
        return found

    def next_check(self, now: int) -> int | None:
        """For ManualClock: when the next stalled check that can change anything is due
        (None: no worker checks this queue, or nothing is active or marked)."""
        if self.checker is None or not (self.active or self.stalled):
            return None
        due = max(self.stalled_check_until, now)
        if self.stalled.keys() == self.active.keys():
            # Every active job is marked: the checks before the first lock expiry only
            # mark them again; the first one after it is the next that matters.
            expiry: int | None = None
            for job_id in self.active:
                held = self.locks.get(job_id)
                at = now if held is None else held[1]
                expiry = at if expiry is None else min(expiry, at)
            if expiry is not None and expiry > due:
                interval = self.checker[1]
                due += -(-(expiry - due) // interval) * interval
        return due

    def pause(self, pause: bool, now: int) -> None:
        if pause:
            self._move(self.wait, self.paused_list, "paused")
            self.paused = True
        else:
            self._move(self.paused_list, self.wait, "wait")
            self.paused = False
            self.wake_workers()
        self.emit(now, "paused" if pause else "resumed")

    def _move(self, src: deque[str], dst: deque[str], where: str) -> None:
        for job_id in src:
            self.jobs[job_id].where = where
        dst.extend(src)
        src.clear()

    def outcome_from_events(self, job_id: str) -> tuple[str, str] | None:
        for _, _, name, fields in reversed(self.events):
            if fields is None or fields.get("jobId") != job_id:
                continue
            if name == "completed":
                return "completed", fields.get("returnvalue", "null")
            if name == "failed":
                return "failed", fields.get("failedReason", "")
        return None

    def events_after(self, after: tuple[int, int], count: int) -> list[_Event]:
        out: list[_Event] = []
        for event in reversed(self.events):
            if (event[0], event[1]) <= after:
                break
            out.append(event)
        out.reverse()
        return out[:count]


class _Store:
    """Every queue of one ``memory://`` name, under one lock."""

    def __init__(self, name: str, manual: bool) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.clock: Clock = ManualClock(self) if manual else SystemClock()
        self.queues: dict[tuple[str, str], _Queue] = {}

    def queue(self, prefix: str, name: str) -> _Queue:
        with self.lock:
            q = self.queues.get((prefix, name))
            if q is None:
                q = self.queues[(prefix, name)] = _Queue(name)
            return q


_STORES: dict[str, _Store] = {}
_STORES_LOCK = threading.Lock()


def parse_url(url: str) -> tuple[str, str | None]:
    """``(store name, clock)`` of a ``memory://`` URL; clock is ``system``, ``manual`` or None."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "memory":
        raise InvalidOptionError(f"not a memory:// URL: {url!r}")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"name", "clock"})
    if unknown:
        raise InvalidOptionError(
            f"unknown option(s) {', '.join(unknown)} in {url!r}; memory:// takes "
            "?name=NAME and ?clock=system|manual"
        )
    name = unquote(parts.netloc + parts.path).strip("/")
    if "name" in query:
        given = query["name"][-1]
        if name and given != name:
            raise InvalidOptionError(f"{url!r} names two stores ({name!r} and {given!r})")
        name = given
    clock = query["clock"][-1] if "clock" in query else None
    if clock not in (None, "system", "manual"):
        raise InvalidOptionError(f"clock must be 'system' or 'manual' in {url!r}, got {clock!r}")
    return name, clock


def store_for(url: str) -> _Store:
    """The process-wide store of ``url`` (created on first use)."""
    name, clock = parse_url(url)
    with _STORES_LOCK:
        store = _STORES.get(name)
        if store is None:
            store = _STORES[name] = _Store(name, clock == "manual")
        elif clock is not None and store.clock.manual != (clock == "manual"):
            have = "manual" if store.clock.manual else "system"
            raise InvalidOptionError(
                f"the memory:// store {name!r} already exists with the {have} clock; use "
                f"?clock={have} (or no clock option) for it, or another store name"
            )
        return store


def clock_for(url: str) -> ManualClock:
    """The virtual clock of the store of ``url`` (``memory://NAME?clock=manual``)."""
    clock = store_for(url).clock
    if not isinstance(clock, ManualClock):
        raise NotSupportedError(
            f"the memory:// store of {url!r} runs on the system clock, which cannot be "
            "moved; open it with ?clock=manual (e.g. memory://tests?clock=manual)"
        )
    return clock


def reset(url: str | None = None) -> None:
    """Forget the store of ``url`` (every store when None); backends still open on it keep
    their old store, new ones get an empty store."""
    with _STORES_LOCK:
        if url is None:
            _STORES.clear()
        else:
            _STORES.pop(parse_url(url)[0], None)


_OPTS: dict[str, JobOptions] = {}


def _options(text: str) -> JobOptions:
    opts = _OPTS.get(text)
    if opts is None:
        try:
            raw = _loads(text)
        except ValueError:
            raw = {}
        opts = JobOptions.from_bullmq(raw if isinstance(raw, dict) else {})
        if len(_OPTS) >= 512:
            _OPTS.clear()
        _OPTS[text] = opts
    return opts


def _decode(text: str | None, default: Any = None) -> Any:
    if text is None:
        return default
    try:
        return _loads(text)
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


class MemoryBackend:
    """One queue in a process-wide in-memory store; see the module docstring."""

    kind = "memory"

    def __init__(
        self,
        url: str,
        queue: str,
        *,
        prefix: str = "bull",
        store: _Store | None = None,
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
        self._waiting: set[_Waiter] = set()

    def __repr__(self) -> str:
        return f"<MemoryBackend memory://{self._store.name} {self.prefix}:{self.queue}>"

    def reopen(self) -> MemoryBackend:
        return MemoryBackend(self._url, self.queue, prefix=self.prefix, store=self._store)

    async def close(self) -> None:
        with self._lock:
            self._closed = True
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

    def _job(self, rec: _Rec, token: str | None = None) -> Job:
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
            state = "unknown" if rec is None else _STATE_NAMES[rec.where]
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
                "waiting-children": 0,
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
                    lo, hi = _bounds(len(items), -(end + 1), -(start + 1))
                    ids = list(islice(items, lo, hi))
                    ids.reverse()
                else:
                    lo, hi = _bounds(len(items), start, end)
                    ids = list(islice(items, lo, hi))
            elif state in _ZSET_STATES:
                zset = {
                    "delayed": q.delayed,
                    "prioritized": q.prioritized,
                    "completed": q.completed,
                    "failed": q.failed,
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
            lo, hi = _bounds(len(logs), start, end)
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
                waiter = _Waiter()
                q.work_waiters.append(waiter)
                self._waiting.add(waiter)
            wait = deadline - loop.time()
            if due is not None and not clock.manual:
                wait = min(wait, (due - now) / 1000)
            timer = loop.call_later(max(wait, 0.0), _resolve, waiter.future, None)
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
                keep = result.keep
                code = q.finish(
                    job_id,
                    result.token,
                    now,
                    outcome == "completed",
                    result.value,
                    result.stacktrace,
                    -1 if keep is None or keep.count is None else keep.count,
                    0.0 if keep is None or keep.age is None else keep.age,
                    result.attempts,
                )
                if code == 0:
                    if next_lease is not None:
                        fetched = self._fetch_locked(now, next_lease, count)
                    if fetched is None or not fetched.jobs:
                        q.drained(now)
            elif outcome == "retry":
                code = q.retry(
                    job_id, result.token, now, result.lifo, result.value, result.stacktrace
                )
            elif outcome == "delayed":
                code = q.move_to_delayed(
                    job_id, result.token, now, result.delay_ms, result.value, result.stacktrace
                )
            else:
                raise ValueError(f"unknown outcome {outcome!r}")
            if code == 0 and fetched is None and next_lease is not None:
                fetched = self._fetch_locked(now, next_lease, count)
        await asyncio.sleep(0)
        if code < 0:
            raise _error(code, job_id, f"move to {outcome}")
        return fetched

    async def extend_locks(self, locks: Mapping[str, str], lock_ms: int) -> list[str]:
        self._check_open()
        with self._lock:
            lost = self._q.extend_locks(locks, lock_ms, self.clock.now_ms())
        await asyncio.sleep(0)
        return lost

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
                waiter = _Waiter()
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
                waiter = _Waiter()
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


__all__ = [
    "MAX_EVENTS",
    "ManualClock",
    "MemoryBackend",
    "SystemClock",
    "clock_for",
    "parse_url",
    "reset",
    "store_for",
]
