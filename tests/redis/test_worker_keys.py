"""What fetching, finishing, retrying and lock renewal write, in BullMQ's layout."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

import redis
from dockyard import Backoff, Job, JobFailed, Queue, Worker

from .conftest import events, wait_for


async def test_fetching_locks_the_job_and_records_the_attempt(
    queue: Queue, redis_url: str, redis_sync: redis.Redis
) -> None:
    gate = asyncio.Event()

    async def hold(job: Job) -> None:
        await gate.wait()

    job = await queue.add("a", {})
    async with Worker("q", hold, url=redis_url, name="w1", lock_duration=10):
        await wait_for(lambda: redis_sync.exists(f"bull:q:{job.id}:lock") == 1, what="lock")
        token = redis_sync.get(f"bull:q:{job.id}:lock")
        assert token and ":" in token
        assert 0 < redis_sync.pttl(f"bull:q:{job.id}:lock") <= 10_000
        h = redis_sync.hgetall(f"bull:q:{job.id}")
        assert h["ats"] == "1" and h["pb"] == "w1" and int(h["processedOn"]) > 0
        assert redis_sync.lrange("bull:q:active", 0, -1) == [job.id]
        assert {"event": "active", "jobId": job.id, "prev": "waiting"} in events(redis_sync)
        names = [c["name"] for c in redis_sync.client_list()]
        assert f"bull:{base64.b64encode(b'q').decode()}:w:w1" in names
        gate.set()
        await job.wait_until_finished(timeout=5)


async def test_completion_writes_bullmqs_fields_sets_and_events(
    queue: Queue, redis_url: str, redis_sync: redis.Redis
) -> None:
    async def give(job: Job) -> dict[str, int]:
        return {"n": 1}

    job = await queue.add("a", {})
    async with Worker("q", give, url=redis_url):
        await job.wait_until_finished(timeout=5)
    h = redis_sync.hgetall(f"bull:q:{job.id}")
    assert json.loads(h["returnvalue"]) == {"n": 1}
    assert h["atm"] == "1"
    assert redis_sync.zscore("bull:q:completed", job.id) == int(h["finishedOn"])
    assert not redis_sync.exists(f"bull:q:{job.id}:lock")
    assert redis_sync.llen("bull:q:active") == 0
    evs = events(redis_sync)
    assert {
        "event": "completed",
        "jobId": job.id,
        "returnvalue": '{"n":1}',
        "prev": "active",
    } in evs
    assert evs[-1] == {"event": "drained"}


async def test_final_failure_writes_reason_traces_and_retries_exhausted(
    queue: Queue, redis_url: str, redis_sync: redis.Redis
) -> None:
    async def boom(job: Job) -> None:
        raise ValueError("bad / input")

    job = await queue.add("a", {}, attempts=2)
    async with Worker("q", boom, url=redis_url):
        with pytest.raises(JobFailed):
            await job.wait_until_finished(timeout=5)
    h = redis_sync.hgetall(f"bull:q:{job.id}")
    assert h["failedReason"] == "bad / input"
    assert len(json.loads(h["stacktrace"])) == 2
    assert h["atm"] == "2"
    assert redis_sync.zscore("bull:q:failed", job.id) == int(h["finishedOn"])
    evs = events(redis_sync)
    assert {"event": "waiting", "jobId": job.id, "prev": "active"} in evs
    assert {
        "event": "failed",
        "jobId": job.id,
        "failedReason": "bad / input",
        "prev": "active",
    } in evs
    assert {"event": "retries-exhausted", "jobId": job.id, "attemptsMade": "2"} in evs


async def test_a_retry_with_backoff_goes_through_delayed(
    queue: Queue, redis_url: str, redis_sync: redis.Redis
) -> None:
    async def once(job: Job) -> str:
        if job.attempts_made == 0:
            raise ValueError("first")
        return "ok"

    job = await queue.add("a", {}, attempts=2, backoff=Backoff.fixed(0.2))
    async with Worker("q", once, url=redis_url):
        await job.wait_until_finished(timeout=5)
    delayed = [e for e in events(redis_sync) if e["event"] == "delayed"]
    assert delayed and delayed[0]["jobId"] == job.id
    assert redis_sync.hget(f"bull:q:{job.id}", "atm") == "2"
    assert redis_sync.hget(f"bull:q:{job.id}", "failedReason") == "first"


async def test_a_job_running_longer_than_its_lock_keeps_it(
    queue: Queue, redis_url: str, redis_sync: redis.Redis
) -> None:
    ttls: list[int] = []

    async def long(job: Job) -> str:
        for _ in range(5):
            await asyncio.sleep(0.5)
            ttls.append(redis_sync.pttl(f"bull:q:{job.id}:lock"))
        return "done"

    job = await queue.add("a", {})
    async with Worker("q", long, url=redis_url, lock_duration=1, stalled_interval=0.3):
        assert await job.wait_until_finished(timeout=10) == "done"
    assert all(t > 0 for t in ttls)
    h = redis_sync.hgetall(f"bull:q:{job.id}")
    assert "stc" not in h and h["ats"] == "1"
