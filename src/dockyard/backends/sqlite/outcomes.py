"""The end of a job's attempt in an SQLite file: moveToFinished (retention, events),
retryJob, moveToDelayed; kept apart from the fetch path, bound as QueueStore's methods
so callers do not change."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import flows

if TYPE_CHECKING:
    from .store import QueueStore


def finish(
    store: QueueStore,
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
    conn, qid = store.conn, store.qid
    store.release_dedup_if_any(job_id)
    target = "completed" if completed else "failed"
    row = None
    if token != "0":
        # The common case in one statement: the lock is ours, the job is active (and,
        # completing, has no pending or fpof-failed children: one index probe).
        if completed:
            row = conn.execute(
                "UPDATE jobs SET lock_token = NULL, lock_until = NULL, stalled = 0, "
                "atm = atm + 1, state = 'completed', score = ?, finished_on = ?, "
                "returnvalue = ? WHERE qid = ? AND id = ? AND state = 'active' AND "
                "lock_token = ? AND lock_until > ? AND NOT EXISTS (SELECT 1 FROM "
                "dependencies WHERE parent_qid = ? AND parent_id = ? AND state IN "
                "('pending', 'failed')) RETURNING atm, parent_qid, parent_id, parent_policy",
                (now, now, value, qid, job_id, token, now, qid, job_id),
            ).fetchone()
        else:
            row = conn.execute(
                "UPDATE jobs SET lock_token = NULL, lock_until = NULL, stalled = 0, "
                "atm = atm + 1, state = 'failed', score = ?, finished_on = ?, "
                "failed_reason = ?, stacktrace = coalesce(?, stacktrace), defa = NULL "
                "WHERE qid = ? AND id = ? AND state = 'active' AND lock_token = ? AND "
                "lock_until > ? RETURNING atm, parent_qid, parent_id, parent_policy",
                (now, now, value, stacktrace or None, qid, job_id, token, now),
            ).fetchone()
    if row is not None:
        atm = row[0]
        if row[2] is not None:
            flows.child_finished(store, job_id, row[1:], completed, value, now)
        if keep_count == 0:
            store.delete([job_id])
        else:
            _retain(store, target, now, keep_count, keep_age)
        return _emit_finished(store, job_id, now, completed, value, atm, attempts, metrics)
    state = store.job_state(job_id)
    if state is None:
        return -1
    if completed:
        refused = flows.completion_refused(store, job_id)
        if refused < 0:
            return refused
    code = store.take_lock(job_id, token, now)
    if code < 0:
        return code
    if state != "active":
        return -3
    atm, *parent = conn.execute(
        "UPDATE jobs SET atm = atm + 1 WHERE qid = ? AND id = ? "
        "RETURNING atm, parent_qid, parent_id, parent_policy",
        (qid, job_id),
    ).fetchone()
    if parent[1] is not None:
        flows.child_finished(store, job_id, tuple(parent), completed, value, now)
    if keep_count == 0:
        store.delete([job_id])
    else:
        if completed:
            conn.execute(
                "UPDATE jobs SET state = 'completed', score = ?, finished_on = ?, "
                "returnvalue = ? WHERE qid = ? AND id = ?",
                (now, now, value, qid, job_id),
            )
        else:
            conn.execute(
                "UPDATE jobs SET state = 'failed', score = ?, finished_on = ?, "
                "failed_reason = ?, stacktrace = coalesce(?, stacktrace), defa = NULL "
                "WHERE qid = ? AND id = ?",
                (now, now, value, stacktrace or None, qid, job_id),
            )
        _retain(store, target, now, keep_count, keep_age)
    return _emit_finished(store, job_id, now, completed, value, atm, attempts, metrics)


def _retain(store: QueueStore, target: str, now: int, keep_count: int, keep_age: float) -> None:
    """Apply remove_on_complete/remove_on_fail by age and count."""
    conn, qid = store.conn, store.qid
    if keep_age > 0:
        old = conn.execute(
            "SELECT id FROM jobs WHERE qid = ? AND state = ? AND score <= ? LIMIT 1000",
            (qid, target, now - keep_age * 1000),
        ).fetchall()
        store.delete([r[0] for r in old])
    if keep_count > 0:
        # The oldest beyond the newest keep_count: reads only the excess (PostgreSQL's
        # state_total needs no scan) rather than skipping keep_count rows each time.
        excess = store.state_total(target) - keep_count
        if excess > 0:
            old = conn.execute(
                "SELECT id FROM jobs WHERE qid = ? AND state = ? ORDER BY score, id LIMIT ?",
                (qid, target, excess),
            ).fetchall()
            store.delete([r[0] for r in old])


def _emit_finished(
    store: QueueStore,
    job_id: str,
    now: int,
    completed: bool,
    value: str,
    atm: int,
    attempts: int,
    metrics: int = 0,
) -> int:
    if metrics > 0:
        store.record_metrics("completed" if completed else "failed", now, metrics)
    if completed:
        store.emit(now, "completed", {"jobId": job_id, "returnvalue": value, "prev": "active"})
    else:
        store.emit(now, "failed", {"jobId": job_id, "failedReason": value, "prev": "active"})
        if atm >= attempts:
            store.emit(now, "retries-exhausted", {"jobId": job_id, "attemptsMade": str(atm)})
    return 0


def drained(store: QueueStore, now: int) -> None:
    """Emit ``drained`` when nothing is waiting or running (after a finish)."""
    row = store.conn.execute(
        "SELECT 1 FROM jobs WHERE qid = ? AND state IN ('wait', 'active', 'prioritized') "
        "LIMIT 1",
        (store.qid,),
    ).fetchone()
    if row is None:
        store.emit(now, "drained")


def retry(
    store: QueueStore,
    job_id: str,
    token: str,
    now: int,
    lifo: bool,
    reason: str,
    stacktrace: str | None,
    counted: bool = True,
) -> int:
    """retryJob: back to wait (or prioritized) at once."""
    store.promote_due(now)
    state = store.job_state(job_id)
    if state is None:
        return -1
    code = store.take_lock(job_id, token, now)
    if code < 0:
        return code
    if state != "active":
        return -3
    priority = store.conn.execute(
        "SELECT priority FROM jobs WHERE qid = ? AND id = ?", (store.qid, job_id)
    ).fetchone()[0]
    new_state, score = store.ready_place(priority, lifo)
    if counted:
        store.conn.execute(
            "UPDATE jobs SET state = ?, score = ?, failed_reason = ?, "
            "stacktrace = coalesce(?, stacktrace), atm = atm + 1 WHERE qid = ? AND id = ?",
            (new_state, score, reason, stacktrace or None, store.qid, job_id),
        )
    else:
        store.place(job_id, new_state, score)
    store.emit(now, "waiting", {"jobId": job_id, "prev": "active"})
    return 0


def move_to_delayed(
    store: QueueStore,
    job_id: str,
    token: str,
    now: int,
    delay: int,
    reason: str,
    stacktrace: str | None,
    counted: bool = True,
) -> int:
    """moveToDelayed: due at now + delay, attemptsMade + 1."""
    state = store.job_state(job_id)
    if state is None:
        return -1
    code = store.take_lock(job_id, token, now)
    if code < 0:
        return code
    if state != "active":
        return -3
    due = now + delay
    store.conn.execute(
        "UPDATE jobs SET state = 'delayed', score = ?, delay = ?, atm = atm + ?, "
        "failed_reason = coalesce(?, failed_reason), stacktrace = coalesce(?, stacktrace) "
        "WHERE qid = ? AND id = ?",
        (
            store.delayed_score(due),
            delay,
            int(counted),
            reason or None,
            stacktrace or None,
            store.qid,
            job_id,
        ),
    )
    store.emit(now, "delayed", {"jobId": job_id, "delay": str(due)})
    return 0
