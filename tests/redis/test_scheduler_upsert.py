"""addJobScheduler / removeJobScheduler on Redis: the keys as BullMQ writes them (B.1, B.2,
B.6 of bullmq-flows-schedulers.md)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest

import redis
from dockyard import JobStateError, Queue

from .conftest import events

Q = "bull:q"


@pytest.fixture
async def queue(redis_url: str) -> AsyncIterator[Queue]:
    async with Queue("q", url=redis_url) as q:
        yield q


async def test_the_scheduler_hash_and_iteration_have_bullmqs_fields(
    queue: Queue, redis_sync: redis.Redis
) -> None:
    start = time.time() + 3600
    job = await queue.upsert_job_scheduler(
        "cr", pattern="*/3 * * * * *", tz="Europe/Berlin", limit=3, start=start,
        end=start + 600, template={"name": "n", "data": {"d": 1}, "opts": {"priority": 4}},
    )  # fmt: skip
    ms = int(job.id.rsplit(":", 1)[1])
    assert redis_sync.zscore(f"{Q}:repeat", "cr") == ms
    stored = redis_sync.hgetall(f"{Q}:repeat:cr")
    assert set(stored) == {"name", "tz", "limit", "pattern", "startDate", "endDate", "offset",
                           "opts", "data", "ic"}  # fmt: skip
    assert stored["startDate"] == str(round(start * 1000)) and stored["offset"] == "0"
    assert stored["ic"] == "1" and json.loads(stored["data"]) == {"d": 1}
    assert json.loads(stored["opts"]) == {"attempts": 1, "priority": 4}
    it = redis_sync.hgetall(f"{Q}:{job.id}")
    assert it["rjk"] == "cr" and it["name"] == "n" and it["priority"] == "4"
    opts = json.loads(it["opts"])
    assert opts["jobId"] == job.id and opts["repeatJobKey"] == "cr" and opts["prevMillis"] == ms
    assert opts["repeat"] == {"pattern": "*/3 * * * * *", "tz": "Europe/Berlin", "limit": 3,
                              "startDate": round(start * 1000),
                              "endDate": round((start + 600) * 1000), "count": 1}  # fmt: skip
    assert redis_sync.zscore(f"{Q}:delayed", job.id) is not None


async def test_upserting_again_replaces_the_pending_iteration_silently(
    queue: Queue, redis_sync: redis.Redis
) -> None:
    start = time.time() + 100
    first = await queue.upsert_job_scheduler("e", every=60, start=start)
    again = await queue.upsert_job_scheduler(
        "e", every=60, start=start + 1, template={"data": {"v": 2}}
    )
    # start moved later than the pending slot: a fresh slot, the old iteration gone.
    assert again.id != first.id and redis_sync.exists(f"{Q}:{first.id}") == 0
    same = await queue.upsert_job_scheduler("e", every=60, template={"data": {"v": 3}})
    assert same.id == again.id and same.data == {"v": 3}
    assert redis_sync.zcard(f"{Q}:delayed") == 1
    names = [e["event"] for e in events(redis_sync)]
    assert "removed" not in names and names.count("added") == 3
    assert redis_sync.hget(f"{Q}:repeat:e", "ic") == "1"


async def test_remove_emits_removed_for_the_delayed_iteration(
    queue: Queue, redis_sync: redis.Redis
) -> None:
    job = await queue.upsert_job_scheduler("gone", every=5, start=time.time() + 100)
    assert await queue.remove_job_scheduler("gone") is True
    removed = [e for e in events(redis_sync) if e["event"] == "removed"]
    assert removed == [{"event": "removed", "jobId": job.id, "prev": "delayed"}]
    assert redis_sync.exists(f"{Q}:repeat", f"{Q}:repeat:gone", f"{Q}:{job.id}") == 0


async def test_every_walks_past_slots_held_by_kept_iterations(
    queue: Queue, redis_sync: redis.Redis
) -> None:
    start_ms = (int(time.time()) + 1000) * 1000
    for k in range(3):  # finished iterations of an earlier scheduler with the same id
        redis_sync.hset(f"{Q}:repeat:w:{start_ms + k * 1000}", mapping={"name": "old"})
    job = await queue.upsert_job_scheduler("w", every=1, start=start_ms / 1000)
    assert job.id == f"repeat:w:{start_ms + 3000}"


async def test_a_cron_time_held_by_another_job_is_refused_with_nothing_written(
    queue: Queue, redis_sync: redis.Redis
) -> None:
    start_ms = (int(time.time()) + 1000) * 1000
    redis_sync.hset(f"{Q}:repeat:c:{start_ms + 1000}", mapping={"name": "old"})
    with pytest.raises(JobStateError, match="held by another job"):
        await queue.upsert_job_scheduler("c", pattern="* * * * * *", start=start_ms / 1000)
    assert redis_sync.exists(f"{Q}:repeat", f"{Q}:repeat:c") == 0
    assert redis_sync.hgetall(f"{Q}:repeat:c:{start_ms + 1000}") == {"name": "old"}
