"""Global concurrency and rate limits of a queue, and the worker's own limiter."""

from __future__ import annotations

import asyncio
import time

import pytest

from dockyard import InvalidOptionError, Job, Queue, Worker

from .conftest import wait_for


async def test_global_concurrency_caps_jobs_running_at_once(queue: Queue, backend_url: str) -> None:
    await queue.set_global_concurrency(2)
    assert await queue.get_global_limits() == {"concurrency": 2}
    running, most = 0, 0
    release = asyncio.Event()

    async def track(job: Job) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1

    jobs = [await queue.add("a", {"i": i}) for i in range(6)]
    async with (
        Worker("q", track, url=backend_url, concurrency=5, drain_delay=0.2),
        Worker("q", track, url=backend_url, concurrency=5, drain_delay=0.2),
    ):
        await wait_for(lambda: running == 2, what="2 jobs running")
        assert (await queue.get_job_counts("active"))["active"] == 2
        release.set()
        for job in jobs:
            await job.wait_until_finished(timeout=20)
    assert most == 2
    await queue.set_global_concurrency(None)
    assert await queue.get_global_limits() == {}


async def test_global_rate_limit_spaces_jobs_across_workers(queue: Queue, backend_url: str) -> None:
    """3 jobs per 0.5 s, 9 jobs, two workers: no 4 jobs start within 0.4 s.

    Starts are the backend's own ``processed_on``, stamped when the limiter let the job
    through, so a slow event loop between fetch and handler cannot blur them.
    """
    await queue.set_global_rate_limit(3, 0.5)
    assert await queue.get_global_limits() == {"max": 3, "duration": 0.5}

    async def noop(job: Job) -> None:
        return None

    jobs = [await queue.add("a", {"i": i}) for i in range(9)]
    async with (
        Worker("q", noop, url=backend_url, concurrency=4),
        Worker("q", noop, url=backend_url, concurrency=4),
    ):
        for job in jobs:
            await job.wait_until_finished(timeout=20)
    starts = []
    for job in jobs:
        fresh = await queue.get_job(job.id)
        assert fresh is not None and fresh.processed_on is not None
        starts.append(fresh.processed_on)
    starts.sort()
    assert all(starts[i + 3] - starts[i] >= 0.4 for i in range(len(starts) - 3)), starts
    await queue.set_global_rate_limit(None)
    assert await queue.get_global_limits() == {}


async def test_a_worker_limiter_limits_that_worker(queue: Queue, backend_url: str) -> None:
    starts: list[float] = []

    async def note(job: Job) -> None:
        starts.append(time.monotonic())

    jobs = [await queue.add("a", {"i": i}) for i in range(4)]
    limiter = {"max": 2, "duration": 0.4}
    async with Worker("q", note, url=backend_url, concurrency=4, limiter=limiter):
        for job in jobs:
            await job.wait_until_finished(timeout=20)
    assert max(starts) - min(starts) >= 0.3  # the second pair waited for the next window


async def test_bad_limits_are_refused(queue: Queue) -> None:
    with pytest.raises(InvalidOptionError):
        await queue.set_global_concurrency(0)
    with pytest.raises(InvalidOptionError):
        await queue.set_global_rate_limit(-1, 1)
    with pytest.raises(InvalidOptionError):
        await queue.set_global_rate_limit(5, 0)
    with pytest.raises(InvalidOptionError):
        Worker("q", lambda job: None, url="memory://x", limiter={"max": 1})
    assert await queue.get_global_limits() == {}
