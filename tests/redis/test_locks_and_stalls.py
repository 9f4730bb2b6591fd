"""Lock ownership and the stalled-job check, on BullMQ's keys."""

from __future__ import annotations

import pytest

import redis
from dockyard import Job, JobFailed, LockLostError, Queue, Worker
from dockyard.backends.base import Finish, Lease

from .conftest import events


async def _fetch_one(queue: Queue, token: str = "tok-1") -> Job:
    fetched = await queue.backend.fetch(Lease(token, 30_000, None), 1)
    assert len(fetched.jobs) == 1
    return fetched.jobs[0]


async def test_finishing_with_another_token_is_refused_and_changes_nothing(
    queue: Queue, redis_sync: redis.Redis
) -> None:
    added = await queue.add("a", {})
    job = await _fetch_one(queue)
    with pytest.raises(LockLostError, match="another worker"):
        await queue.backend.finish(Finish(job.id, "not-mine", "completed", "1"), None)
    assert redis_sync.lrange("bull:q:active", 0, -1) == [added.id]
    assert redis_sync.get(f"bull:q:{job.id}:lock") == "tok-1"
    assert redis_sync.zcard("bull:q:completed") == 0
    await queue.backend.finish(Finish(job.id, "tok-1", "completed", "1"), None)
    assert redis_sync.zscore("bull:q:completed", job.id) is not None


async def test_finishing_after_the_lock_expired_is_refused(
    queue: Queue, redis_sync: redis.Redis
) -> None:
    await queue.add("a", {})
    job = await _fetch_one(queue)
    redis_sync.delete(f"bull:q:{job.id}:lock")
    with pytest.raises(LockLostError, match="missing"):
        await queue.backend.finish(Finish(job.id, "tok-1", "failed", "x"), None)
    assert redis_sync.lrange("bull:q:active", 0, -1) == [job.id]


async def test_renewing_a_lock_that_is_not_ours_reports_it_lost(
    queue: Queue, redis_sync: redis.Redis
) -> None:
    await queue.add("a", {})
    job = await _fetch_one(queue)
    assert await queue.backend.extend_locks({job.id: "tok-1"}, 5000) == []
    assert await queue.backend.extend_locks({job.id: "other"}, 5000) == [job.id]
    assert redis_sync.get(f"bull:q:{job.id}:lock") == "tok-1"


async def test_a_job_without_a_lock_is_requeued_after_two_stalled_checks(
    queue: Queue, redis_sync: redis.Redis
) -> None:
    await queue.add("a", {})
    job = await _fetch_one(queue)
    backend = queue.backend
    assert await backend.check_stalled(1, 60_000) == []  # first pass: marks the active ids
    assert redis_sync.smembers("bull:q:stalled") == {job.id}
    assert 0 < redis_sync.pttl("bull:q:stalled-check") <= 60_000
    assert await backend.check_stalled(1, 60_000) == []  # guarded: too soon
    redis_sync.delete("bull:q:stalled-check", f"bull:q:{job.id}:lock")
    assert await backend.check_stalled(1, 60_000) == [job.id]
    assert redis_sync.lrange("bull:q:wait", 0, -1) == [job.id]
    assert redis_sync.llen("bull:q:active") == 0
    assert redis_sync.hget(f"bull:q:{job.id}", "stc") == "1"
    assert {"event": "stalled", "jobId": job.id} in events(redis_sync)
    assert "defa" not in redis_sync.hgetall(f"bull:q:{job.id}")


async def test_a_job_stalled_too_often_is_failed_by_the_next_worker(
    queue: Queue, redis_url: str, redis_sync: redis.Redis
) -> None:
    added = await queue.add("a", {}, attempts=5)
    backend = queue.backend
    for round_ in range(2):
        job = await _fetch_one(queue, token=f"t{round_}")
        redis_sync.delete("bull:q:stalled-check")
        await backend.check_stalled(1, 60_000)
        redis_sync.delete("bull:q:stalled-check", f"bull:q:{job.id}:lock")
        assert await backend.check_stalled(1, 60_000) == [job.id]
    assert redis_sync.hget(f"bull:q:{added.id}", "defa").startswith(
        "job stalled more than allowable limit (its worker died"
    )

    ran: list[str] = []

    async def handler(job: Job) -> None:
        ran.append(job.id)

    async with Worker("q", handler, url=redis_url):
        with pytest.raises(JobFailed, match="stalled more than allowable limit"):
            await added.wait_until_finished(timeout=5)
    assert ran == []
    h = redis_sync.hgetall(f"bull:q:{added.id}")
    assert "defa" not in h and h["stc"] == "2"
