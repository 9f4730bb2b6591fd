"""BullMQ's metrics: workers that record them count finished jobs per minute."""

from __future__ import annotations

import contextlib

import pytest

from dockyard import InvalidOptionError, Job, JobFailed, Queue, Worker


async def test_workers_with_metrics_count_completed_and_failed_jobs(
    queue: Queue, backend_url: str
) -> None:
    async def half(job: Job) -> str:
        if job.data["i"] % 2:
            raise RuntimeError("odd")
        return "even"

    jobs = [await queue.add("a", {"i": i}) for i in range(5)]
    async with Worker("q", half, url=backend_url, metrics={"max_data_points": 60}):
        for job in jobs:
            with contextlib.suppress(JobFailed):
                await job.wait_until_finished(timeout=10)
    completed = await queue.get_metrics("completed")
    failed = await queue.get_metrics("failed")
    assert (completed["count"], failed["count"]) == (3, 2)
    assert completed["prev_ts"] is not None and completed["data"] == []  # all in one minute


async def test_workers_without_metrics_record_none(queue: Queue, backend_url: str) -> None:
    async def ok(job: Job) -> None:
        return None

    job = await queue.add("a", {})
    async with Worker("q", ok, url=backend_url):
        await job.wait_until_finished(timeout=10)
    assert (await queue.get_metrics("completed"))["count"] == 0


async def test_bad_metrics_options_are_refused(queue: Queue) -> None:
    with pytest.raises(InvalidOptionError):
        await queue.get_metrics("waiting")
    with pytest.raises(InvalidOptionError):
        Worker("q", lambda job: None, url="memory://m", metrics={"max_data_points": 0})
