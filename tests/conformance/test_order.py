"""The order in which workers take jobs: FIFO, LIFO, priorities, delays."""

from __future__ import annotations

import asyncio
import time

from dockyard import Job, Queue, Worker

from .conftest import wait_for


async def _run_in_order(queue: Queue, url: str, expected: int) -> list[str]:
    seen: list[str] = []

    async def record(job: Job) -> None:
        seen.append(job.name)

    async with Worker("q", record, url=url, concurrency=1):
        await wait_for(lambda: _count(seen, expected), what=f"{expected} jobs")
    return seen


async def _count(seen: list[str], n: int) -> bool:
    return len(seen) >= n


async def test_jobs_run_in_the_order_they_were_added(queue: Queue, backend_url: str) -> None:
    for i in range(10):
        await queue.add(f"j{i}", {})
    assert await _run_in_order(queue, backend_url, 10) == [f"j{i}" for i in range(10)]


async def test_lifo_jobs_run_before_the_waiting_ones(queue: Queue, backend_url: str) -> None:
    await queue.add("first", {})
    await queue.add("second", {})
    await queue.add("urgent", {}, lifo=True)
    assert await _run_in_order(queue, backend_url, 3) == ["urgent", "first", "second"]


async def test_lower_priority_numbers_run_first_and_plain_jobs_before_all(
    queue: Queue, backend_url: str
) -> None:
    await queue.add("p5-a", {}, priority=5)
    await queue.add("p1", {}, priority=1)
    await queue.add("p5-b", {}, priority=5)
    await queue.add("plain", {})
    order = await _run_in_order(queue, backend_url, 4)
    assert order == ["plain", "p1", "p5-a", "p5-b"]


async def test_a_delayed_job_waits_for_its_time(queue: Queue, backend_url: str) -> None:
    started: dict[str, float] = {}

    async def record(job: Job) -> None:
        started[job.name] = time.time()

    job = await queue.add("later", {}, delay=0.5)
    assert await job.get_state() == "delayed"
    async with Worker("q", record, url=backend_url):
        await queue.add("now", {})
        await wait_for(lambda: _has(started, "later"), what="the delayed job")
    assert started["later"] >= job.timestamp + 0.5 - 0.005
    assert started["now"] < started["later"]
    assert await job.get_state() == "completed"
    stored = await queue.get_job(job.id)
    assert stored is not None and stored.delay == 0


async def _has(d: dict[str, float], key: str) -> bool:
    return key in d


async def test_concurrency_bounds_the_jobs_active_at_once(queue: Queue, backend_url: str) -> None:
    release = asyncio.Event()
    running = 0
    peak = 0

    async def hold(job: Job) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1

    await queue.add_bulk([("h", {"i": i}) for i in range(8)])
    async with Worker("q", hold, url=backend_url, concurrency=5):

        async def five_active() -> bool:
            # The store marks jobs active before the worker reads the reply and starts
            # their handlers: wait for both.
            return running == 5 and (await queue.get_job_counts("active"))["active"] == 5

        await wait_for(five_active, what="5 active jobs, 5 handlers running")
        assert running == 5
        release.set()

        async def all_done() -> bool:
            return (await queue.get_job_counts("completed"))["completed"] == 8

        await wait_for(all_done, what="all 8 jobs")
    assert peak == 5
