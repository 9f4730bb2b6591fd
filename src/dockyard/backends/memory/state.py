"""One queue's state in a memory store; each method is one of our Lua scripts."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from ...options import JobOptions
from ..base import Lease, NewJob
from ..metrics import Metrics
from ..schedulerlogic import StoredScheduler
from . import flows, outcomes
from .structures import Waiter, ZSet

loads: Callable[[str], Any]
try:  # the ``fast`` extra
    from orjson import loads as loads
except ImportError:  # pragma: no cover
    loads = json.loads

MAX_EVENTS = 10_000
STALLED_REASON = (
    "job stalled more than allowable limit (its worker died or lost the job's lock each "
    "time it ran it)"
)
STATE_NAMES = {
    "wait": "waiting",
    "paused": "waiting",
    "active": "active",
    "delayed": "delayed",
    "prioritized": "prioritized",
    "completed": "completed",
    "failed": "failed",
    "waiting-children": "waiting-children",
}
ZSET_STATES = ("delayed", "prioritized", "completed", "failed", "waiting-children")


class Rec:
    """One job as stored: BullMQ's hash fields (JSON kept as text), plus where it is."""

    __slots__ = (
        "atm",
        "ats",
        "data",
        "defa",
        "deid",
        "delay",
        "failed_reason",
        "finished_on",
        "id",
        "logs",
        "name",
        "options",
        "opts",
        "parent",
        "pb",
        "policy",
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
        self.deid: str | None = None
        self.logs: list[str] = []
        #: Flows: the parent (prefix, queue, id) and what this job's final failure does to it.
        self.parent: tuple[str, str, str] | None = None
        self.policy: str | None = None
        #: wait | paused | active | delayed | prioritized | completed | failed | waiting-children
        self.where = ""


_Event = tuple[int, int, str, dict[str, str] | None]


class QueueState:
    """One queue's state; each method is one of our Lua scripts (callers hold the lock)."""

    def __init__(
        self,
        name: str,
        prefix: str = "bull",
        peers: dict[tuple[str, str], QueueState] | None = None,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self.name = name
        self.prefix = prefix
        #: A job's full key is this plus its id (how parents name their children).
        self.key_prefix = f"{prefix}:{name}:"
        #: Every queue of the store by (prefix, name), for flows across queues.
        self.peers: dict[tuple[str, str], QueueState] = {} if peers is None else peers
        self.now_ms: Callable[[], int] = now_ms or (lambda: 0)
        self.waiting_children = ZSet()
        #: Flows: the children of this queue's parents, by parent id.
        self.deps: dict[str, flows.Deps] = {}
        self.jobs: dict[str, Rec] = {}
        self.counter = 0  # P:N:id
        self.pc = 0  # P:N:pc
        self.wait: deque[str] = deque()  # index 0 = head (LPUSH end); workers take the tail
        self.paused_list: deque[str] = deque()
        self.active: dict[str, None] = {}  # oldest first (the Redis list's tail first)
        self.prioritized = ZSet()
        self.delayed = ZSet()
        self.completed = ZSet()
        self.failed = ZSet()
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
        self.work_waiters: list[Waiter] = []
        self.finish_waiters: dict[str, list[Waiter]] = {}
        self.event_waiters: list[Waiter] = []
        #: Deduplication keys: id -> (owning job id, expires at ms or None).
        self.dedup: dict[str, tuple[str, int | None]] = {}
        #: BullMQ's metrics by kind (completed, failed).
        self.metrics: dict[str, Metrics] = {}
        #: BullMQ's meta limits: concurrency, max, duration (ms).
        self.limits: dict[str, int] = {}
        #: Workers that waited for work on this queue, by backend: {"worker_name", "since"}.
        self.workers: dict[int, dict[str, str]] = {}
        #: Job schedulers by id (memory/schedulers.py).
        self.schedulers: dict[str, StoredScheduler] = {}

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

    def enqueue_ready(self, rec: Rec, priority: int, lifo: bool) -> None:
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
            if rec.parent is not None:
                flows.child_deleted(self, rec)
        if self.deps:
            self.deps.pop(job_id, None)

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
        if job.dedup is not None:
            owner = self.deduplicate(job.dedup, job_id, now)
            if owner is not None:
                return owner
        options = parse_opts(job.opts)
        timestamp = now if manual and options.timestamp is None else job.timestamp
        rec = Rec(job_id, job.name, job.data, job.opts, options, timestamp, job.delay, job.priority)
        rec.deid = None if job.dedup is None else job.dedup[0]
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

    def deduplicate(
        self, dedup: tuple[str, int | None, bool, bool], job_id: str, now: int
    ) -> str | None:
        """The deduplication step of addJob: the kept job's id, or None to add this one."""
        dedup_id, ttl, extend, replace = dedup
        held = self.dedup.get(dedup_id)
        if held is not None and held[1] is not None and held[1] <= now:
            held = None
        expires = None if ttl is None else now + ttl
        if held is not None:
            owner, owner_expires = held
            old = self.jobs.get(owner)
            if replace and old is not None and old.where == "delayed":
                self.delayed.remove(owner)
                self.delete(owner)
                self.emit(now, "removed", {"jobId": owner, "prev": "delayed"})
                keep = expires if (ttl is None or extend) else owner_expires
                self.dedup[dedup_id] = (job_id, keep)
                self.emit(now, "deduplicated", {"jobId": job_id, "deduplicationId": dedup_id,
                                                "deduplicatedJobId": owner})  # fmt: skip
                return None
            if ttl is not None and extend:
                self.dedup[dedup_id] = (owner, expires)
            self.emit(now, "deduplicated", {"jobId": owner, "deduplicationId": dedup_id,
                                            "deduplicatedJobId": job_id})  # fmt: skip
            return owner
        self.dedup[dedup_id] = (job_id, expires)
        return None

    def release_dedup(self, rec: Rec, untimed_only: bool) -> None:
        """Drop the job's deduplication key if it still points to it."""
        if rec.deid is None:
            return
        held = self.dedup.get(rec.deid)
        if held is not None and held[0] == rec.id and not (untimed_only and held[1] is not None):
            del self.dedup[rec.deid]

    def fetch(self, now: int, lease: Lease, count: int) -> tuple[list[Rec], int, int]:
        """moveToActive: (records taken, rate limit ttl, next delayed due)."""
        self.promote(now)
        limits = self.limits
        limit_max = limits.get("max", lease.limit_max)
        window = lease.limit_ms if lease.limit_ms is not None else limits.get("duration")
        if limit_max is not None:
            if self.limiter_until <= now:
                self.limiter_count = 0
            if self.limiter_count >= limit_max and self.limiter_until > now:
                return [], self.limiter_until - now, 0
        if self.paused:
            return [], 0, 0
        if "concurrency" in limits:
            count = min(count, limits["concurrency"] - len(self.active))
        taken: list[Rec] = []
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

    # -- the end of an attempt (outcomes.py) -------------------------------------------

    finish = outcomes.finish
    retry = outcomes.retry
    move_to_delayed = outcomes.move_to_delayed
    drained = outcomes.drained
    outcome_from_events = outcomes.outcome_from_events

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
                rec.defa = STALLED_REASON
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

    def events_after(self, after: tuple[int, int], count: int) -> list[_Event]:
        out: list[_Event] = []
        for event in reversed(self.events):
            if (event[0], event[1]) <= after:
                break
            out.append(event)
        out.reverse()
        return out[:count]


_OPTS: dict[str, JobOptions] = {}


def parse_opts(text: str) -> JobOptions:
    opts = _OPTS.get(text)
    if opts is None:
        try:
            raw = loads(text)
        except ValueError:
            raw = {}
        opts = JobOptions.from_bullmq(raw if isinstance(raw, dict) else {})
        if len(_OPTS) >= 512:
            _OPTS.clear()
        _OPTS[text] = opts
    return opts
