"""The end of a job's attempt in a memory store: moveToFinished (retention, events, the
job's waiters), retryJob, moveToDelayed, and reading an outcome back from the events;
kept apart from the fetch path, bound as QueueState's methods so callers do not change."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..metrics import Metrics
from . import flows

if TYPE_CHECKING:
    from .state import QueueState


def finish(
    q: QueueState,
    job_id: str,
    token: str,
    now: int,
    completed: bool,
    value: str,
    stacktrace: str | None,
    keep_count: int,
    keep_age: float,
    attempts: int,
    metrics: int = 0,
) -> int:
    """moveToFinished (without its fetch-next): 0 or a negative code."""
    rec = q.jobs.get(job_id)
    if rec is None:
        return -1
    if completed and job_id in q.deps:
        refused = flows.completion_refused(q, job_id)
        if refused < 0:
            return refused
    code = q.take_lock(job_id, token, now)
    if code < 0:
        return code
    if not q.deactivate(job_id):
        return -3
    rec.atm += 1
    if rec.parent is not None:
        flows.child_finished(q, rec, completed, value, now)
    target = q.completed if completed else q.failed
    q.release_dedup(rec, untimed_only=True)
    if keep_count == 0:
        q.delete(job_id)
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
                q.delete(old)
                target.remove(old)
        if keep_count > 0:
            for old in target.by_rank(keep_count, -1, reverse=True):
                q.delete(old)
                target.remove(old)
    if metrics > 0:
        kind = "completed" if completed else "failed"
        q.metrics.setdefault(kind, Metrics()).record(now, metrics)
    if completed:
        q.emit(now, "completed", {"jobId": job_id, "returnvalue": value, "prev": "active"})
    else:
        q.emit(now, "failed", {"jobId": job_id, "failedReason": value, "prev": "active"})
        if rec.atm >= attempts:
            q.emit(now, "retries-exhausted", {"jobId": job_id, "attemptsMade": str(rec.atm)})
    waiters = q.finish_waiters.pop(job_id, None)
    if waiters:
        outcome = ("completed" if completed else "failed", value)
        for waiter in waiters:
            waiter.wake(outcome)
    return 0


def drained(q: QueueState, now: int) -> None:
    """Emit ``drained`` when nothing is waiting or running (after a finish)."""
    if not q.wait and not q.active and not q.prioritized:
        q.emit(now, "drained")


def retry(
    q: QueueState,
    job_id: str,
    token: str,
    now: int,
    lifo: bool,
    reason: str,
    stacktrace: str | None,
    counted: bool = True,
) -> int:
    """retryJob: back to wait (or prioritized) at once."""
    q.promote(now)
    rec = q.jobs.get(job_id)
    if rec is None:
        return -1
    code = q.take_lock(job_id, token, now)
    if code < 0:
        return code
    if counted:
        rec.failed_reason = reason
        if stacktrace:
            rec.stacktrace = stacktrace
    if not q.deactivate(job_id):
        return -3
    q.enqueue_ready(rec, rec.priority, lifo)
    if not q.paused:
        q.wake_workers()
    if counted:
        rec.atm += 1
    q.emit(now, "waiting", {"jobId": job_id, "prev": "active"})
    return 0


def move_to_delayed(
    q: QueueState,
    job_id: str,
    token: str,
    now: int,
    delay: int,
    reason: str,
    stacktrace: str | None,
    counted: bool = True,
) -> int:
    """moveToDelayed: due at now + delay, attemptsMade + 1."""
    rec = q.jobs.get(job_id)
    if rec is None:
        return -1
    code = q.take_lock(job_id, token, now)
    if code < 0:
        return code
    if reason:
        rec.failed_reason = reason
    if stacktrace:
        rec.stacktrace = stacktrace
    if not q.deactivate(job_id):
        return -3
    due = now + delay
    q.delayed.add(job_id, q.delayed_score(due))
    rec.where = "delayed"
    rec.delay = delay
    if counted:
        rec.atm += 1
    q.emit(now, "delayed", {"jobId": job_id, "delay": str(due)})
    if not q.paused:
        q.wake_workers()
    return 0


def outcome_from_events(q: QueueState, job_id: str) -> tuple[str, str] | None:
    """(completed or failed, value) of the job's latest finish event, or None."""
    for _, _, name, fields in reversed(q.events):
        if fields is None or fields.get("jobId") != job_id:
            continue
        if name == "completed":
            return "completed", fields.get("returnvalue", "null")
        if name == "failed":
            return "failed", fields.get("failedReason", "")
    return None
