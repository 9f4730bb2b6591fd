"""Retention of finished jobs, pausing, graceful close and waiting for results."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from dockyard import Job, JobFailed, Queue, Worker

from .conftest import wait_for


async def noop(job: Job) -> str:
    return "ok"


async def boom(job: Job) -> None:
    raise RuntimeError("boom")


async def _finish_all(queue: Queue, url: str, jobs: list[Job], handler=noop, **opts) -> None:  # type: ignore[no-untyped-def]
    async with Worker("q", handler, url=url, **opts):
        for job in jobs:
            with contextlib.suppress(JobFailed):
                await job.wait_until_finished(timeout=5)


async def test_remove_on_complete_true_removes_the_job(queue: Queue, backend_url: str) -> None:
    job = await queue.add("a", {}, remove_on_complete=True)
    await _finish_all(queue, backend_url, [job])
    assert await queue.get_job(job.id) is None
    assert (await queue.get_job_counts("completed"))["completed"] == 0


async def test_remove_on_complete_count_keeps_the_newest(queue: Queue, backend_url: str) -> None:
    jobs = [await queue.add("a", {"i": i}, remove_on_complete=2) for i in range(5)]
    await _finish_all(queue, backend_url, jobs, concurrency=1)
    kept = await queue.get_jobs("completed")
    assert sorted(j.id for j in kept) == sorted(j.id for j in jobs[-2:])
    assert await queue.get_job(jobs[0].id) is None


async def test_remove_on_fail_by_age_removes_old_failures(queue: Queue, backend_url: str) -> None:
    old = await queue.add("a", {}, remove_on_fail={"age": 0.2})
    await _finish_all(queue, backend_url, [old], handler=boom)
    assert await queue.get_job(old.id) is not None
    await asyncio.sleep(0.3)  # the age limit is what is tested: let the first job grow old
    new = await queue.add("b", {}, remove_on_fail={"age": 0.2})
    await _finish_all(queue, backend_url, [new], handler=boom)
    assert await queue.get_job(old.id) is None
    assert await queue.get_job(new.id) is not None


async def test_the_workers_retention_applies_when_the_job_has_none(
    queue: Queue, backend_url: str
) -> None:
    plain = await queue.add("a", {})
    keep = await queue.add("b", {}, remove_on_complete=False)
    await _finish_all(queue, backend_url, [plain, keep], remove_on_complete=True)
    assert await queue.get_job(plain.id) is None
    assert await queue.get_job(keep.id) is not None


async def test_a_paused_queue_gives_no_jobs_until_resumed(queue: Queue, backend_url: str) -> None:
    await queue.pause()
    assert await queue.is_paused()
    job = await queue.add("a", {})
    async with Worker("q", noop, url=backend_url, drain_delay=0.2):
        await asyncio.sleep(0.4)  # the absence of processing is what is tested
        assert await job.get_state() == "waiting"
        await queue.resume()
        assert not await queue.is_paused()
        assert await job.wait_until_finished(timeout=5) == "ok"


async def test_close_lets_active_jobs_finish_and_takes_no_more(
    queue: Queue, backend_url: str
) -> None:
    started: list[str] = []

    async def slow(job: Job) -> str:
        started.append(job.id)
        await asyncio.sleep(0.3)
        return "done"

    jobs = await queue.add_bulk([("s", {"i": i}) for i in range(6)])
    worker = Worker("q", slow, url=backend_url, concurrency=3)
    task = asyncio.create_task(worker.run(handle_signals=False))

    async def three_started() -> bool:
        return len(started) == 3

    await wait_for(three_started, what="3 started jobs")
    await worker.close()
    await asyncio.wait_for(task, 5)
    states = [await j.get_state() for j in jobs]
    assert states.count("completed") == 3
    assert states.count("waiting") == 3
    assert len(started) == 3
    assert (await queue.get_job_counts("active"))["active"] == 0


async def test_wait_until_finished_times_out_when_no_worker_runs(queue: Queue) -> None:
    job = await queue.add("a", {})
    with pytest.raises(TimeoutError):
        await job.wait_until_finished(timeout=0.2)


async def test_wait_until_finished_sees_a_job_removed_on_completion(
    queue: Queue, backend_url: str
) -> None:
    job = await queue.add("a", {}, remove_on_complete=True)
    async with Worker("q", noop, url=backend_url):
        assert await job.wait_until_finished(timeout=5) == "ok"
