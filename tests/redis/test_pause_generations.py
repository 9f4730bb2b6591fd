"""Pause and resume follow the queue's BullMQ generation (5.x: `paused` list; 6.x: none)."""

from __future__ import annotations

import asyncio

import pytest

import redis
from dockyard import Job, Queue, Worker

from .conftest import events


@pytest.mark.parametrize("version", [None, "bullmq:5.62.0"])
async def test_a_5x_queue_moves_waiting_jobs_to_the_paused_list(
    queue: Queue, redis_sync: redis.Redis, version: str | None
) -> None:
    if version:
        redis_sync.hset("bull:q:meta", "version", version)
    a = await queue.add("a", {})
    await queue.pause()
    assert redis_sync.hget("bull:q:meta", "paused") == "1"
    assert not redis_sync.exists("bull:q:wait") and not redis_sync.exists("bull:q:marker")
    b = await queue.add("b", {})
    assert redis_sync.lrange("bull:q:paused", 0, -1) == [b.id, a.id]
    assert await a.get_state() == "waiting"
    assert (await queue.get_job_counts("paused"))["paused"] == 2
    await queue.resume()
    assert redis_sync.lrange("bull:q:wait", 0, -1) == [b.id, a.id]
    assert not redis_sync.exists("bull:q:paused")
    assert redis_sync.hget("bull:q:meta", "paused") is None
    assert redis_sync.zscore("bull:q:marker", "0") == 0
    names = [e["event"] for e in events(redis_sync)]
    assert "paused" in names and "resumed" in names


async def test_a_6x_queue_keeps_waiting_jobs_in_wait_while_paused(
    queue: Queue, redis_url: str, redis_sync: redis.Redis
) -> None:
    redis_sync.hset("bull:q:meta", "version", "bullmq:6.7.0")
    a = await queue.add("a", {})
    await queue.pause()
    b = await queue.add("b", {})
    assert redis_sync.lrange("bull:q:wait", 0, -1) == [b.id, a.id]
    assert not redis_sync.exists("bull:q:paused")

    async def noop(job: Job) -> str:
        return "ok"

    async with Worker("q", noop, url=redis_url, drain_delay=0.2):
        await asyncio.sleep(0.3)  # the absence of processing is what is tested
        assert redis_sync.llen("bull:q:wait") == 2
        await queue.resume()
        assert await b.wait_until_finished(timeout=5) == "ok"


async def test_resume_merges_a_leftover_paused_list_in_front_of_wait(
    queue: Queue, redis_sync: redis.Redis
) -> None:
    redis_sync.rpush("bull:q:paused", "old2", "old1")
    redis_sync.rpush("bull:q:wait", "new")
    redis_sync.hset("bull:q:meta", "paused", 1)
    await queue.resume()
    assert redis_sync.lrange("bull:q:wait", 0, -1) == ["new", "old2", "old1"]
