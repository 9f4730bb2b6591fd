"""Several outcomes in one script call (moveManyToFinished): each checked against its own
lock, a refused one changing nothing while the others are stored, the next jobs fetched."""

from __future__ import annotations

import asyncio
from typing import Any

import redis
from dockyard import Job, LockLostError, PendingChildrenError, Queue, Worker
from dockyard.backends.base import Finish, Lease

from .conftest import events, wait_for


def _backend(queue: Queue) -> Any:
    return queue.backend


async def test_a_batch_stores_each_outcome_and_fetches_the_next_jobs(
    queue: Queue, redis_sync: redis.Redis
) -> None:
    ids = [j.id for j in await queue.add_bulk([(f"j{i}", {}) for i in range(5)])]
    fetched = await _backend(queue).fetch(Lease("tok-1", 30_000, None), 3)
    first = [j.id for j in fetched.jobs]
    assert first == ids[:3]
    batch = [
        Finish(first[0], "tok-1", "completed", '{"n":0}'),
        Finish(first[1], "tok-1", "failed", "boom", attempts=1, stacktrace='["trace"]'),
        Finish(first[2], "tok-1", "completed", "null"),
    ]
    errors, nxt = await _backend(queue).finish_many(batch, Lease("tok-2", 30_000, None), 5)
    assert errors == [None, None, None]
    assert nxt is not None and [j.id for j in nxt.jobs] == ids[3:]
    assert all(j.token == "tok-2" for j in nxt.jobs)
    assert redis_sync.zrange("bull:q:completed", 0, -1) == [first[0], first[2]]
    assert redis_sync.zrange("bull:q:failed", 0, -1) == [first[1]]
    assert redis_sync.hget(f"bull:q:{first[0]}", "returnvalue") == '{"n":0}'
    assert redis_sync.hget(f"bull:q:{first[1]}", "failedReason") == "boom"
    assert redis_sync.hget(f"bull:q:{first[1]}", "stacktrace") == '["trace"]'
    for job_id in first:
        assert redis_sync.get(f"bull:q:{job_id}:lock") is None
    assert redis_sync.lrange("bull:q:active", 0, -1) == list(reversed(ids[3:]))
    assert redis_sync.get(f"bull:q:{ids[3]}:lock") == "tok-2"
    kinds = [(e["event"], e.get("jobId")) for e in events(redis_sync)]
    assert ("completed", first[0]) in kinds and ("failed", first[1]) in kinds
    assert ("retries-exhausted", first[1]) in kinds


async def test_a_refused_outcome_in_a_batch_changes_nothing_and_the_others_are_stored(
    queue: Queue, redis_sync: redis.Redis
) -> None:
    ids = [j.id for j in await queue.add_bulk([(f"j{i}", {}) for i in range(3)])]
    redis_sync.sadd(f"bull:q:{ids[2]}:dependencies", "bull:c:1")  # a parent, child pending
    await _backend(queue).fetch(Lease("tok-1", 30_000, None), 3)
    batch = [
        Finish(ids[0], "tok-1", "completed", "1"),
        Finish(ids[1], "other-token", "completed", "2"),  # not our lock
        Finish(ids[2], "tok-1", "completed", "3"),
    ]
    errors, _ = await _backend(queue).finish_many(batch, None, 0)
    assert errors[0] is None
    assert isinstance(errors[1], LockLostError)
    assert isinstance(errors[2], PendingChildrenError)
    assert redis_sync.zrange("bull:q:completed", 0, -1) == [ids[0]]
    for job_id in ids[1:]:  # still active and locked by us, untouched
        assert redis_sync.get(f"bull:q:{job_id}:lock") == "tok-1"
        assert redis_sync.hget(f"bull:q:{job_id}", "returnvalue") is None
        assert redis_sync.hget(f"bull:q:{job_id}", "atm") is None
    assert sorted(redis_sync.lrange("bull:q:active", 0, -1)) == sorted(ids[1:])


async def test_a_batch_where_nothing_was_stored_fetches_nothing(
    queue: Queue, redis_sync: redis.Redis
) -> None:
    ids = [j.id for j in await queue.add_bulk([(f"j{i}", {}) for i in range(3)])]
    await _backend(queue).fetch(Lease("tok-1", 30_000, None), 2)
    batch = [Finish(ids[0], "nope", "completed", "1"), Finish(ids[1], "nope", "failed", "x")]
    errors, nxt = await _backend(queue).finish_many(batch, Lease("tok-2", 30_000, None), 3)
    assert all(isinstance(e, LockLostError) for e in errors)
    assert nxt is not None and nxt.jobs == []
    assert redis_sync.lrange("bull:q:wait", 0, -1) == [ids[2]]  # not taken for nobody


async def test_jobs_finishing_together_are_stored_once_each_in_few_script_calls(
    queue: Queue, redis_sync: redis.Redis, redis_url: str
) -> None:
    """Ten slots finish in the same loop turn, three rounds: odd jobs fail for good, even
    ones complete; every outcome is stored exactly once, with far fewer script calls than
    jobs (one per round, plus the fetches)."""
    gate = asyncio.Event()
    started: set[str] = set()

    async def work(job: Job) -> int:
        started.add(job.id)
        await gate.wait()
        if job.data["i"] % 2:
            raise ValueError(f"odd {job.data['i']}")
        return int(job.data["i"])

    jobs = await queue.add_bulk([("j", {"i": i}) for i in range(30)])
    calls_before = redis_sync.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    async with Worker("q", work, url=redis_url, concurrency=10):
        for _ in range(3):
            await wait_for(lambda: len(started) == 10, timeout=10, what="10 jobs running")
            started.clear()
            gate.set()
            gate = asyncio.Event()
        await wait_for(
            lambda: redis_sync.zcard("bull:q:completed") + redis_sync.zcard("bull:q:failed") == 30,
            timeout=10,
            what="30 outcomes",
        )
    calls = redis_sync.info("commandstats")["cmdstat_evalsha"]["calls"] - calls_before
    assert calls < 15  # 30 outcomes and their fetches, the stalled check
    even = {j.id for j in jobs if j.data["i"] % 2 == 0}
    assert set(redis_sync.zrange("bull:q:completed", 0, -1)) == even
    assert set(redis_sync.zrange("bull:q:failed", 0, -1)) == {j.id for j in jobs} - even
    for job in jobs:
        stored = redis_sync.hgetall(f"bull:q:{job.id}")
        assert stored["atm"] == "1"
        if job.data["i"] % 2:
            assert stored["failedReason"] == f"odd {job.data['i']}"
        else:
            assert stored["returnvalue"] == str(job.data["i"])
    finished = [e["jobId"] for e in events(redis_sync) if e["event"] in ("completed", "failed")]
    assert sorted(finished) == sorted(j.id for j in jobs)
