"""The global rate limiter's key, ``bull:q:limiter``, as BullMQ keeps it."""

from __future__ import annotations

import asyncio

import redis
from dockyard import Job, Queue, Worker

from .conftest import wait_for


async def test_an_ended_window_starts_a_new_one_instead_of_counting_on(
    queue: Queue, redis_url: str, redis_sync: redis.Redis
) -> None:
    """A full limiter key whose window is over (here: it lost its expiry) opens a new window.

    Counting on into the old key let a fourth job start at a window's last millisecond and
    three more right after it: four starts within a few milliseconds.
    """
    await queue.set_global_rate_limit(3, 30)
    redis_sync.set("bull:q:limiter", 3)  # full, and no expiry: PTTL answers -1
    started: list[str] = []

    async def note(job: Job) -> None:
        started.append(job.id)

    for i in range(5):
        await queue.add("a", {"i": i})
    async with Worker("q", note, url=redis_url, concurrency=5, drain_delay=0.2):
        await wait_for(lambda: len(started) == 3, what="the new window's 3 jobs")
        await asyncio.sleep(0.3)  # two fetch rounds: the window of 30 s must hold the rest
        assert len(started) == 3
        assert redis_sync.get("bull:q:limiter") == "3"
        assert 0 < redis_sync.pttl("bull:q:limiter") <= 30_000
    assert (await queue.get_job_counts("wait"))["wait"] == 2
