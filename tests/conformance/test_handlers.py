"""Handlers: async and plain ones, routing by name, return values, progress and logs."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from dockyard import Job, JobFailed, Queue, Worker


@pytest.mark.parametrize("value", [{"a": [1, 2]}, [1, "x"], "text", 3.5, None])
async def test_return_values_are_stored_as_json(queue: Queue, backend_url: str, value: Any) -> None:
    async def give(job: Job) -> Any:
        return value

    job = await queue.add("r", {})
    async with Worker("q", give, url=backend_url):
        assert await job.wait_until_finished(timeout=5) == value
    stored = await queue.get_job(job.id)
    assert stored is not None and stored.return_value == value


async def test_a_return_value_that_is_not_json_fails_the_job(
    queue: Queue, backend_url: str
) -> None:
    async def give(job: Job) -> Any:
        return {1, 2}

    job = await queue.add("r", {})
    async with Worker("q", give, url=backend_url):
        with pytest.raises(JobFailed, match="JSON"):
            await job.wait_until_finished(timeout=5)


async def test_a_plain_function_runs_in_a_thread_and_can_report_progress(
    queue: Queue, backend_url: str
) -> None:
    threads: list[str] = []

    def blocking(job: Any) -> str:
        threads.append(threading.current_thread().name)
        job.update_progress(70)
        job.log("from a thread")
        return "done"

    job = await queue.add("s", {})
    async with Worker("q", blocking, url=backend_url):
        assert await job.wait_until_finished(timeout=5) == "done"
    assert threads and threads[0] != threading.main_thread().name
    stored = await queue.get_job(job.id)
    assert stored is not None and stored.progress == 70
    assert await queue.get_job_logs(job.id) == ["from a thread"]


async def test_a_handler_mapping_routes_by_job_name(queue: Queue, backend_url: str) -> None:
    async def one(job: Job) -> str:
        return "one"

    async def two(job: Job) -> str:
        return "two"

    a = await queue.add("one", {})
    b = await queue.add("two", {})
    c = await queue.add("three", {})
    async with Worker("q", {"one": one, "two": two}, url=backend_url):
        assert await a.wait_until_finished(timeout=5) == "one"
        assert await b.wait_until_finished(timeout=5) == "two"
        with pytest.raises(JobFailed, match="no handler for job name 'three'"):
            await c.wait_until_finished(timeout=5)


async def test_progress_and_logs_are_recorded(queue: Queue, backend_url: str) -> None:
    async def work(job: Job) -> None:
        await job.update_progress(10)
        await job.update_progress({"step": 2, "of": 3})
        await job.log("first")
        await job.log("second")

    job = await queue.add("p", {})
    async with Worker("q", work, url=backend_url):
        await job.wait_until_finished(timeout=5)
    stored = await queue.get_job(job.id)
    assert stored is not None and stored.progress == {"step": 2, "of": 3}
    assert await queue.get_job_logs(job.id) == ["first", "second"]


async def test_keep_logs_keeps_only_the_newest_lines(queue: Queue, backend_url: str) -> None:
    async def work(job: Job) -> None:
        for i in range(5):
            await job.log(f"line {i}")

    job = await queue.add("p", {}, keep_logs=2)
    async with Worker("q", work, url=backend_url):
        await job.wait_until_finished(timeout=5)
    assert await queue.get_job_logs(job.id) == ["line 3", "line 4"]


async def test_a_timeout_fails_a_job_that_runs_too_long(queue: Queue, backend_url: str) -> None:
    import asyncio

    async def slow(job: Job) -> None:
        await asyncio.sleep(5)

    job = await queue.add("t", {}, timeout=0.1)
    async with Worker("q", slow, url=backend_url):
        with pytest.raises(JobFailed, match=r"timed out after 0\.1 s"):
            await job.wait_until_finished(timeout=5)


async def test_job_states_over_its_life(queue: Queue, backend_url: str) -> None:
    import asyncio

    gate = asyncio.Event()

    async def hold(job: Job) -> None:
        await gate.wait()

    job = await queue.add("x", {})
    assert await job.get_state() == "waiting"
    prio = await queue.add("y", {}, priority=3)
    assert await prio.get_state() == "prioritized"
    async with Worker("q", hold, url=backend_url):
        from .conftest import wait_for

        async def active() -> bool:
            return await job.get_state() == "active"

        await wait_for(active, what="active")
        gate.set()
        await job.wait_until_finished(timeout=5)
        await prio.wait_until_finished(timeout=5)
    assert await job.get_state() == "completed"
    assert await queue.get_job_counts("completed") == {"completed": 2}
